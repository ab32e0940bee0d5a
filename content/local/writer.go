package local

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-containers/strata/content"
	"github.com/strata-containers/strata/errdefs"
	"github.com/strata-containers/strata/log"
)

// ingestRecord is the content of an ingest's ref file.
type ingestRecord struct {
	Ref        string             `json:"ref"`
	Descriptor ocispec.Descriptor `json:"descriptor"`
}

// Writer opens a writer for the blob desc under the ingest name ref. desc
// must carry the blob's digest (sha256, sha384 or sha512) and its exact size.
// When an ingest of ref for the same descriptor was interrupted, the writer
// keeps its data and continues at Offset. An unfinished ingest of ref for
// another descriptor is discarded.
func (s *Store) Writer(ctx context.Context, ref string, desc ocispec.Descriptor) (content.Writer, error) {
	if ref == "" {
		return nil, fmt.Errorf("open writer for blob %s: empty ref: %w", desc.Digest, errdefs.ErrInvalidArgument)
	}
	blob, err := s.BlobPath(desc.Digest)
	if err != nil {
		return nil, fmt.Errorf("open writer for ref %q: %w", ref, err)
	}
	if desc.Size < 0 {
		return nil, fmt.Errorf("open writer for blob %s: negative size %d: %w",
			desc.Digest, desc.Size, errdefs.ErrInvalidArgument)
	}
	if exists(blob) {
		return nil, fmt.Errorf("open writer for blob %s: %w", desc.Digest, errdefs.ErrAlreadyExists)
	}

	dir := s.ingestDir(ref)
	lock, err := lockIngest(ctx, dir, s.cfg.lockWait)
	if err != nil {
		return nil, fmt.Errorf("open writer for blob %s ref %q: %w", desc.Digest, ref, err)
	}
	w, err := s.openIngest(ctx, lock, dir, blob, ref, desc)
	if err != nil {
		lock.Close()
		return nil, err
	}
	return w, nil
}

// openIngest prepares the ingest directory dir, whose lock the caller holds.
func (s *Store) openIngest(ctx context.Context, lock *os.File, dir, blob, ref string,
	desc ocispec.Descriptor) (*writer, error) {
	// Another process may have committed the blob while we waited for the lock.
	if exists(blob) {
		if err := os.RemoveAll(dir); err != nil {
			log.G(ctx).Warn("remove finished ingest", "path", dir, "error", err)
		}
		return nil, fmt.Errorf("open writer for blob %s: %w", desc.Digest, errdefs.ErrAlreadyExists)
	}

	data := filepath.Join(dir, "data")
	rec := ingestRecord{Ref: ref, Descriptor: ocispec.Descriptor{
		MediaType: desc.MediaType, Digest: desc.Digest, Size: desc.Size,
	}}
	same, err := sameIngest(dir, rec)
	if err != nil {
		return nil, err
	}
	if !same {
		if err := os.Remove(data); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("reset ingest %s: %w", dir, err)
		}
		if err := writeRecord(dir, rec); err != nil {
			return nil, err
		}
	}

	f, err := os.OpenFile(data, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open ingest data %s: %w", data, wrapNoSpace(err))
	}
	w := &writer{
		store:    s,
		lock:     lock,
		file:     f,
		dir:      dir,
		blob:     blob,
		desc:     rec.Descriptor,
		digester: desc.Digest.Algorithm().Digester(),
	}
	if err := w.resume(ctx); err != nil {
		f.Close()
		return nil, err
	}
	return w, nil
}

// sameIngest reports whether dir holds an ingest of rec's ref and
// descriptor.
func sameIngest(dir string, rec ingestRecord) (bool, error) {
	b, err := os.ReadFile(filepath.Join(dir, "ref"))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read ingest record in %s: %w", dir, err)
	}
	var old ingestRecord
	if err := json.Unmarshal(b, &old); err != nil {
		return false, nil // torn or foreign record: start over
	}
	return old.Ref == rec.Ref && old.Descriptor.Digest == rec.Descriptor.Digest &&
		old.Descriptor.Size == rec.Descriptor.Size, nil
}

func writeRecord(dir string, rec ingestRecord) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encode ingest record: %w", err)
	}
	tmp := filepath.Join(dir, "ref.tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("write ingest record %s: %w", tmp, wrapNoSpace(err))
	}
	if err := os.Rename(tmp, filepath.Join(dir, "ref")); err != nil {
		return fmt.Errorf("write ingest record in %s: %w", dir, err)
	}
	return nil
}

func (s *Store) ingestDir(ref string) string {
	sum := sha256.Sum256([]byte(ref))
	return filepath.Join(s.root, "ingest", hex.EncodeToString(sum[:]))
}

// writer is one open ingest. It holds the ingest's flock until Close or
// Commit.
type writer struct {
	store    *Store
	lock     *os.File
	file     *os.File
	dir      string
	blob     string
	desc     ocispec.Descriptor
	digester digest.Digester
	offset   int64
	done     bool
}

// resume hashes the data kept from an interrupted ingest and positions the
// file at its end. Data longer than the blob cannot be a prefix of it and
// is dropped.
func (w *writer) resume(ctx context.Context) error {
	fi, err := w.file.Stat()
	if err != nil {
		return fmt.Errorf("stat ingest data in %s: %w", w.dir, err)
	}
	size := fi.Size()
	if size > w.desc.Size {
		log.G(ctx).Debug("drop oversized ingest data", "path", w.dir, "digest", w.desc.Digest)
		if err := w.file.Truncate(0); err != nil {
			return fmt.Errorf("truncate ingest data in %s: %w", w.dir, err)
		}
		size = 0
	}
	if size > 0 {
		if _, err := io.Copy(w.digester.Hash(), io.NewSectionReader(w.file, 0, size)); err != nil {
			return fmt.Errorf("hash ingest data in %s: %w", w.dir, err)
		}
	}
	if _, err := w.file.Seek(size, io.SeekStart); err != nil {
		return fmt.Errorf("seek ingest data in %s: %w", w.dir, err)
	}
	w.offset = size
	return nil
}

func (w *writer) Offset() int64 { return w.offset }

func (w *writer) Write(p []byte) (int, error) {
	if w.done {
		return 0, fmt.Errorf("write blob %s: writer is closed: %w", w.desc.Digest, errdefs.ErrFailedPrecondition)
	}
	if w.offset+int64(len(p)) > w.desc.Size {
		return 0, fmt.Errorf("write blob %s: %d bytes is more than the expected size %d: %w",
			w.desc.Digest, w.offset+int64(len(p)), w.desc.Size, errdefs.ErrDigestMismatch)
	}
	n, err := w.file.Write(p)
	w.digester.Hash().Write(p[:n])
	w.offset += int64(n)
	if err != nil {
		err = wrapNoSpace(err)
		if errors.Is(err, errdefs.ErrNoSpace) {
			// Kept for a resume, the partial data would go on filling the
			// disk that the user must free first.
			w.discard(context.Background())
		}
		return n, fmt.Errorf("write blob %s: %w", w.desc.Digest, err)
	}
	return n, nil
}

func (w *writer) Commit(ctx context.Context) (err error) {
	if w.done {
		return fmt.Errorf("commit blob %s: writer is closed: %w", w.desc.Digest, errdefs.ErrFailedPrecondition)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("commit blob %s: %w", w.desc.Digest, err)
	}
	defer func() {
		if err != nil {
			w.discard(ctx)
		}
	}()

	if w.offset != w.desc.Size {
		return fmt.Errorf("commit blob %s: size mismatch: expected %d bytes, got %d: %w",
			w.desc.Digest, w.desc.Size, w.offset, errdefs.ErrDigestMismatch)
	}
	if got := w.digester.Digest(); got != w.desc.Digest {
		return fmt.Errorf("commit blob: digest mismatch: expected %s, got %s: %w",
			w.desc.Digest, got, errdefs.ErrDigestMismatch)
	}
	if err := w.file.Sync(); err != nil {
		return fmt.Errorf("sync blob %s: %w", w.desc.Digest, wrapNoSpace(err))
	}
	if err := w.file.Chmod(0o444); err != nil {
		return fmt.Errorf("chmod blob %s: %w", w.desc.Digest, err)
	}
	if err := w.file.Close(); err != nil {
		return fmt.Errorf("close blob %s: %w", w.desc.Digest, wrapNoSpace(err))
	}

	algDir := filepath.Dir(w.blob)
	if err := os.MkdirAll(algDir, 0o755); err != nil {
		return fmt.Errorf("commit blob %s: %w", w.desc.Digest, wrapNoSpace(err))
	}
	if exists(w.blob) {
		return fmt.Errorf("commit blob %s: %w", w.desc.Digest, errdefs.ErrAlreadyExists)
	}
	if err := os.Rename(filepath.Join(w.dir, "data"), w.blob); err != nil {
		return fmt.Errorf("commit blob %s: %w", w.desc.Digest, err)
	}
	if err := syncDir(algDir); err != nil {
		return fmt.Errorf("commit blob %s: %w", w.desc.Digest, wrapNoSpace(err))
	}

	if err := os.RemoveAll(w.dir); err != nil {
		log.G(ctx).Warn("remove committed ingest", "path", w.dir, "digest", w.desc.Digest, "error", err)
	}
	w.done = true
	w.lock.Close()
	return nil
}

// discard removes the ingest and releases it. It is called after a failed
// commit, so a digest or size mismatch leaves nothing behind.
func (w *writer) discard(ctx context.Context) {
	w.file.Close()
	if err := os.RemoveAll(w.dir); err != nil {
		log.G(ctx).Warn("remove failed ingest", "path", w.dir, "digest", w.desc.Digest, "error", err)
	}
	w.done = true
	w.lock.Close()
}

// Close releases the ingest and keeps its data, so that opening the same
// ref again resumes it. Close after Commit does nothing.
func (w *writer) Close() error {
	if w.done {
		return nil
	}
	w.done = true
	err := w.file.Close()
	w.lock.Close()
	if err != nil {
		return fmt.Errorf("close ingest of blob %s: %w", w.desc.Digest, wrapNoSpace(err))
	}
	return nil
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

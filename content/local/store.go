// Package local implements [content.Store] on a local file system.
//
// The store's root directory has this shape, the blob part being the one an
// OCI image layout uses:
//
//	<root>/blobs/<algorithm>/<hex>   committed blobs, read-only (mode 0444)
//	<root>/ingest/<sha256 of ref>/   one directory per unfinished ingest:
//	    lock                         flock(2)ed by the process writing it
//	    ref                          JSON: the ref and the expected descriptor
//	    data                         the bytes received so far
//
// A blob appears under blobs/ only by an atomic rename from an ingest's
// data file after its size and digest were checked and the file synced, so
// no reader ever sees partial or wrong bytes. Many processes may share one
// root: a flock on the ingest's lock file gives each ref a single writer,
// and an ingest left behind by a killed process resumes when the same ref
// is opened again, or is removed by [Store.RemoveStaleIngests].
package local

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-containers/strata/content"
	"github.com/strata-containers/strata/errdefs"
)

// Store is a content store rooted at a directory. It keeps no open files
// between calls, so any number of Stores, in any number of processes, may
// share one root.
type Store struct {
	root string
	cfg  config
}

var _ content.Store = (*Store)(nil)

type config struct {
	lockWait  time.Duration
	resumable []resumable
}

// resumable keeps idle ingests whose ref starts with prefix for window.
type resumable struct {
	prefix string
	window time.Duration
}

// Opt configures a [Store].
type Opt func(*config)

// WithLockWait makes [Store.Writer] wait up to d for another writer of the
// same ref to finish, instead of failing at once with errdefs.ErrUnavailable.
// The wait also ends when the context is done.
func WithLockWait(d time.Duration) Opt {
	return func(c *config) { c.lockWait = d }
}

// WithResumable makes [Store.RemoveStaleIngests] keep an idle ingest whose
// ref starts with prefix until nothing has written to it for window, so that
// a writer that can resume, such as a registry download with HTTP range
// requests, finds its partial data on the next run.
func WithResumable(prefix string, window time.Duration) Opt {
	return func(c *config) { c.resumable = append(c.resumable, resumable{prefix, window}) }
}

// New returns a store rooted at root, creating its directories when needed.
func New(root string, opts ...Opt) (*Store, error) {
	var cfg config
	for _, o := range opts {
		o(&cfg)
	}
	if root == "" {
		return nil, fmt.Errorf("open content store: empty root: %w", errdefs.ErrInvalidArgument)
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("open content store %s: %w", root, err)
	}
	for _, dir := range []string{"blobs", "ingest"} {
		if err := os.MkdirAll(filepath.Join(abs, dir), 0o755); err != nil {
			return nil, fmt.Errorf("open content store %s: %w", abs, wrapNoSpace(err))
		}
	}
	return &Store{root: abs, cfg: cfg}, nil
}

// Root returns the store's root directory.
func (s *Store) Root() string { return s.root }

// BlobPath returns the path of the blob dgst, whether or not it is stored.
// It returns an error wrapping errdefs.ErrInvalidArgument for a malformed
// digest or one whose algorithm strata does not hash.
func (s *Store) BlobPath(dgst digest.Digest) (string, error) {
	if err := validateDigest(dgst); err != nil {
		return "", err
	}
	return filepath.Join(s.root, "blobs", dgst.Algorithm().String(), dgst.Encoded()), nil
}

// Info returns the size and commit time of the blob dgst.
func (s *Store) Info(ctx context.Context, dgst digest.Digest) (content.Info, error) {
	p, err := s.BlobPath(dgst)
	if err != nil {
		return content.Info{}, err
	}
	fi, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return content.Info{}, fmt.Errorf("stat blob %s: %w", dgst, errdefs.ErrNotFound)
	}
	if err != nil {
		return content.Info{}, fmt.Errorf("stat blob %s: %w", dgst, err)
	}
	return content.Info{Digest: dgst, Size: fi.Size(), CreatedAt: fi.ModTime()}, nil
}

// Walk calls fn for every stored blob, in lexical order of algorithm and
// then hex. Files under blobs/ that are not named like a digest are skipped.
func (s *Store) Walk(ctx context.Context, fn content.WalkFunc) error {
	blobs := filepath.Join(s.root, "blobs")
	algs, err := os.ReadDir(blobs)
	if err != nil {
		return fmt.Errorf("walk blobs in %s: %w", blobs, err)
	}
	for _, alg := range algs {
		if !alg.IsDir() {
			continue
		}
		entries, err := os.ReadDir(filepath.Join(blobs, alg.Name()))
		if err != nil {
			return fmt.Errorf("walk blobs in %s: %w", blobs, err)
		}
		for _, e := range entries {
			if err := ctx.Err(); err != nil {
				return err
			}
			dgst := digest.NewDigestFromEncoded(digest.Algorithm(alg.Name()), e.Name())
			if !e.Type().IsRegular() || validateDigest(dgst) != nil {
				continue
			}
			fi, err := e.Info()
			if errors.Is(err, fs.ErrNotExist) {
				continue // deleted since ReadDir
			}
			if err != nil {
				return fmt.Errorf("stat blob %s: %w", dgst, err)
			}
			if err := fn(content.Info{Digest: dgst, Size: fi.Size(), CreatedAt: fi.ModTime()}); err != nil {
				return err
			}
		}
	}
	return nil
}

// Delete removes the blob dgst. Readers that already opened it keep reading
// the old file.
func (s *Store) Delete(ctx context.Context, dgst digest.Digest) error {
	p, err := s.BlobPath(dgst)
	if err != nil {
		return err
	}
	if err := os.Remove(p); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete blob %s: %w", dgst, errdefs.ErrNotFound)
	} else if err != nil {
		return fmt.Errorf("delete blob %s: %w", dgst, err)
	}
	return nil
}

// ReaderAt opens the blob desc.Digest. The returned reader's Size is the
// stored size; ReaderAt does not compare it with desc.Size.
func (s *Store) ReaderAt(ctx context.Context, desc ocispec.Descriptor) (content.ReaderAt, error) {
	p, err := s.BlobPath(desc.Digest)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("open blob %s: %w", desc.Digest, errdefs.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("open blob %s: %w", desc.Digest, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("stat blob %s: %w", desc.Digest, err)
	}
	return &blobReader{File: f, size: fi.Size()}, nil
}

// blobReader is an open blob file and its size.
type blobReader struct {
	*os.File
	size int64
}

func (r *blobReader) Size() int64 { return r.size }

// BlobFile returns the open file. ReadAt does not move its offset, which
// is 0 until something reads the file itself.
func (r *blobReader) BlobFile() *os.File { return r.File }

var _ content.FileReaderAt = (*blobReader)(nil)

func validateDigest(dgst digest.Digest) error {
	if err := dgst.Validate(); err != nil {
		return fmt.Errorf("check digest %q: %w: %w", dgst, errdefs.ErrInvalidArgument, err)
	}
	return nil
}

// wrapNoSpace adds errdefs.ErrNoSpace to err when the file system is full
// or the user's quota is used up.
func wrapNoSpace(err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return fmt.Errorf("%w: %w", errdefs.ErrNoSpace, err)
	}
	return err
}

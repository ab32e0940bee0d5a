package archive

import (
	"archive/tar"
	"context"
	// sha256 backs digest.Canonical, the diff ID's algorithm.
	_ "crypto/sha256"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"sync"

	"github.com/opencontainers/go-digest"

	"github.com/strata-containers/strata/archive/compression"
	"github.com/strata-containers/strata/errdefs"
	"github.com/strata-containers/strata/log"
	"github.com/strata-containers/strata/snapshot"
)

// Result describes a layer that [Apply] applied.
type Result struct {
	// DiffID is the sha256 digest of the whole uncompressed stream,
	// including any bytes after the tar end-of-archive marker.
	DiffID digest.Digest
	// Size is the number of uncompressed bytes read.
	Size int64
	// Entries is the number of tar entries processed.
	Entries int64
	// Compression is the compression detected from the stream's magic
	// bytes.
	Compression compression.Kind
	// Files holds the CRC-32C checksum of every regular file that Apply
	// wrote, computed from the bytes as they were written. It implements
	// snapshot.FileDigests, so that a snapshotter's commit can skip
	// reading those files back.
	Files *FileSums
}

// FileSums records, by device and inode number, the size and CRC-32C
// checksum of the regular files that one [Apply] wrote. Hard links to a
// recorded file share its entry. A file that Apply copied up from a lower
// layer or did not write itself is not recorded.
type FileSums struct {
	mu sync.Mutex
	m  map[fileID]fileSum
}

type fileID struct{ dev, ino uint64 }

type fileSum struct {
	size int64
	sum  uint32
}

// castagnoli is the table of the CRC-32C checksum that FileSums records.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// FileDigest returns the checksum recorded for the file dev:ino, spelled
// as [snapshot.CRC32C] spells it, with ok false when none is recorded or
// the recorded size differs from size.
func (f *FileSums) FileDigest(dev, ino uint64, size int64) (digest string, ok bool) {
	if f == nil {
		return "", false
	}
	f.mu.Lock()
	s, ok := f.m[fileID{dev, ino}]
	f.mu.Unlock()
	if !ok || s.size != size {
		return "", false
	}
	return snapshot.CRC32C(s.sum), true
}

// Len returns the number of files recorded.
func (f *FileSums) Len() int {
	if f == nil {
		return 0
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.m)
}

func (f *FileSums) add(dev, ino uint64, size int64, sum uint32) {
	f.mu.Lock()
	f.m[fileID{dev, ino}] = fileSum{size: size, sum: sum}
	f.mu.Unlock()
}

func (f *FileSums) drop(dev, ino uint64) {
	f.mu.Lock()
	delete(f.m, fileID{dev, ino})
	f.mu.Unlock()
}

// Apply reads one layer (plain tar, gzip or zstd, detected by magic bytes
// whatever the media type declares) from r and applies it onto the directory
// root. It reads the stream to its end, so trailing bytes after the tar
// end-of-archive marker count toward the diff ID, and returns the sha256
// digest of the whole uncompressed stream.
//
// Every entry name, hard link target and whiteout target resolves inside
// root, with symlinks followed as if root were "/". Names that climb above
// the root with ".." fail with [errdefs.ErrBreakout]. On error, root may
// hold part of the layer; the caller discards it.
func Apply(ctx context.Context, root string, r io.Reader, opts ...ApplyOpt) (Result, error) {
	cfg := applyConfig{fileWorkers: -1}
	for _, opt := range opts {
		opt(&cfg)
	}
	cfg.limits = cfg.limits.withDefaults()
	if cfg.fileWorkers < 0 {
		cfg.fileWorkers = DefaultFileWorkers()
	}

	declared := compression.Uncompressed
	if cfg.mediaType != "" {
		kind, err := compression.FromMediaType(cfg.mediaType)
		if err != nil {
			return Result{}, err
		}
		declared = kind
	}

	stream, kind, err := compression.DecompressStream(r, cfg.decompress...)
	if err != nil {
		return Result{}, err
	}
	defer stream.Close()
	if cfg.mediaType != "" && kind != declared {
		log.G(ctx).Debug("layer compression differs from its media type",
			"mediatype", cfg.mediaType, "detected", kind.String())
	}
	if kind == compression.Gzip {
		log.G(ctx).Debug("inflate layer", "decoder", compression.Decoder(stream),
			"path", root)
	}

	a, err := newApplier(ctx, root, cfg)
	if err != nil {
		return Result{}, err
	}
	defer a.close()

	digester := digest.Canonical.Digester()
	cr := newReadAhead(stream, digester.Hash(), cfg.limits.MaxSize)
	defer cr.stop()
	entries, err := a.applyStream(ctx, tar.NewReader(cr))
	if err != nil {
		return Result{}, err
	}

	// Trailing bytes after the end-of-archive marker belong to the diff ID,
	// and a truncated or corrupt compressed stream often shows only here.
	if _, err := io.Copy(io.Discard, cr); err != nil {
		return Result{}, classifyRead("read layer trailer", err)
	}
	if err := a.finish(); err != nil {
		return Result{}, err
	}
	if err := a.stopWriteback(); err != nil {
		return Result{}, fmt.Errorf("flush layer: %w", err)
	}
	cr.stop()
	return Result{
		DiffID:      digester.Digest(),
		Size:        cr.n,
		Entries:     entries,
		Compression: kind,
		Files:       a.files,
	}, nil
}

func (a *applier) applyStream(ctx context.Context, tr *tar.Reader) (int64, error) {
	var entries int64
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return entries, nil
		}
		if err != nil {
			return entries, classifyRead("read tar header", err)
		}
		if err := ctx.Err(); err != nil {
			return entries, err
		}

		entries++
		if entries > a.cfg.limits.MaxEntries {
			return entries, limitError("entry count", entries, a.cfg.limits.MaxEntries)
		}
		if err := a.applyEntry(hdr, tr); err != nil {
			// A queued file's error comes from an earlier entry.
			if werr := a.waitFiles(); werr != nil {
				return entries, werr
			}
			return entries, fmt.Errorf("apply entry %q: %w", hdr.Name, classifyFS(err))
		}
		if err := a.filesFailed(); err != nil {
			return entries, err
		}
	}
}

func limitError(what string, got, max int64) error {
	return fmt.Errorf("%s is over %d (at %d): %w", what, max, got, errdefs.ErrLimit)
}

// classifyRead marks a tar or stream read error as an invalid layer unless
// it already carries a class, such as a size limit.
func classifyRead(op string, err error) error {
	if classified(err) {
		return fmt.Errorf("%s: %w", op, err)
	}
	if readerLimit(err) {
		return &classError{
			err:   fmt.Errorf("%s: over archive/tar's 1 MiB limit on headers: %w", op, err),
			class: errdefs.ErrLimit,
		}
	}
	return &classError{err: fmt.Errorf("%s: %w", op, err), class: errdefs.ErrInvalidLayer}
}

// readerLimit reports whether err is archive/tar rejecting an extended
// header, long name or sparse map over its fixed 1 MiB limit.
//
// NOTE: archive/tar does not export its sparse map error, so that one is
// matched by its text, which go1.26 spells as below.
func readerLimit(err error) bool {
	return errors.Is(err, tar.ErrFieldTooLong) ||
		err.Error() == "archive/tar: sparse map too long"
}

func classified(err error) bool {
	for _, class := range []error{
		errdefs.ErrInvalidLayer, errdefs.ErrBreakout, errdefs.ErrLimit,
		errdefs.ErrUnsupported, errdefs.ErrNoSpace, errdefs.ErrDigestMismatch,
		context.Canceled, context.DeadlineExceeded,
	} {
		if errors.Is(err, class) {
			return true
		}
	}
	return false
}

// classError adds an errdefs class to an error without changing its text.
type classError struct {
	err   error
	class error
}

func (e *classError) Error() string   { return e.err.Error() }
func (e *classError) Unwrap() []error { return []error{e.err, e.class} }

package unpack

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-containers/strata/archive"
	"github.com/strata-containers/strata/archive/compression"
	"github.com/strata-containers/strata/content"
	"github.com/strata-containers/strata/errdefs"
	"github.com/strata-containers/strata/mount"
	"github.com/strata-containers/strata/snapshot"
)

// Applier applies one layer blob onto an active snapshot.
type Applier interface {
	// Apply applies the layer desc onto the snapshot that mounts describe,
	// calls progress with the number of compressed bytes read so far, and
	// returns the digest of the whole uncompressed stream.
	Apply(ctx context.Context, desc ocispec.Descriptor, mounts []mount.Mount, progress func(int64)) (digest.Digest, error)
}

// DigestApplier is an [Applier] that also returns the digests of the
// regular files it wrote, which ApplyLayers hands to a
// [snapshot.DigestCommitter] so that its commit need not read them back.
type DigestApplier interface {
	Applier
	// ApplyDigests is Apply, returning also the digests of the files it
	// wrote.
	ApplyDigests(ctx context.Context, desc ocispec.Descriptor, mounts []mount.Mount,
		progress func(int64)) (digest.Digest, snapshot.FileDigests, error)
}

// NewApplier returns an [Applier] that reads layer blobs from p and writes
// them without mounting anything: into the upper directory of an overlay
// snapshot, with its lower directories as the view below, or into the
// directory of a bind mount. opts are passed to [archive.Apply].
func NewApplier(p content.Provider, opts ...archive.ApplyOpt) Applier {
	return &fsApplier{provider: p, opts: opts}
}

var _ DigestApplier = (*fsApplier)(nil)

type fsApplier struct {
	provider content.Provider
	opts     []archive.ApplyOpt
}

func (a *fsApplier) Apply(ctx context.Context, desc ocispec.Descriptor, mounts []mount.Mount, progress func(int64)) (digest.Digest, error) {
	dgst, _, err := a.ApplyDigests(ctx, desc, mounts, progress)
	return dgst, err
}

func (a *fsApplier) ApplyDigests(ctx context.Context, desc ocispec.Descriptor, mounts []mount.Mount,
	progress func(int64),
) (digest.Digest, snapshot.FileDigests, error) {
	root, lowers, err := applyTarget(mounts)
	if err != nil {
		return "", nil, err
	}

	ra, err := a.provider.ReaderAt(ctx, desc)
	if err != nil {
		return "", nil, fmt.Errorf("open blob: %w", err)
	}
	defer ra.Close()

	return a.applyStream(ctx, root, lowers, desc.MediaType, blobStream(ra, progress))
}

// applyPrefetched applies the layer that pf decompressed ahead. It returns
// errNoPrefetch, having applied nothing, when the caller must apply the
// layer from its blob instead; see [prefetch.begin].
func (a *fsApplier) applyPrefetched(ctx context.Context, pf *prefetch, mounts []mount.Mount,
	progress func(int64),
) (digest.Digest, snapshot.FileDigests, error) {
	root, lowers, err := applyTarget(mounts)
	if err != nil {
		return "", nil, err
	}
	if !pf.begin(progress) {
		return "", nil, errNoPrefetch
	}
	// The media type of the uncompressed equivalent keeps Apply from
	// logging that the stream's compression differs from the declared
	// one; the prefetch checked the declared type and logs a real
	// difference itself.
	return a.applyStream(ctx, root, lowers, compression.MediaTypeOCILayer, pf)
}

func (a *fsApplier) applyStream(ctx context.Context, root string, lowers []string,
	mediaType string, r io.Reader,
) (digest.Digest, snapshot.FileDigests, error) {
	opts := append([]archive.ApplyOpt{archive.WithMediaType(mediaType)}, a.opts...)
	if lowers != nil {
		opts = append(opts, archive.WithOverlay(lowers))
	}
	res, err := archive.Apply(ctx, root, r, opts...)
	if err != nil {
		return "", nil, err
	}
	return res.DiffID, res.Files, nil
}

// applyTarget finds the directory to write into, and for overlay the lower
// directories below it, topmost first.
func applyTarget(mounts []mount.Mount) (root string, lowers []string, err error) {
	if len(mounts) != 1 {
		return "", nil, fmt.Errorf("apply onto %d mounts: need exactly one: %w", len(mounts), errdefs.ErrNotImplemented)
	}
	m := mounts[0]
	switch m.Type {
	case "bind", "rbind":
		return m.Source, nil, nil
	case "overlay":
		root = m.UpperDir()
		if root == "" {
			return "", nil, fmt.Errorf("apply onto overlay mount without upperdir: %w", errdefs.ErrInvalidArgument)
		}
		lowers = m.LowerDirs()
		if lowers == nil {
			lowers = []string{}
		}
		return root, lowers, nil
	}
	return "", nil, fmt.Errorf("apply onto mount of type %q: %w", m.Type, errdefs.ErrNotImplemented)
}

// blobStream returns a reader of the whole blob ra that reports to
// progress the bytes read so far. For a blob in a file it is a
// [compression.FileStream], so that a gzip program reads the file itself.
func blobStream(ra content.ReaderAt, progress func(int64)) io.Reader {
	cr := &countingReader{r: io.NewSectionReader(ra, 0, ra.Size()), report: progress}
	if fr, ok := ra.(content.FileReaderAt); ok {
		return &fileStream{countingReader: cr, f: fr.BlobFile()}
	}
	return cr
}

// fileStream is a countingReader whose file a program may read instead.
type fileStream struct {
	*countingReader
	f *os.File
}

func (s *fileStream) StreamFile() *os.File { return s.f }

func (s *fileStream) StreamRead(off int64) {
	s.n = off
	if s.report != nil {
		s.report(off)
	}
}

var _ compression.FileStream = (*fileStream)(nil)

// countingReader reports the bytes read through it.
type countingReader struct {
	r      io.Reader
	n      int64
	report func(int64)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.report != nil && n > 0 {
		c.report(c.n)
	}
	return n, err
}

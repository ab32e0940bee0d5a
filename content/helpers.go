package content

import (
	"bytes"
	"context"
	// Register the hashes that digest.Digest.Validate and Verifier need.
	_ "crypto/sha256"
	_ "crypto/sha512"
	"errors"
	"fmt"
	"io"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-containers/strata/errdefs"
)

// MaxBlobSize is the largest blob that [ReadBlob] reads into memory.
// Manifests, indexes and image configs are far smaller; the cap stops a
// corrupt or hostile descriptor from making strata allocate gigabytes.
const MaxBlobSize = 16 << 20

// ReadBlob reads the whole blob desc into memory and checks its size and
// digest. It returns an error wrapping errdefs.ErrLimit when desc.Size is
// over [MaxBlobSize], and one wrapping errdefs.ErrDigestMismatch when the
// stored bytes do not match desc.
func ReadBlob(ctx context.Context, p Provider, desc ocispec.Descriptor) ([]byte, error) {
	if desc.Size > MaxBlobSize {
		return nil, fmt.Errorf("read blob %s: size %d is over the %d byte limit: %w",
			desc.Digest, desc.Size, MaxBlobSize, errdefs.ErrLimit)
	}
	if desc.Size < 0 {
		return nil, fmt.Errorf("read blob %s: negative size %d: %w",
			desc.Digest, desc.Size, errdefs.ErrInvalidArgument)
	}
	if err := desc.Digest.Validate(); err != nil {
		return nil, fmt.Errorf("read blob %q: %w: %w", desc.Digest, errdefs.ErrInvalidArgument, err)
	}

	ra, err := p.ReaderAt(ctx, desc)
	if err != nil {
		return nil, err
	}
	defer ra.Close()

	if ra.Size() != desc.Size {
		return nil, fmt.Errorf("read blob %s: stored size %d, expected %d: %w",
			desc.Digest, ra.Size(), desc.Size, errdefs.ErrDigestMismatch)
	}
	data := make([]byte, desc.Size)
	if _, err := ra.ReadAt(data, 0); err != nil && !(errors.Is(err, io.EOF) && len(data) == 0) {
		return nil, fmt.Errorf("read blob %s: %w", desc.Digest, err)
	}
	if got := desc.Digest.Algorithm().FromBytes(data); got != desc.Digest {
		return nil, fmt.Errorf("read blob %s: stored bytes have digest %s: %w",
			desc.Digest, got, errdefs.ErrDigestMismatch)
	}
	return data, nil
}

// Copy writes the rest of r to w and commits it. When w resumes an earlier
// ingest (w.Offset() > 0), Copy first skips that many bytes of r, seeking
// when r is an [io.Seeker]. A commit that finds the blob already stored
// counts as success.
func Copy(ctx context.Context, w Writer, r io.Reader) error {
	if off := w.Offset(); off > 0 {
		if err := skip(r, off); err != nil {
			return fmt.Errorf("skip %d bytes already ingested: %w", off, err)
		}
	}
	if _, err := io.Copy(w, &ctxReader{ctx: ctx, r: r}); err != nil {
		return err
	}
	if err := w.Commit(ctx); err != nil && !errors.Is(err, errdefs.ErrAlreadyExists) {
		return err
	}
	return nil
}

// Ingest stores the blob desc read from r under the ingest name ref. A blob
// that is already stored counts as success, and r is then left unread.
func Ingest(ctx context.Context, ing Ingester, ref string, desc ocispec.Descriptor, r io.Reader) (err error) {
	w, err := ing.Writer(ctx, ref, desc)
	if errors.Is(err, errdefs.ErrAlreadyExists) {
		return nil
	}
	if err != nil {
		return err
	}
	defer func() {
		if cerr := w.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close writer for blob %s: %w", desc.Digest, cerr)
		}
	}()
	return Copy(ctx, w, r)
}

// NewReader returns a reader over the whole blob ra, from its first byte.
func NewReader(ra ReaderAt) io.Reader {
	return io.NewSectionReader(ra, 0, ra.Size())
}

// IngestBytes stores data as the blob desc, like [Ingest].
func IngestBytes(ctx context.Context, ing Ingester, ref string, desc ocispec.Descriptor, data []byte) error {
	return Ingest(ctx, ing, ref, desc, bytes.NewReader(data))
}

func skip(r io.Reader, n int64) error {
	if s, ok := r.(io.Seeker); ok {
		_, err := s.Seek(n, io.SeekCurrent)
		return err
	}
	got, err := io.CopyN(io.Discard, r, n)
	if err == io.EOF {
		return fmt.Errorf("source ended after %d bytes: %w", got, io.ErrUnexpectedEOF)
	}
	return err
}

// ctxReader stops a long copy when its context is cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

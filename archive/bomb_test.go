package archive

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/strata-containers/strata/errdefs"
)

// zeros reads as an endless run of zero bytes.
type zeros struct{}

func (zeros) Read(b []byte) (int, error) {
	clear(b)
	return len(b), nil
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += int64(n)
	return n, err
}

// TestApplyGzipBomb streams a gzip layer of 20 zero files of 512 MiB each,
// 10 GiB in all, against a 1 GiB size limit. Each file is under the
// limit, so only the count of streamed bytes can stop the layer, and it
// must stop there, having read a few MiB of the blob.
func TestApplyGzipBomb(t *testing.T) {
	requireRoot(t)
	if testing.Short() {
		t.Skip("decompresses 1 GiB of zeros")
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeZeroLayer(pw, 20, 512<<20)) }()
	blob := &countingReader{r: pr}
	root := t.TempDir()
	_, err := Apply(context.Background(), root, blob, WithLimits(Limits{MaxSize: 1 << 30}))
	// The writer stops at its next write.
	pr.CloseWithError(errors.New("layer read stopped"))

	if !errors.Is(err, errdefs.ErrLimit) {
		t.Fatalf("error %v, want %v", err, errdefs.ErrLimit)
	}
	if !strings.Contains(err.Error(), "uncompressed size") {
		t.Errorf("error %q does not name the uncompressed size limit", err)
	}
	if blob.n > 16<<20 {
		t.Errorf("read %d bytes of the blob, want a few MiB", blob.n)
	}
	var written int64
	for i := range 20 {
		var st unix.Stat_t
		if err := unix.Lstat(fmt.Sprintf("%s/zero%d", root, i), &st); err == nil {
			written += st.Size
		}
	}
	if written > 1<<30 {
		t.Errorf("%d bytes of files written, over the 1 GiB limit", written)
	}
}

// writeZeroLayer writes to w a gzip tar of n files of size zero bytes
// each, and returns the first write error.
func writeZeroLayer(w io.Writer, n int, size int64) error {
	gz, err := gzip.NewWriterLevel(w, gzip.BestSpeed)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(gz)
	for i := range n {
		hdr := &tar.Header{
			Typeflag: tar.TypeReg, Name: fmt.Sprintf("zero%d", i), Mode: 0o644, Size: size,
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := io.CopyN(tw, zeros{}, size); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return gz.Close()
}

package compression

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/strata-containers/strata/errdefs"
	"github.com/strata-containers/strata/internal/testutil"
)

// gzipStreams returns gzip streams, valid and not, keyed by name, for
// tests that compare the in-process decoder with an external program.
func gzipStreams(t testing.TB) map[string][]byte {
	t.Helper()
	hello := gzipBytes(t, []byte("hello\n"))
	world := gzipBytes(t, []byte("world\n"))
	random := make([]byte, 3<<20)
	rand.Read(random)
	text := bytes.Repeat([]byte("strata unpacks layers, line after line\n"), 100_000)
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	withFlags := func(flags byte, extra ...byte) []byte {
		return withName(t, "name.tar", flags, extra...)
	}
	flip := func(b []byte, at int) []byte {
		b = bytes.Clone(b)
		if at < 0 {
			at += len(b)
		}
		b[at] ^= 0x40
		return b
	}
	return map[string][]byte{
		"one member":           hello,
		"two members":          cat(hello, world),
		"zero padding":         cat(hello, make([]byte, 1000)),
		"junk after":           cat(hello, []byte("junk")),
		"zeros then a member":  cat(hello, make([]byte, 10), world),
		"junk then a member":   cat(hello, []byte("x"), world),
		"magic then junk":      cat(hello, []byte{0x1f, 0x8b}, []byte("junkjunkjunkjunk")),
		"lone magic byte":      cat(hello, []byte{0x1f}),
		"magic byte then junk": cat(hello, []byte{0x1f, 0x00, 'a'}),
		"magic only":           cat(hello, []byte{0x1f, 0x8b}),
		"header only":          hello[:10],
		"truncated data":       hello[:14],
		"truncated trailer":    hello[:len(hello)-3],
		"bad crc":              flip(hello, -8),
		"bad size":             flip(hello, -4),
		"bad deflate":          flip(gzipBytes(t, text), 40),
		"header fields":        withFlags(0),
		"reserved flag":        withFlags(0x20),
		"header crc flag":      withFlags(0x02),
		"method not deflate":   flip(hello, 2),
		"random 3 MiB":         gzipBytes(t, random),
		"text 4 MB":            gzipBytes(t, text),
		"empty member":         gzipBytes(t, nil),
	}
}

// withName returns a gzip member of "flags\n" whose header has the file
// name name, a comment and an extra field, with flags set in its flag
// byte and extra appended.
func withName(t testing.TB, name string, flags byte, extra ...byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Name = name
	zw.Comment = "a comment"
	zw.Extra = []byte{'s', 't', 2, 0, 'o', 'k'}
	zw.Write([]byte("flags\n"))
	zw.Close()
	b := buf.Bytes()
	if flags != 0 {
		b[3] |= flags
	}
	return append(b, extra...)
}

func readAll(t *testing.T, b []byte, opts ...Option) ([]byte, error) {
	t.Helper()
	r, kind, err := DecompressStream(bytes.NewReader(b), opts...)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	if kind != Gzip {
		t.Fatalf("kind %v, want gzip", kind)
	}
	return io.ReadAll(r)
}

// TestGzipProgramMatchesInProcess checks that igzip and the in-process
// decoder return the same bytes for every stream and fail on the same
// streams, with errors that wrap errdefs.ErrInvalidLayer.
func TestGzipProgramMatchesInProcess(t *testing.T) {
	igzip := testutil.RequiresProgram(t, GzipProgramName)
	for name, blob := range gzipStreams(t) {
		t.Run(name, func(t *testing.T) {
			want, werr := readAll(t, blob)
			got, gerr := readAll(t, blob, WithGzipProgram(igzip))
			if (werr == nil) != (gerr == nil) {
				t.Fatalf("in process: %v; %s: %v", werr, GzipProgramName, gerr)
			}
			if werr != nil {
				for _, err := range []error{werr, gerr} {
					if !errors.Is(err, errdefs.ErrInvalidLayer) {
						t.Errorf("error %v does not wrap %v", err, errdefs.ErrInvalidLayer)
					}
				}
				return
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s returned %d bytes, in process %d, and they differ", GzipProgramName, len(got), len(want))
			}
		})
	}
}

// TestGzipProgramReadsWholeInput checks that the input is read to its end
// even when the program stops at its last member, so that a caller who
// counts or hashes the compressed bytes gets all of them.
func TestGzipProgramReadsWholeInput(t *testing.T) {
	igzip := testutil.RequiresProgram(t, GzipProgramName)
	blob := append(gzipBytes(t, []byte("hello\n")), bytes.Repeat([]byte("junk"), 300_000)...)
	for _, opts := range [][]Option{nil, {WithGzipProgram(igzip)}} {
		cr := &countReader{r: bytes.NewReader(blob)}
		r, _, err := DecompressStream(cr, opts...)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadAll(r); err != nil {
			t.Fatal(err)
		}
		r.Close()
		if cr.n != int64(len(blob)) {
			t.Errorf("with %d options: read %d of %d input bytes", len(opts), cr.n, len(blob))
		}
	}
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

var errBlob = errors.New("blob read failed")

// failingReader returns its bytes and then errBlob.
type failingReader struct{ r io.Reader }

func (f failingReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if errors.Is(err, io.EOF) {
		return n, errBlob
	}
	return n, err
}

// TestGzipProgramPassesReadErrors checks that an error reading the input
// reaches the caller as itself, not as a corrupt stream.
func TestGzipProgramPassesReadErrors(t *testing.T) {
	igzip := testutil.RequiresProgram(t, GzipProgramName)
	blob := gzipBytes(t, bytes.Repeat([]byte("abc"), 1<<20))
	r, _, err := DecompressStream(failingReader{bytes.NewReader(blob[:len(blob)/2])}, WithGzipProgram(igzip))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	_, err = io.ReadAll(r)
	if !errors.Is(err, errBlob) {
		t.Fatalf("error %v, want %v", err, errBlob)
	}
}

// TestGzipProgramCloseEarly checks that Close before the end of the
// output ends the program and returns without reading the rest of the
// input.
func TestGzipProgramCloseEarly(t *testing.T) {
	igzip := testutil.RequiresProgram(t, GzipProgramName)
	text := bytes.Repeat([]byte("strata unpacks layers, line after line\n"), 1_000_000)
	cr := &countReader{r: bytes.NewReader(gzipBytes(t, text))}
	r, _, err := DecompressStream(cr, WithGzipProgram(igzip))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(r, make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	pr := r.(*programReader)
	r.Close()
	if pr.cmd.ProcessState == nil {
		t.Fatal("the program was not reaped")
	}
	if _, err := os.FindProcess(pr.cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Read(make([]byte, 10)); err == nil {
		t.Error("Read after Close returned no error")
	}
}

// TestGzipProgramMissing checks that a program that cannot start fails
// DecompressStream with an error that names it.
func TestGzipProgramMissing(t *testing.T) {
	_, _, err := DecompressStream(bytes.NewReader(gzipBytes(t, []byte("x"))),
		WithGzipProgram("/nonexistent/igzip"))
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/igzip") {
		t.Fatalf("error %v, want one naming the program", err)
	}
}

// TestGzipProgramKilled checks that a program ended by a signal fails the
// read with an error that does not call the layer invalid.
func TestGzipProgramKilled(t *testing.T) {
	igzip := testutil.RequiresProgram(t, GzipProgramName)
	text := bytes.Repeat([]byte("strata unpacks layers, line after line\n"), 1_000_000)
	r, _, err := DecompressStream(bytes.NewReader(gzipBytes(t, text)), WithGzipProgram(igzip))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := io.ReadFull(r, make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	if err := r.(*programReader).cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(r)
	if err == nil || errors.Is(err, errdefs.ErrInvalidLayer) {
		t.Fatalf("error %v, want one that is not %v", err, errdefs.ErrInvalidLayer)
	}
	if !strings.Contains(err.Error(), "killed") {
		t.Errorf("error %q does not say the program was killed", err)
	}
}

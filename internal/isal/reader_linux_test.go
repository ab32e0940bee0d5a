//go:build !nolibisal

package isal

import (
	"bytes"
	"compress/gzip"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"testing"
	"time"
)

func requiresLibrary(t *testing.T) {
	t.Helper()
	err := Load()
	if err == nil {
		return
	}
	if os.Getenv("STRATA_REQUIRE_IMAGES") == "1" {
		t.Fatalf("STRATA_REQUIRE_IMAGES=1: %v", err)
	}
	t.Skip(err)
}

func gzipMember(t *testing.T, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// chunkReader returns at most n bytes per Read.
type chunkReader struct {
	r io.Reader
	n int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	return c.r.Read(p[:min(len(p), c.n)])
}

// TestReaderRefills inflates members whose boundaries fall around the
// edge of the input buffer, from a source that returns a few bytes per
// read, into reads of several sizes.
func TestReaderRefills(t *testing.T) {
	requiresLibrary(t)
	rng := rand.New(rand.NewPCG(3, 4))
	data := make([]byte, 600<<10)
	for i := range data {
		data[i] = byte(rng.IntN(4)) + 'a'
	}
	for _, split := range []int{1 << 10, 200 << 10, 300 << 10} {
		first, second := gzipMember(t, data[:split]), gzipMember(t, data[split:])
		stream := append(append(bytes.Clone(first), second...), make([]byte, 100)...)
		for _, tc := range []struct{ in, out int }{{1 << 20, 1 << 20}, {1000, 13}, {7, 4093}, {64 << 10, 512 << 10}} {
			r, err := NewReader(&chunkReader{bytes.NewReader(stream), tc.in})
			if err != nil {
				t.Fatal(err)
			}
			var got []byte
			buf := make([]byte, tc.out)
			for {
				n, err := r.Read(buf)
				got = append(got, buf[:n]...)
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("split %d, reads of %d in and %d out: %v", split, tc.in, tc.out, err)
				}
			}
			r.Close()
			if !bytes.Equal(got, data) {
				t.Errorf("split %d, reads of %d in and %d out: got %d bytes that differ from the %d written",
					split, tc.in, tc.out, len(got), len(data))
			}
		}
	}
}

// TestReaderReturnsWhatArrived checks that a member that arrived in full
// is returned while the source is still open, as a download would be.
func TestReaderReturnsWhatArrived(t *testing.T) {
	requiresLibrary(t)
	pr, pw := io.Pipe()
	defer pw.Close()
	go pw.Write(gzipMember(t, []byte("hello\n")))
	got := make(chan string, 1)
	go func() {
		r, err := NewReader(pr)
		if err != nil {
			got <- err.Error()
			return
		}
		buf := make([]byte, 100)
		n, err := r.Read(buf)
		if err != nil {
			got <- err.Error()
			return
		}
		got <- string(buf[:n])
	}()
	select {
	case s := <-got:
		if s != "hello\n" {
			t.Errorf("read %q, want hello", s)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Read waited for more input than the member it had")
	}
}

// TestReaderNotClosed checks that a reader dropped without Close does not
// upset the garbage collector.
func TestReaderNotClosed(t *testing.T) {
	requiresLibrary(t)
	for range 3 {
		r, err := NewReader(bytes.NewReader(gzipMember(t, []byte("hello\n"))))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.Read(make([]byte, 3)); err != nil {
			t.Fatal(err)
		}
	}
	runtime.GC()
	runtime.GC()
}

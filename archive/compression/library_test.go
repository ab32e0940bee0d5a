package compression

import (
	"bytes"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/strata-containers/strata/errdefs"
)

// requiresLibrary skips the test when libisal does not load. It fails the
// test instead when STRATA_REQUIRE_IMAGES=1 requires every tool.
func requiresLibrary(t testing.TB) {
	t.Helper()
	err := LoadGzipLibrary()
	if err == nil {
		return
	}
	if os.Getenv("STRATA_REQUIRE_IMAGES") == "1" {
		t.Fatalf("STRATA_REQUIRE_IMAGES=1: %v", err)
	}
	t.Skip(err)
}

// TestGzipLibraryMatchesInProcess checks that libisal and the Go decoder
// return the same bytes for every stream and fail on the same streams,
// with errors that wrap errdefs.ErrInvalidLayer. Each stream is also fed
// a byte at a time and read in odd sizes. Long header strings are the
// exception: only Go's decoder rejects them.
func TestGzipLibraryMatchesInProcess(t *testing.T) {
	requiresLibrary(t)
	streams := gzipStreams(t)
	hello, world := streams["one member"], gzipBytes(t, []byte("world\n"))
	reserved := bytes.Clone(world)
	reserved[3] |= 0x20
	streams["reserved flag in second member"] = append(bytes.Clone(hello), reserved...)
	streams["bad crc in second member"] = append(bytes.Clone(hello), streams["bad crc"]...)
	streams["long name"] = withName(t, strings.Repeat("n", 600), 0)
	for name, blob := range streams {
		t.Run(name, func(t *testing.T) {
			want, werr := readAll(t, blob)
			if name == "long name" {
				// Go's decoder rejects header strings of 512 bytes or
				// more; libisal skips them, as gzip(1) does.
				got, gerr := readLibrary(t, bytes.NewReader(blob), 0)
				if werr == nil || gerr != nil || string(got) != "flags\n" {
					t.Errorf("Go: %v; libisal: %q, %v; want a Go error and the content", werr, got, gerr)
				}
				return
			}
			for _, tc := range []struct {
				name string
				wrap func(io.Reader) io.Reader
				size int
			}{
				{"whole", func(r io.Reader) io.Reader { return r }, 0},
				{"bytes", iotest.OneByteReader, 7},
			} {
				if tc.size != 0 && len(blob) > 64<<10 {
					continue
				}
				got, gerr := readLibrary(t, tc.wrap(bytes.NewReader(blob)), tc.size)
				if (werr == nil) != (gerr == nil) {
					t.Fatalf("%s: Go: %v; libisal: %v", tc.name, werr, gerr)
				}
				if werr != nil {
					if !errors.Is(gerr, errdefs.ErrInvalidLayer) {
						t.Errorf("%s: error %v does not wrap %v", tc.name, gerr, errdefs.ErrInvalidLayer)
					}
					continue
				}
				if !bytes.Equal(got, want) {
					t.Errorf("%s: libisal returned %d bytes, Go %d, and they differ", tc.name, len(got), len(want))
				}
			}
		})
	}
}

// readLibrary inflates r with the library in reads of size bytes, or
// with io.ReadAll when size is 0.
func readLibrary(t *testing.T, r io.Reader, size int) ([]byte, error) {
	t.Helper()
	rc, kind, err := DecompressStream(r, WithGzipLibrary())
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	if kind != Gzip || Decoder(rc) != GzipLibraryName {
		t.Fatalf("kind %v, decoder %q; want gzip and %q", kind, Decoder(rc), GzipLibraryName)
	}
	if size == 0 {
		return io.ReadAll(rc)
	}
	var out []byte
	buf := make([]byte, size)
	for {
		n, err := rc.Read(buf)
		out = append(out, buf[:n]...)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
	}
}

// TestGzipLibraryFirst checks that the library takes precedence over a
// program, and that the program serves when the library is not asked for.
func TestGzipLibraryFirst(t *testing.T) {
	requiresLibrary(t)
	if got := GzipDecoder(WithGzipProgram("/bin/false"), WithGzipLibrary()); got != GzipLibraryName {
		t.Errorf("GzipDecoder with a program and the library = %q, want %q", got, GzipLibraryName)
	}
	blob := gzipBytes(t, []byte("hello\n"))
	rc, _, err := DecompressStream(openFileStream(t, blob), WithGzipProgram("/bin/false"), WithGzipLibrary())
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if got, err := io.ReadAll(rc); err != nil || string(got) != "hello\n" {
		t.Fatalf("read %q, %v; want hello", got, err)
	}
	if d := Decoder(rc); d != GzipLibraryName {
		t.Errorf("decoder %q, want %q", d, GzipLibraryName)
	}
}

// TestGzipLibraryReadsWholeInput checks that the input is read to its end
// after the last member, so that a caller who counts or hashes the
// compressed bytes gets all of them.
func TestGzipLibraryReadsWholeInput(t *testing.T) {
	requiresLibrary(t)
	blob := append(gzipBytes(t, []byte("hello\n")), bytes.Repeat([]byte("junk"), 300_000)...)
	cr := &countReader{r: bytes.NewReader(blob)}
	got, err := readLibrary(t, cr, 0)
	if err != nil || string(got) != "hello\n" {
		t.Fatalf("read %q, %v; want hello", got, err)
	}
	if cr.n != int64(len(blob)) {
		t.Errorf("read %d of %d input bytes", cr.n, len(blob))
	}
}

// TestGzipLibraryPassesReadErrors checks that an error reading the input
// reaches the caller as itself, not as a corrupt stream.
func TestGzipLibraryPassesReadErrors(t *testing.T) {
	requiresLibrary(t)
	blob := gzipBytes(t, bytes.Repeat([]byte("abc"), 1<<20))
	_, err := readLibrary(t, failingReader{bytes.NewReader(blob[:len(blob)/2])}, 0)
	if !errors.Is(err, errBlob) || errors.Is(err, errdefs.ErrInvalidLayer) {
		t.Fatalf("error %v, want %v and not an invalid layer", err, errBlob)
	}
}

// FuzzGzipLibrary checks that libisal decodes every stream that the Go
// decoder decodes, to the same bytes, and that it gives the same result
// whether the input arrives whole or a byte at a time.
func FuzzGzipLibrary(f *testing.F) {
	requiresLibrary(f)
	for _, blob := range gzipStreams(f) {
		if len(blob) < 64<<10 {
			f.Add(blob)
		}
	}
	f.Fuzz(func(t *testing.T, blob []byte) {
		if Detect(blob) != Gzip {
			return
		}
		want, werr := readAll(t, blob)
		got, gerr := readLibrary(t, bytes.NewReader(blob), 0)
		bgot, berr := readLibrary(t, iotest.OneByteReader(bytes.NewReader(blob)), 0)
		if (gerr == nil) != (berr == nil) || (gerr == nil && !bytes.Equal(got, bgot)) {
			t.Fatalf("libisal gave %d bytes, %v from the whole input and %d bytes, %v a byte at a time",
				len(got), gerr, len(bgot), berr)
		}
		if werr != nil {
			// libisal accepts a few streams that Go rejects: an
			// incomplete Huffman code and header strings of 512 bytes
			// or more. The gzip checksum still covers what it returns.
			return
		}
		if gerr != nil {
			t.Fatalf("Go decoded the stream, libisal failed: %v", gerr)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("libisal returned %d bytes, Go %d, and they differ", len(got), len(want))
		}
	})
}

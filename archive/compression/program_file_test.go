package compression

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/strata-containers/strata/errdefs"
	"github.com/strata-containers/strata/internal/testutil"
)

// testFileStream is a FileStream over a file, read with ReadAt as the
// content store reads blobs, that records the offsets reported to it.
type testFileStream struct {
	io.Reader
	f       *os.File
	offsets []int64
}

func (s *testFileStream) StreamFile() *os.File { return s.f }

func (s *testFileStream) StreamRead(off int64) { s.offsets = append(s.offsets, off) }

func openFileStream(t *testing.T, b []byte) *testFileStream {
	t.Helper()
	path := filepath.Join(t.TempDir(), "blob")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return &testFileStream{Reader: io.NewSectionReader(f, 0, int64(len(b))), f: f}
}

// TestGzipProgramOnFileMatchesInProcess checks that igzip reading a blob's
// file itself returns the bytes and errors of the in-process decoder, and
// reports reading the file up to its end.
func TestGzipProgramOnFileMatchesInProcess(t *testing.T) {
	igzip := testutil.RequiresProgram(t, GzipProgramName)
	for name, blob := range gzipStreams(t) {
		t.Run(name, func(t *testing.T) {
			want, werr := readAll(t, blob)
			fs := openFileStream(t, blob)
			// DecompressStream would inflate the small streams here in
			// process (see TestGzipProgramOnFileSkipsStoredStream).
			r, err := startProgramOnFile(igzip, fs)
			if err != nil {
				if werr == nil || !errors.Is(err, errdefs.ErrInvalidLayer) {
					t.Fatalf("in process: %v; %s on the file: %v", werr, GzipProgramName, err)
				}
				return
			}
			if r == nil {
				t.Fatal("the program did not start on the file")
			}
			defer r.Close()
			got, gerr := io.ReadAll(r)
			if (werr == nil) != (gerr == nil) {
				t.Fatalf("in process: %v; %s on the file: %v", werr, GzipProgramName, gerr)
			}
			if werr != nil {
				if !errors.Is(gerr, errdefs.ErrInvalidLayer) {
					t.Errorf("error %v does not wrap %v", gerr, errdefs.ErrInvalidLayer)
				}
				return
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s returned %d bytes, in process %d, and they differ", GzipProgramName, len(got), len(want))
			}
			if n := len(fs.offsets); n == 0 || fs.offsets[n-1] != int64(len(blob)) {
				t.Errorf("offsets reported %v, want the last to be the size %d", fs.offsets, len(blob))
			}
		})
	}
}

// TestGzipProgramOnFileNotGzip checks that a file that does not hold gzip
// is read as a stream, from its first byte.
func TestGzipProgramOnFileNotGzip(t *testing.T) {
	igzip := testutil.RequiresProgram(t, GzipProgramName)
	for name, blob := range map[string][]byte{
		"plain":   []byte("plain bytes, not compressed at all"),
		"short":   {0x1f},
		"empty":   nil,
		"magic 2": {0x1f, 0x8b},
	} {
		t.Run(name, func(t *testing.T) {
			fs := openFileStream(t, blob)
			r, kind, err := DecompressStream(fs, WithGzipProgram(igzip))
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if _, ok := r.(*programReader); ok && kind != Gzip {
				t.Fatalf("a %v stream went to the program", kind)
			}
			got, err := io.ReadAll(r)
			if kind == Gzip {
				if !errors.Is(err, errdefs.ErrInvalidLayer) {
					t.Fatalf("truncated gzip: error %v, want %v", err, errdefs.ErrInvalidLayer)
				}
				return
			}
			if err != nil || !bytes.Equal(got, blob) {
				t.Fatalf("read %q, %v; want %q", got, err, blob)
			}
		})
	}
}

// TestGzipProgramOnFileSkipsStoredStream checks that a stream that barely
// compresses is inflated in process though a program is set, and that a
// compressible one goes to the program.
func TestGzipProgramOnFileSkipsStoredStream(t *testing.T) {
	igzip := testutil.RequiresProgram(t, GzipProgramName)
	streams := gzipStreams(t)
	for _, tc := range []struct {
		name, decoder string
	}{
		{"random 3 MiB", "in process"},
		{"text 4 MB", igzip},
	} {
		t.Run(tc.name, func(t *testing.T) {
			blob := streams[tc.name]
			want, err := readAll(t, blob)
			if err != nil {
				t.Fatal(err)
			}
			r, _, err := DecompressStream(openFileStream(t, blob), WithGzipProgram(igzip))
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if got := Decoder(r); got != tc.decoder {
				t.Errorf("decoder %q, want %q", got, tc.decoder)
			}
			got, err := io.ReadAll(r)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("decoded %d bytes, want %d, and they differ", len(got), len(want))
			}
		})
	}
}

func TestIncompressible(t *testing.T) {
	streams := gzipStreams(t)
	text := streams["text 4 MB"]
	for _, tc := range []struct {
		name string
		blob []byte
		want bool
	}{
		{"random", streams["random 3 MiB"], true},
		{"text", text, false},
		{"shorter than a member", []byte{0x1f, 0x8b, 8}, false},
		// Padding and a last empty member hide the trailer's size, and
		// the sample of the first bytes shows the text.
		{"text then zeros", append(bytes.Clone(text), make([]byte, 8)...), false},
		{"text then an empty member", append(bytes.Clone(text), gzipBytes(t, nil)...), false},
		{"random then zeros", append(bytes.Clone(streams["random 3 MiB"]), make([]byte, 8)...), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := openFileStream(t, tc.blob)
			if got := incompressible(fs.StreamFile()); got != tc.want {
				t.Errorf("incompressible = %v, want %v", got, tc.want)
			}
		})
	}
	t.Run("4 GiB", func(t *testing.T) {
		// A sparse file: its trailer records the size modulo 4 GiB.
		path := filepath.Join(t.TempDir(), "blob")
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := f.Truncate(4 << 30); err != nil {
			t.Skipf("sparse 4 GiB file: %v", err)
		}
		if incompressible(f) {
			t.Error("a 4 GiB stream reported incompressible")
		}
	})
}

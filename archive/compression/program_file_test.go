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
// that it was the program that read the file, up to its end.
func TestGzipProgramOnFileMatchesInProcess(t *testing.T) {
	igzip := testutil.RequiresProgram(t, GzipProgramName)
	for name, blob := range gzipStreams(t) {
		t.Run(name, func(t *testing.T) {
			want, werr := readAll(t, blob)
			fs := openFileStream(t, blob)
			r, kind, err := DecompressStream(fs, WithGzipProgram(igzip))
			if err != nil {
				if werr == nil || !errors.Is(err, errdefs.ErrInvalidLayer) {
					t.Fatalf("in process: %v; %s on the file: %v", werr, GzipProgramName, err)
				}
				return
			}
			defer r.Close()
			if kind != Gzip {
				t.Fatalf("kind %v, want gzip", kind)
			}
			if pr, ok := r.(*programReader); !ok || pr.file == nil {
				t.Fatalf("the program did not read the file itself (reader %T)", r)
			}
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

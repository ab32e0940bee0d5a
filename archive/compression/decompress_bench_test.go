package compression_test

import (
	"bytes"
	stdgzip "compress/gzip"
	"io"
	"math/rand/v2"
	"os/exec"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/strata-containers/strata/archive/compression"
)

// benchSize is the uncompressed size of each stream that BenchmarkDecompress
// reads: large enough that setup costs vanish, small enough for a quick run.
const benchSize = 32 << 20

// BenchmarkDecompress reads gzip and zstd streams of text-like and random
// data through [compression.DecompressStream], as the applier does. For
// comparison it also reads the gzip streams with Go's compress/gzip and
// with unpigz in a child process, skipped when unpigz is not on PATH. MB/s
// counts uncompressed bytes, and "ratio" is uncompressed over compressed
// size.
func BenchmarkDecompress(b *testing.B) {
	inputs := []struct {
		name string
		data []byte
	}{
		{"text", textData(benchSize)},
		{"random", randomData(benchSize)},
	}
	for _, in := range inputs {
		gz := gzipData(b, in.data)
		zs := zstdData(b, in.data)

		b.Run("gzip/"+in.name, func(b *testing.B) {
			benchStream(b, len(in.data), len(gz), func() io.Reader {
				rc, _, err := compression.DecompressStream(bytes.NewReader(gz))
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { rc.Close() })
				return rc
			})
		})
		b.Run("zstd/"+in.name, func(b *testing.B) {
			benchStream(b, len(in.data), len(zs), func() io.Reader {
				rc, _, err := compression.DecompressStream(bytes.NewReader(zs))
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { rc.Close() })
				return rc
			})
		})
		b.Run("gzip-stdlib/"+in.name, func(b *testing.B) {
			benchStream(b, len(in.data), len(gz), func() io.Reader {
				zr, err := stdgzip.NewReader(bytes.NewReader(gz))
				if err != nil {
					b.Fatal(err)
				}
				return zr
			})
		})
		b.Run("gzip-unpigz/"+in.name, func(b *testing.B) {
			path, err := exec.LookPath("unpigz")
			if err != nil {
				b.Skip("unpigz is not on PATH")
			}
			benchStream(b, len(in.data), len(gz), func() io.Reader {
				return unpigz(b, path, gz)
			})
		})
	}
}

func benchStream(b *testing.B, size, compressed int, open func() io.Reader) {
	b.SetBytes(int64(size))
	buf := make([]byte, 128<<10)
	for b.Loop() {
		n, err := io.CopyBuffer(io.Discard, open(), buf)
		if err != nil {
			b.Fatal(err)
		}
		if n != int64(size) {
			b.Fatalf("decompressed %d bytes, expected %d", n, size)
		}
	}
	b.ReportMetric(float64(size)/float64(compressed), "ratio")
}

// unpigz returns the output of unpigz -d -c reading gz, the way containerd
// runs it when it finds it on PATH.
func unpigz(b *testing.B, path string, gz []byte) io.Reader {
	cmd := exec.Command(path, "-d", "-c")
	cmd.Stdin = bytes.NewReader(gz)
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := cmd.Wait(); err != nil {
			b.Error(err)
		}
	})
	return out
}

// textData returns n bytes of lines of words drawn from a made-up
// vocabulary, which gzip shrinks about 2 to 3 times, like binaries and text
// in image layers.
func textData(n int) []byte {
	r := rand.New(rand.NewPCG(1, 2))
	vocab := make([]string, 20000)
	for i := range vocab {
		w := make([]byte, 2+r.IntN(9))
		for j := range w {
			w[j] = byte('a' + r.IntN(26))
		}
		vocab[i] = string(w)
	}
	zipf := rand.NewZipf(r, 1.1, 2, uint64(len(vocab)-1))
	var buf bytes.Buffer
	buf.Grow(n + 64)
	for buf.Len() < n {
		buf.WriteString(vocab[zipf.Uint64()])
		if r.IntN(12) == 0 {
			buf.WriteByte('\n')
		} else {
			buf.WriteByte(' ')
		}
	}
	return buf.Bytes()[:n]
}

func randomData(n int) []byte {
	data := make([]byte, n)
	r := rand.NewChaCha8([32]byte{1})
	_, _ = r.Read(data)
	return data
}

func gzipData(b *testing.B, data []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(data); err != nil {
		b.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}

func zstdData(b *testing.B, data []byte) []byte {
	zw, err := zstd.NewWriter(nil)
	if err != nil {
		b.Fatal(err)
	}
	defer zw.Close()
	return zw.EncodeAll(data, nil)
}

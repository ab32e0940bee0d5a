package unpack_test

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	layerarchive "github.com/strata-containers/strata/archive"
	"github.com/strata-containers/strata/content"
	"github.com/strata-containers/strata/content/local"
	"github.com/strata-containers/strata/internal/testutil"
	"github.com/strata-containers/strata/mount"
	"github.com/strata-containers/strata/snapshot"
	"github.com/strata-containers/strata/snapshot/native"
	"github.com/strata-containers/strata/snapshot/overlay"
	"github.com/strata-containers/strata/store"
	"github.com/strata-containers/strata/unpack"
)

// The generated layers hold files of benchFileSize bytes, 100 to a
// directory, so that an image's entry count grows with its size and a
// scaling table shows per-byte and per-entry costs together.
const benchFileSize = 32 << 10

// largeEnv adds the 1 GB and 2 GB sizes to BenchmarkApplyLayersScaling.
// Generating them takes about a minute and needs 3 GB of free space in
// TMPDIR per size.
const largeEnv = "STRATA_BENCH_LARGE"

// maxNativeBytes bounds the trees that BenchmarkApplyLayersScaling lets
// the native snapshotter write for one image.
const maxNativeBytes = 4_000_000_000

// BenchmarkApplyLayers unpacks a generated image of four gzip layers, 40 MB
// of tar and about 1,250 files, with [unpack.ApplyLayers] into a fresh
// snapshotter root per iteration, on the native and overlay snapshotters.
// Set TMPDIR to a RAM-backed file system to measure strata and not the disk.
func BenchmarkApplyLayers(b *testing.B) {
	img := benchImage(b, b.TempDir(), 4, 40_000_000)
	for _, sn := range []string{"native", "overlay"} {
		b.Run(sn, func(b *testing.B) { benchApplyLayers(b, sn, img) })
	}
}

// BenchmarkApplyLayersScaling unpacks generated images of 1 to 64 layers
// and 10 MB to 100 MB of tar; STRATA_BENCH_LARGE=1 adds 1 GB and 2 GB. Run
// it with -benchtime=1x for a table: each figure is then one unpack. Each
// image is generated only when the -bench pattern selects it, and removed
// after both snapshotters have unpacked it.
func BenchmarkApplyLayersScaling(b *testing.B) {
	sizes := []int64{10_000_000, 100_000_000}
	if ok, _ := strconv.ParseBool(os.Getenv(largeEnv)); ok {
		sizes = append(sizes, 1_000_000_000, 2_000_000_000)
	}
	for _, size := range sizes {
		b.Run(fmt.Sprintf("size=%dMB", size/1_000_000), func(b *testing.B) {
			for _, layers := range []int{1, 4, 16, 64} {
				b.Run(fmt.Sprintf("layers=%d", layers), func(b *testing.B) {
					dir, err := os.MkdirTemp("", "strata-bench-")
					if err != nil {
						b.Fatal(err)
					}
					defer os.RemoveAll(dir)
					img := benchImage(b, dir, layers, size)
					for _, sn := range []string{"overlay", "native"} {
						b.Run(sn, func(b *testing.B) {
							// Native copies the parent for every layer,
							// so its trees take about size x (layers+1)/2.
							if need := size * int64(layers+1) / 2; sn == "native" && need > maxNativeBytes {
								b.Skipf("native needs about %d GB for this image", need/1_000_000_000)
							}
							benchApplyLayers(b, sn, img)
						})
					}
				})
			}
		})
	}
}

// BenchmarkApplier applies one gzip layer of 10 MB and about 300 files
// with the applier that [unpack.NewApplier] returns, into a plain directory
// per iteration: the per-layer work of ApplyLayers without the snapshotter.
func BenchmarkApplier(b *testing.B) {
	testutil.RequiresRoot(b)
	img := benchImage(b, b.TempDir(), 1, 10_000_000)
	a := unpack.NewApplier(img.store)
	base := b.TempDir()
	b.SetBytes(img.tarBytes)
	ctx := context.Background()
	for i := 0; b.Loop(); i++ {
		dir := filepath.Join(base, strconv.Itoa(i))
		if err := os.Mkdir(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		m := []mount.Mount{{Type: "bind", Source: dir, Options: []string{"rbind"}}}
		got, err := a.Apply(ctx, img.layers[0].Blob, m, nil)
		if err != nil {
			b.Fatal(err)
		}
		if got != img.layers[0].DiffID {
			b.Fatalf("diff ID %s, expected %s", got, img.layers[0].DiffID)
		}
	}
	reportFiles(b, img.entries)
}

func benchApplyLayers(b *testing.B, kind string, img *benchImg) {
	testutil.RequiresRoot(b)
	if kind == "overlay" {
		testutil.RequiresOverlay(b)
	}
	ctx := context.Background()
	a := unpack.NewApplier(img.store, storeApplyOptions(b)...)
	base := b.TempDir()
	b.SetBytes(img.tarBytes)
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		root := filepath.Join(base, strconv.Itoa(i))
		sn := newSnapshotter(b, kind, root)
		b.StartTimer()

		if _, err := unpack.ApplyLayers(ctx, sn, a, img.layers); err != nil {
			b.Fatal(err)
		}

		b.StopTimer()
		if err := sn.Close(); err != nil {
			b.Fatal(err)
		}
		if err := os.RemoveAll(root); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	reportFiles(b, img.entries)
}

// storeApplyOptions returns the options that a store opened with its
// defaults gives its applier: igzip when it is on PATH, and flushes while a
// layer applies.
func storeApplyOptions(b *testing.B) []layerarchive.ApplyOpt {
	s, err := store.Open(context.Background(), b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	return s.ApplyOptions()
}

func reportFiles(b *testing.B, entries int64) {
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(entries)*float64(b.N)/s, "files/s")
	}
}

func newSnapshotter(b *testing.B, kind, root string) snapshot.Snapshotter {
	var (
		sn  snapshot.Snapshotter
		err error
	)
	switch kind {
	case "native":
		sn, err = native.New(root)
	case "overlay":
		sn, err = overlay.New(root)
	}
	if err != nil {
		b.Fatal(err)
	}
	return sn
}

// benchImg is a generated image whose gzip layers sit in a content store.
type benchImg struct {
	store    content.Provider
	layers   []unpack.Layer
	tarBytes int64
	entries  int64
}

// benchImage writes an image of n layers with size bytes of file content in
// all, split evenly, into a content store under dir.
func benchImage(b *testing.B, dir string, n int, size int64) *benchImg {
	cs, err := local.New(filepath.Join(dir, "content"))
	if err != nil {
		b.Fatal(err)
	}
	img := &benchImg{store: cs}
	for i := range n {
		l, tarBytes, entries := writeLayer(b, cs, dir, i, size/int64(n))
		img.layers = append(img.layers, l)
		img.tarBytes += tarBytes
		img.entries += entries
	}
	return img
}

// writeLayer writes layer i, with size bytes of file content, as a gzip
// blob into cs, and returns it with its tar size and entry count.
func writeLayer(b *testing.B, cs *local.Store, dir string, i int, size int64) (unpack.Layer, int64, int64) {
	ctx := context.Background()
	tmp := filepath.Join(dir, fmt.Sprintf("layer%d.tar.gz", i))
	f, err := os.Create(tmp)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()

	blobDigest := digest.Canonical.Digester()
	diffDigest := digest.Canonical.Digester()
	bw := bufio.NewWriterSize(io.MultiWriter(f, blobDigest.Hash()), 1<<20)
	zw, err := gzip.NewWriterLevel(bw, gzip.BestSpeed)
	if err != nil {
		b.Fatal(err)
	}
	tc := &countWriter{w: io.MultiWriter(zw, diffDigest.Hash())}
	tw := tar.NewWriter(tc)
	entries := writeFiles(b, tw, i, size)
	for _, c := range []io.Closer{tw, zw} {
		if err := c.Close(); err != nil {
			b.Fatal(err)
		}
	}
	if err := bw.Flush(); err != nil {
		b.Fatal(err)
	}

	st, err := f.Stat()
	if err != nil {
		b.Fatal(err)
	}
	desc := ocispec.Descriptor{
		MediaType: ocispec.MediaTypeImageLayerGzip,
		Digest:    blobDigest.Digest(),
		Size:      st.Size(),
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		b.Fatal(err)
	}
	if err := content.Ingest(ctx, cs, desc.Digest.String(), desc, f); err != nil {
		b.Fatal(err)
	}
	if err := os.Remove(tmp); err != nil {
		b.Fatal(err)
	}
	return unpack.Layer{Blob: desc, DiffID: diffDigest.Digest()}, tc.n, entries
}

// writeFiles writes files of benchFileSize bytes, and the directories that
// hold them, until size bytes of content are written. Layer i uses its own
// directory names, so layers add files rather than replace them.
func writeFiles(b *testing.B, tw *tar.Writer, i int, size int64) int64 {
	r := rand.New(rand.NewPCG(uint64(i), 7))
	pool := textPool()
	var entries int64
	for f := int64(0); f*benchFileSize < size; f++ {
		if f%100 == 0 {
			hdr := &tar.Header{Typeflag: tar.TypeDir, Name: fmt.Sprintf("l%d/d%d/", i, f/100), Mode: 0o755}
			if err := tw.WriteHeader(hdr); err != nil {
				b.Fatal(err)
			}
			entries++
		}
		n := min(benchFileSize, size-f*benchFileSize)
		hdr := &tar.Header{
			Typeflag: tar.TypeReg, Name: fmt.Sprintf("l%d/d%d/f%d", i, f/100, f),
			Mode: 0o644, Size: n,
		}
		if err := tw.WriteHeader(hdr); err != nil {
			b.Fatal(err)
		}
		off := r.IntN(len(pool) - int(n))
		if _, err := tw.Write(pool[off : off+int(n)]); err != nil {
			b.Fatal(err)
		}
		entries++
	}
	return entries
}

var textPool = sync.OnceValue(func() []byte {
	r := rand.New(rand.NewPCG(3, 4))
	pool := make([]byte, 0, 4<<20)
	for len(pool) < cap(pool)-16 {
		for range 2 + r.IntN(9) {
			pool = append(pool, byte('a'+r.IntN(26)))
		}
		pool = append(pool, ' ')
	}
	return pool
})

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

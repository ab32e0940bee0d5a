package unpack_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-containers/strata/archive/compression"
	"github.com/strata-containers/strata/archive/tartest"
	"github.com/strata-containers/strata/content"
	"github.com/strata-containers/strata/content/local"
	"github.com/strata-containers/strata/errdefs"
	"github.com/strata-containers/strata/internal/fstree"
	"github.com/strata-containers/strata/internal/testutil"
	"github.com/strata-containers/strata/snapshot/native"
	"github.com/strata-containers/strata/unpack"
)

// prefetchImage is a content store with the layers of one image.
type prefetchImage struct {
	store  *local.Store
	layers []unpack.Layer
}

// newPrefetchImage stores blobs, each the compression of the tar at the
// same index, and returns them as layers whose diff IDs are the tars'
// digests.
func newPrefetchImage(t *testing.T, tars, blobs [][]byte, mediaTypes []string) prefetchImage {
	t.Helper()
	store, err := local.New(filepath.Join(t.TempDir(), "content"))
	if err != nil {
		t.Fatal(err)
	}
	img := prefetchImage{store: store}
	for i, blob := range blobs {
		desc := ocispec.Descriptor{
			MediaType: mediaTypes[i],
			Digest:    digest.FromBytes(blob),
			Size:      int64(len(blob)),
		}
		err := content.IngestBytes(context.Background(), store, desc.Digest.String(), desc, blob)
		if err != nil {
			t.Fatalf("ingest layer %d: %v", i, err)
		}
		img.layers = append(img.layers, unpack.Layer{Blob: desc, DiffID: digest.FromBytes(tars[i])})
	}
	return img
}

// prefetchTars returns n layers with files big enough to fill several of
// the prefetch's chunks, each layer replacing and removing some files of
// the one below.
func prefetchTars(t *testing.T, n int) [][]byte {
	t.Helper()
	var tars [][]byte
	for i := range n {
		entries := []tartest.Entry{tartest.Dir("d")}
		for j := range 12 {
			body := strings.Repeat(fmt.Sprintf("layer %d file %d\n", i, j), 40000)
			entries = append(entries, tartest.File(fmt.Sprintf("d/f%d", j), body))
		}
		if i > 0 {
			entries = append(entries, tartest.Whiteout(fmt.Sprintf("d/f%d", 12-i)))
		}
		tars = append(tars, tartest.Tar(t, entries...))
	}
	return tars
}

// unpackNative unpacks img on a fresh native snapshotter with
// maxParallel and returns the top chain ID, the tree of the top chain and
// the error.
func unpackNative(t *testing.T, img prefetchImage, maxParallel int) (digest.Digest, []fstree.Entry, error) {
	t.Helper()
	ctx := context.Background()
	root := t.TempDir()
	sn, err := native.New(root)
	if err != nil {
		t.Fatal(err)
	}
	defer sn.Close()
	chain, err := unpack.ApplyLayers(ctx, sn, unpack.NewApplier(img.store), img.layers,
		unpack.WithMaxParallel(maxParallel))
	if err != nil {
		return "", nil, err
	}
	res, err := sn.Check(ctx)
	if err != nil {
		t.Fatalf("check: %v", err)
	}
	for _, p := range res.Problems {
		t.Errorf("max-parallel %d: %s %s: %s", maxParallel, p.Kind, p.Path, p.Detail)
	}
	mounts, err := sn.View(ctx, "view", chain.String())
	if err != nil {
		t.Fatalf("view: %v", err)
	}
	tree, err := fstree.Walk(mounts[0].Source)
	if err != nil {
		t.Fatalf("walk: %v", err)
	}
	return chain, tree, nil
}

// TestApplyLayersPrefetchSameTree checks that decompressing layers ahead
// gives the same chains and the same tree as applying them strictly one
// after another, on gzip layers, which are decompressed ahead, mixed with
// zstd layers, which are not.
func TestApplyLayersPrefetchSameTree(t *testing.T) {
	testutil.RequiresRoot(t)
	tars := prefetchTars(t, 4)
	blobs := [][]byte{
		tartest.Gzip(t, tars[0]), tartest.Zstd(t, tars[1]),
		tartest.Gzip(t, tars[2]), tartest.Zstd(t, tars[3]),
	}
	types := []string{
		compression.MediaTypeOCILayerGzip, compression.MediaTypeOCILayerZstd,
		compression.MediaTypeOCILayerGzip, compression.MediaTypeOCILayerZstd,
	}
	img := newPrefetchImage(t, tars, blobs, types)

	wantChain, wantTree, err := unpackNative(t, img, 1)
	if err != nil {
		t.Fatalf("max-parallel 1: %v", err)
	}
	for _, n := range []int{2, 4} {
		chain, tree, err := unpackNative(t, img, n)
		if err != nil {
			t.Fatalf("max-parallel %d: %v", n, err)
		}
		if chain != wantChain {
			t.Errorf("max-parallel %d: chain %s, want %s", n, chain, wantChain)
		}
		if d := fstree.Diff(wantTree, tree); d != "" {
			t.Errorf("max-parallel %d: tree differs (-want +got):\n%s", n, d)
		}
	}
}

// TestApplyLayersPrefetchSameErrors checks that a bad layer above the
// first fails with the same error whether or not it was decompressed
// ahead.
func TestApplyLayersPrefetchSameErrors(t *testing.T) {
	testutil.RequiresRoot(t)
	tars := prefetchTars(t, 3)
	good := tartest.Gzip(t, tars[1])
	cases := []struct {
		name  string
		blob  []byte
		tar   []byte
		class error
	}{
		// A gzip member that holds another gzip stream must fail as the
		// tar it is not, and must not be decompressed twice.
		{"gzip in gzip", tartest.Gzip(t, good), tars[1], errdefs.ErrInvalidLayer},
		{"truncated", good[:len(good)/2], tars[1], errdefs.ErrInvalidLayer},
		{"wrong diff ID", good, tars[2], errdefs.ErrDigestMismatch},
		{"not compressed", tars[1][:600], tars[1], errdefs.ErrInvalidLayer},
	}
	gz := compression.MediaTypeOCILayerGzip
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			blobs := [][]byte{tartest.Gzip(t, tars[0]), tc.blob, tartest.Gzip(t, tars[2])}
			img := newPrefetchImage(t, [][]byte{tars[0], tc.tar, tars[2]}, blobs,
				[]string{gz, gz, gz})
			_, _, want := unpackNative(t, img, 1)
			if !errors.Is(want, tc.class) {
				t.Fatalf("max-parallel 1: error %v, want %v", want, tc.class)
			}
			_, _, got := unpackNative(t, img, 3)
			if got == nil || got.Error() != want.Error() {
				t.Errorf("max-parallel 3: error %v, want %v", got, want)
			}
			if !errors.Is(got, tc.class) {
				t.Errorf("max-parallel 3: error %v, want %v", got, tc.class)
			}
		})
	}
}

// wrappedApplier hides the applier of NewApplier behind another type, as
// callers that wait for downloads do, so that nothing can be read ahead.
type wrappedApplier struct{ unpack.Applier }

// TestApplyLayersWrappedApplier checks that several gzip layers unpack
// through an applier that is not NewApplier's, which cannot be read
// ahead, with any max-parallel.
func TestApplyLayersWrappedApplier(t *testing.T) {
	tars := prefetchTars(t, 3)
	var blobs [][]byte
	var types []string
	for _, tar := range tars {
		blobs = append(blobs, tartest.Gzip(t, tar))
		types = append(types, compression.MediaTypeOCILayerGzip)
	}
	img := newPrefetchImage(t, tars, blobs, types)
	for _, n := range []int{1, 2, 4} {
		sn, err := native.New(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		a := wrappedApplier{unpack.NewApplier(img.store)}
		if _, err := unpack.ApplyLayers(context.Background(), sn, a, img.layers,
			unpack.WithMaxParallel(n)); err != nil {
			t.Errorf("max-parallel %d: %v", n, err)
		}
		sn.Close()
	}
}

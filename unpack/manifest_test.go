package unpack_test

import (
	"context"
	"slices"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-containers/strata/archive/compression"
	"github.com/strata-containers/strata/archive/tartest"
	"github.com/strata-containers/strata/content"
	"github.com/strata-containers/strata/content/local"
	"github.com/strata-containers/strata/internal/layercases"
	"github.com/strata-containers/strata/internal/testutil"
	"github.com/strata-containers/strata/snapshot"
	"github.com/strata-containers/strata/snapshot/native"
	"github.com/strata-containers/strata/snapshot/overlay"
	"github.com/strata-containers/strata/snapshot/storage"
	"github.com/strata-containers/strata/unpack"
)

// checker is a snapshotter that verifies its committed snapshots against
// their manifests.
type checker interface {
	snapshot.Snapshotter
	Check(ctx context.Context) (storage.CheckResult, error)
}

// TestManifestDigestsMatchFiles unpacks every layer case that must apply
// on both snapshotters, whose commits take the digests the applier
// computed while writing, and checks each committed snapshot's manifest
// against a fresh read of its files. Copy-ups, hard links, files replaced
// or removed later in a layer and inodes reused after a removal must all
// end up with the digest of what is on disk.
func TestManifestDigestsMatchFiles(t *testing.T) {
	testutil.RequiresOverlay(t)
	groups := layercases.Groups()
	names := make([]string, 0, len(groups))
	for g := range groups {
		names = append(names, g)
	}
	slices.Sort(names)
	for _, g := range names {
		for _, tc := range groups[g] {
			if tc.WantErr != nil {
				continue
			}
			t.Run(g+"/"+tc.Name, func(t *testing.T) { checkManifests(t, tc) })
		}
	}
}

func checkManifests(t *testing.T, tc layercases.Case) {
	ctx := context.Background()
	s := layercases.NewSandbox(t)
	store, err := local.New(s.Path("content"))
	if err != nil {
		t.Fatal(err)
	}
	var layers []unpack.Layer
	for i, entries := range tc.Layers(t, s) {
		tr := tartest.Tar(t, entries...)
		blob := tartest.Gzip(t, tr)
		desc := ocispec.Descriptor{
			MediaType: compression.MediaTypeOCILayerGzip,
			Digest:    digest.FromBytes(blob),
			Size:      int64(len(blob)),
		}
		if err := content.IngestBytes(ctx, store, desc.Digest.String(), desc, blob); err != nil {
			t.Fatalf("ingest layer %d: %v", i, err)
		}
		layers = append(layers, unpack.Layer{Blob: desc, DiffID: digest.FromBytes(tr)})
	}

	kinds := []struct {
		name string
		open func(root string) (checker, error)
	}{
		{"overlayfs", func(root string) (checker, error) { return overlay.New(root) }},
		{"native", func(root string) (checker, error) { return native.New(root) }},
	}
	for _, k := range kinds {
		sn, err := k.open(s.Path("snap-" + k.name))
		if err != nil {
			t.Fatalf("open %s snapshotter: %v", k.name, err)
		}
		defer sn.Close()
		if _, err := unpack.ApplyLayers(ctx, sn, unpack.NewApplier(store), layers); err != nil {
			t.Fatalf("%s: unpack: %v", k.name, err)
		}
		res, err := sn.Check(ctx)
		if err != nil {
			t.Fatalf("%s: check: %v", k.name, err)
		}
		if res.Snapshots != len(layers) {
			t.Errorf("%s: checked %d snapshots, want %d", k.name, res.Snapshots, len(layers))
		}
		for _, p := range res.Problems {
			t.Errorf("%s: %s %s: %s", k.name, p.Kind, p.Path, p.Detail)
		}
	}
}

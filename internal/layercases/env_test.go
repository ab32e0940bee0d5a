package layercases

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-containers/strata/archive"
	"github.com/strata-containers/strata/archive/compression"
	"github.com/strata-containers/strata/archive/tartest"
	"github.com/strata-containers/strata/content"
	"github.com/strata-containers/strata/content/local"
	"github.com/strata-containers/strata/identity"
	"github.com/strata-containers/strata/internal/fstree"
	"github.com/strata-containers/strata/mount"
	"github.com/strata-containers/strata/snapshot"
	"github.com/strata-containers/strata/snapshot/native"
	"github.com/strata-containers/strata/snapshot/overlay"
	"github.com/strata-containers/strata/unpack"
)

// snapshotters are the two kinds every case runs on, overlayfs first.
var snapshotters = []struct {
	name string
	open func(root string) (snapshot.Snapshotter, error)
}{
	{"overlayfs", func(root string) (snapshot.Snapshotter, error) { return overlay.New(root) }},
	{"native", func(root string) (snapshot.Snapshotter, error) { return native.New(root) }},
}

// env is one snapshotter and a content store in a sandbox, with helpers
// to unpack layers through unpack.ApplyLayers and mount views.
type env struct {
	kind   string
	root   string
	sn     snapshot.Snapshotter
	store  *local.Store
	locker unpack.Locker
	views  []string
}

func newEnv(t *testing.T, s *Sandbox, kind string) *env {
	t.Helper()
	e := &env{kind: kind, root: s.Path("snap-" + kind)}
	for _, k := range snapshotters {
		if k.name != kind {
			continue
		}
		sn, err := k.open(e.root)
		if err != nil {
			t.Fatalf("open %s snapshotter: %v", kind, err)
		}
		e.sn = sn
		t.Cleanup(func() { sn.Close() })
	}
	store, err := local.New(s.Path("snap-content-" + kind))
	if err != nil {
		t.Fatalf("open content store: %v", err)
	}
	e.store = store
	// A store unpacks with chain locks, and with them overlayfs commits
	// each layer while the next one is applied: the cases run that way.
	locker, err := unpack.NewFileLocker(s.Path("snap-locks-" + kind))
	if err != nil {
		t.Fatalf("create chain locker: %v", err)
	}
	e.locker = locker
	return e
}

// blob is a layer as an image would carry it.
type blob struct {
	data      []byte
	mediaType string
	diffID    digest.Digest
}

// gzipBlobs compresses each tar with gzip, the common case in real images.
func gzipBlobs(t testing.TB, tars [][]byte) []blob {
	t.Helper()
	blobs := make([]blob, len(tars))
	for i, tr := range tars {
		blobs[i] = blob{
			data:      tartest.Gzip(t, tr),
			mediaType: compression.MediaTypeOCILayerGzip,
			diffID:    digest.FromBytes(tr),
		}
	}
	return blobs
}

func sha256Of(b []byte) digest.Digest {
	sum := sha256.Sum256(b)
	return digest.NewDigestFromBytes(digest.SHA256, sum[:])
}

// ingest stores the blobs and returns them as layers for ApplyLayers.
func (e *env) ingest(t *testing.T, blobs []blob) []unpack.Layer {
	t.Helper()
	layers := make([]unpack.Layer, len(blobs))
	for i, b := range blobs {
		desc := ocispec.Descriptor{
			MediaType: b.mediaType, Digest: sha256Of(b.data), Size: int64(len(b.data)),
		}
		err := content.IngestBytes(context.Background(), e.store, desc.Digest.String(), desc, b.data)
		if err != nil {
			t.Fatalf("ingest layer %d: %v", i, err)
		}
		layers[i] = unpack.Layer{Blob: desc, DiffID: b.diffID}
	}
	return layers
}

// unpack applies the layers as a store does: gzip is inflated by libisal
// when it loads, so that every case and FuzzApplyLayers go through the
// default decoder.
func (e *env) unpack(layers []unpack.Layer) (digest.Digest, error) {
	a := unpack.NewApplier(e.store, archive.WithGzipLibrary())
	return unpack.ApplyLayers(context.Background(), e.sn, a, layers, unpack.WithLocker(e.locker))
}

// mountView mounts a read-only view of the committed chain and returns its
// directory. The view is unmounted and removed when t ends.
func (e *env) mountView(t *testing.T, s *Sandbox, chain digest.Digest) string {
	t.Helper()
	ctx := context.Background()
	key := fmt.Sprintf("view-%d", len(e.views))
	mounts, err := e.sn.View(ctx, key, chain.String())
	if err != nil {
		t.Fatalf("%s: view %s: %v", e.kind, chain, err)
	}
	e.views = append(e.views, key)
	target := s.Path(fmt.Sprintf("snap-mnt-%s-%d", e.kind, len(e.views)))
	if err := os.Mkdir(target, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := mount.All(mounts, target); err != nil {
		t.Fatalf("%s: mount view of %s: %v", e.kind, chain, err)
	}
	t.Cleanup(func() {
		if err := mount.UnmountAll(target); err != nil {
			t.Errorf("unmount %s: %v", target, err)
		}
		if err := e.sn.Remove(ctx, key); err != nil {
			t.Errorf("remove view %s: %v", key, err)
		}
	})
	return target
}

// walk returns the tree digest entries of dir.
func walk(t *testing.T, dir string) []fstree.Entry {
	t.Helper()
	entries, err := fstree.Walk(dir)
	if err != nil {
		t.Fatalf("walk %s: %v", dir, err)
	}
	return entries
}

// wantSnapshots checks that the snapshotter holds exactly the committed
// chains of layers[:n] and the views this env made: nothing for a rejected
// layer, and no extraction snapshot left behind. It also checks that the
// snapshot directories hold nothing but what the snapshotter put there.
func (e *env) wantSnapshots(t *testing.T, layers []unpack.Layer, n int) {
	t.Helper()
	var diffIDs []digest.Digest
	for _, l := range layers[:n] {
		diffIDs = append(diffIDs, l.DiffID)
	}
	want := append([]string{}, e.views...)
	for _, c := range identity.ChainIDs(diffIDs) {
		want = append(want, c.String())
	}
	var got []string
	err := e.sn.Walk(context.Background(), func(_ context.Context, info snapshot.Info) error {
		got = append(got, info.Name)
		if unpack.IsExtractKey(info.Name) {
			t.Errorf("%s: extraction snapshot %q left behind", e.kind, info.Name)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("%s: walk snapshots: %v", e.kind, err)
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(want, got) {
		t.Errorf("%s: snapshots %q, want %q", e.kind, got, want)
	}

	CheckOnly(t, e.root, "metadata.db", "snapshots.lock", "snapshots", "staging")
	dirs, err := os.ReadDir(filepath.Join(e.root, "snapshots"))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		if strings.HasPrefix(d.Name(), "new-") || strings.HasPrefix(d.Name(), "rm-") {
			t.Errorf("%s: snapshot directory %s left behind", e.kind, d.Name())
		}
		CheckOnly(t, filepath.Join(e.root, "snapshots", d.Name()), "fs", "work", "manifest")
	}
}

// wantRejected checks that err, from applying layers, is of class want and
// names the last layer's digest and, when entry is set, the entry.
func wantRejected(t *testing.T, kind string, err, want error, last unpack.Layer, entry string) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: error %v, want %v", kind, err, want)
		return
	}
	if !strings.Contains(err.Error(), last.Blob.Digest.String()) {
		t.Errorf("%s: error %q does not name the layer %s", kind, err, last.Blob.Digest)
	}
	if q := fmt.Sprintf("%q", entry); entry != "" && !strings.Contains(err.Error(), q) {
		t.Errorf("%s: error %q does not name the entry %s", kind, err, q)
	}
}

// goodLayer is a layer that any parent accepts.
func goodLayer(t testing.TB) []byte {
	return tartest.Tar(t, file("good/after-failure", "ok"))
}

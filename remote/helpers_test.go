package remote_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-containers/strata/internal/testimages"
	"github.com/strata-containers/strata/internal/testutil"
	"github.com/strata-containers/strata/oci"
	"github.com/strata-containers/strata/remote"
	"github.com/strata-containers/strata/remote/internal/registrytest"
	"github.com/strata-containers/strata/store"
)

// openStore opens a fresh store with the native snapshotter, which runs on
// any file system.
func openStore(t *testing.T) *store.Store {
	t.Helper()
	return openStoreAt(t, testutil.TempDir(t))
}

// openOverlayStore opens a fresh store with the overlayfs snapshotter,
// which unpacks big images many times faster than native's copies.
func openOverlayStore(t *testing.T) *store.Store {
	t.Helper()
	testutil.RequiresOverlay(t)
	s, err := store.Open(context.Background(), testutil.TempDir(t), store.WithSnapshotter(store.Overlayfs))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func openStoreAt(t *testing.T, root string) *store.Store {
	t.Helper()
	s, err := store.Open(context.Background(), root, store.WithSnapshotter(store.Native))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// pushed starts a plain HTTP registry and pushes the named test image to
// it as x/<name>:1, with skopeo's args (for example "--format", "v2s2").
// It returns the registry and the reference.
func pushed(t *testing.T, name string, args ...string) (*registrytest.Registry, string) {
	t.Helper()
	registrytest.Requires(t)
	layout := testimages.Path(t, name)
	reg := registrytest.Start(t)
	ref := reg.Host + "/x/" + name + ":1"
	registrytest.Push(t, "oci:"+layout+":latest", ref, args...)
	return reg, ref
}

// pull pulls ref into s, allowing plain HTTP and retrying quickly.
func pull(t *testing.T, s *store.Store, ref string, opts ...remote.Opt) (remote.Result, error) {
	t.Helper()
	opts = append([]remote.Opt{remote.WithInsecure(), remote.WithRetry(3, 10*time.Millisecond)}, opts...)
	return remote.Pull(context.Background(), s.Content(), s.Images(), ref, opts...)
}

func mustPull(t *testing.T, s *store.Store, ref string, opts ...remote.Opt) remote.Result {
	t.Helper()
	res, err := pull(t, s, ref, opts...)
	if err != nil {
		t.Fatalf("pull %s: %v", ref, err)
	}
	return res
}

// layoutManifest returns the descriptor and manifest of the one image in
// the OCI layout dir.
func layoutManifest(t *testing.T, dir string) (ocispec.Descriptor, ocispec.Manifest) {
	t.Helper()
	var idx ocispec.Index
	readJSON(t, filepath.Join(dir, "index.json"), &idx)
	if len(idx.Manifests) != 1 {
		t.Fatalf("%s lists %d manifests, want 1", dir, len(idx.Manifests))
	}
	desc := idx.Manifests[0]
	var m ocispec.Manifest
	readJSON(t, blobPath(dir, desc.Digest), &m)
	return desc, m
}

func blobPath(dir string, d digest.Digest) string {
	return filepath.Join(dir, "blobs", d.Algorithm().String(), d.Encoded())
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("decode %s: %v", path, err)
	}
}

func digestOf(s string) digest.Digest { return digest.Digest(s) }

func hostPlatform() string { return oci.FormatPlatform(oci.Host()) }

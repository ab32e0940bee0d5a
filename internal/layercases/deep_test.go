package layercases

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/strata-containers/strata/archive/tartest"
	"github.com/strata-containers/strata/internal/testutil"
)

// TestRemoveDeepSnapshot unpacks a layer holding a file 1,000 components
// deep on each snapshotter, removes the committed snapshot, and checks
// that its directory is gone: Remove only logs a failure to delete it.
func TestRemoveDeepSnapshot(t *testing.T) {
	testutil.RequiresOverlay(t)
	s := NewSandbox(t)
	defer s.Check(t)
	blobs := gzipBlobs(t, [][]byte{tartest.Tar(t, file(DeepName, "deep"))})
	for _, k := range snapshotters {
		e := newEnv(t, s, k.name)
		chain, err := e.unpack(e.ingest(t, blobs))
		if err != nil {
			t.Fatalf("%s: unpack: %v", k.name, err)
		}
		if err := e.sn.Remove(context.Background(), chain.String()); err != nil {
			t.Fatalf("%s: remove %s: %v", k.name, chain, err)
		}
		left, err := os.ReadDir(filepath.Join(e.root, "snapshots"))
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range left {
			t.Errorf("%s: snapshot directory %s left after Remove", k.name, d.Name())
		}
	}
}

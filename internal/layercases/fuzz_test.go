package layercases

import (
	"context"
	"testing"

	"github.com/strata-containers/strata/archive/tartest"
	"github.com/strata-containers/strata/internal/fstree"
	"github.com/strata-containers/strata/internal/testutil"
	"github.com/strata-containers/strata/snapshot"
)

// FuzzApplyLayers unpacks a random set of layers, built by FuzzLayers,
// through unpack.ApplyLayers on both snapshotters. Nothing may change
// outside the snapshot roots, both snapshotters must commit the same
// chains, and on success the mounted views must have the same tree.
func FuzzApplyLayers(f *testing.F) {
	for _, seed := range FuzzSeeds {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		testutil.RequiresOverlay(t)
		s := NewSandbox(t)
		defer s.Check(t)
		entries := FuzzLayers(data)
		var tars [][]byte
		for _, l := range entries {
			tars = append(tars, tartest.Tar(t, l...))
		}
		blobs := gzipBlobs(t, tars)

		trees := map[string][]fstree.Entry{}
		errs := map[string]error{}
		committed := map[string]int{}
		for _, k := range snapshotters {
			e := newEnv(t, s, k.name)
			chain, err := e.unpack(e.ingest(t, blobs))
			errs[k.name] = err
			committed[k.name] = countSnapshots(t, e.sn)
			if err == nil {
				trees[k.name] = walk(t, e.mountView(t, s, chain))
			}
		}
		if (errs["native"] == nil) != (errs["overlayfs"] == nil) ||
			committed["native"] != committed["overlayfs"] {
			t.Fatalf("snapshotters disagree: native committed %d (error %v), overlayfs %d (error %v)",
				committed["native"], errs["native"], committed["overlayfs"], errs["overlayfs"])
		}
		if errs["native"] == nil {
			compareSnapshotters(t, trees, setsRootTimes(entries))
		}
	})
}

func countSnapshots(t *testing.T, sn snapshot.Snapshotter) int {
	t.Helper()
	n := 0
	err := sn.Walk(context.Background(), func(context.Context, snapshot.Info) error {
		n++
		return nil
	})
	if err != nil {
		t.Fatalf("walk snapshots: %v", err)
	}
	return n
}

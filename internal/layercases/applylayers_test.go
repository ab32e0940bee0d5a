package layercases

import (
	"path"
	"slices"
	"testing"

	"github.com/strata-containers/strata/archive/tartest"
	"github.com/strata-containers/strata/internal/fstree"
	"github.com/strata-containers/strata/internal/testutil"
	"github.com/strata-containers/strata/snapshot/storage"
)

// TestApplyLayersCases runs every case through unpack.ApplyLayers on the
// overlayfs and native snapshotters, reading the layers from a content
// store as gzip blobs. A case that succeeds is checked on a mounted view of
// each snapshotter's top chain, and the two views must have the same tree
// digest. A rejected case must leave only the parent chains committed,
// with the parent's tree unchanged, and a good layer must still unpack on
// that parent.
func TestApplyLayersCases(t *testing.T) {
	testutil.RequiresOverlay(t)
	groups := Groups()
	names := make([]string, 0, len(groups))
	for g := range groups {
		names = append(names, g)
	}
	slices.Sort(names)
	for _, g := range names {
		for _, tc := range groups[g] {
			t.Run(g+"/"+tc.Name, func(t *testing.T) { runCase(t, tc) })
		}
	}
}

func runCase(t *testing.T, tc Case) {
	s := NewSandbox(t)
	defer s.Check(t)
	entries := tc.Layers(t, s)
	var tars [][]byte
	for _, l := range entries {
		tars = append(tars, tartest.Tar(t, l...))
	}
	blobs := gzipBlobs(t, tars)
	if tc.WantErr != nil {
		for _, k := range snapshotters {
			checkRejected(t, s, newEnv(t, s, k.name), blobs, tc.WantErr, tc.ErrPath, tc.Check)
		}
		return
	}

	trees := map[string][]fstree.Entry{}
	for _, k := range snapshotters {
		e := newEnv(t, s, k.name)
		layers := e.ingest(t, blobs)
		chain, err := e.unpack(layers)
		if err != nil {
			t.Fatalf("%s: unpack: %v", k.name, err)
		}
		view := e.mountView(t, s, chain)
		if tc.Check != nil {
			t.Run(k.name, func(t *testing.T) { tc.Check(t, s, view) })
		}
		trees[k.name] = walk(t, view)
		e.wantSnapshots(t, layers, len(layers))
	}
	compareSnapshotters(t, trees, setsRootTimes(entries))
}

// compareSnapshotters fails t when the overlayfs and native trees differ,
// root times included. Without a root entry in any layer, the root must
// keep the fixed time a base snapshot starts with, so that two unpacks of
// one image agree.
func compareSnapshotters(t *testing.T, trees map[string][]fstree.Entry, rootTimes bool) {
	t.Helper()
	if !rootTimes {
		for name, tree := range trees {
			for _, e := range tree {
				if e.Path == "." && e.ModTime != storage.RootTime.UnixNano() {
					t.Errorf("%s: root mtime %d, want the base snapshot's %d",
						name, e.ModTime, storage.RootTime.UnixNano())
				}
			}
		}
	}
	if fstree.Digest(trees["native"]) != fstree.Digest(trees["overlayfs"]) {
		t.Errorf("overlayfs tree differs from native tree (-native +overlayfs):\n%s",
			fstree.Diff(trees["native"], trees["overlayfs"]))
	}
}

// setsRootTimes reports whether a layer has a directory entry for the
// root, which sets the root's times. The applier cleans names lexically,
// so "a/.." names the root as "./" does.
func setsRootTimes(layers [][]tartest.Entry) bool {
	for _, l := range layers {
		for _, e := range l {
			if e.Raw == nil && e.Header.Typeflag == '5' && path.Clean("/"+e.Header.Name) == "/" {
				return true
			}
		}
	}
	return false
}

// checkRejected unpacks all blobs but the last, then all of them, and
// checks that the last is rejected with class want, leaving the parent
// chain as it was. check, when set, runs on the parent's view. Last, a
// good layer must unpack on the same parent.
func checkRejected(t *testing.T, s *Sandbox, e *env, blobs []blob, want error, entry string,
	check func(testing.TB, *Sandbox, string),
) {
	t.Helper()
	layers := e.ingest(t, blobs)
	n := len(layers) - 1
	var parentView string
	var parentTree []fstree.Entry
	if n > 0 {
		chain, err := e.unpack(layers[:n])
		if err != nil {
			t.Fatalf("%s: unpack the parent layers: %v", e.kind, err)
		}
		parentView = e.mountView(t, s, chain)
		parentTree = walk(t, parentView)
	}

	_, err := e.unpack(layers)
	wantRejected(t, e.kind, err, want, layers[n], entry)
	e.wantSnapshots(t, layers, n)
	if n > 0 {
		if diff := fstree.Diff(parentTree, walk(t, parentView)); diff != "" {
			t.Errorf("%s: parent tree changed (-before +after):\n%s", e.kind, diff)
		}
		if check != nil {
			check(t, s, parentView)
		}
	}

	good := e.ingest(t, gzipBlobs(t, [][]byte{goodLayer(t)}))
	chain, err := e.unpack(append(slices.Clone(layers[:n]), good...))
	if err != nil {
		t.Errorf("%s: unpack a good layer after the rejected one: %v", e.kind, err)
		return
	}
	WantFile(t, e.mountView(t, s, chain), "good/after-failure", "ok")
}

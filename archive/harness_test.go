package archive

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/strata-containers/strata/archive/tartest"
)

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("applying owners, devices and trusted xattrs, and mounting overlayfs, need root")
	}
}

// sandbox is a test directory holding the snapshot dirs next to host
// sentinels that no layer may change: victim/hello, root-evil/secret (a
// sibling whose name shares root's prefix) and the empty dir hostdir.
type sandbox struct {
	dir    string
	before map[string]treeEntry
}

func newSandbox(t *testing.T) *sandbox {
	t.Helper()
	s := &sandbox{dir: t.TempDir()}
	for _, d := range []string{"victim", "root-evil", "hostdir"} {
		if err := os.Mkdir(filepath.Join(s.dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(s.dir, "victim/hello"), "SECRET", 0o640)
	writeFile(t, filepath.Join(s.dir, "root-evil/secret"), "EVIL", 0o644)
	writeFile(t, filepath.Join(s.dir, "perm400"), "host", 0o400)
	s.before = s.hostTree(t)
	return s
}

func writeFile(t *testing.T, p, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

// hostTree records the sentinels, with their link counts, and the names at
// the top of the sandbox.
func (s *sandbox) hostTree(t *testing.T) map[string]treeEntry {
	t.Helper()
	tree := map[string]treeEntry{}
	for _, d := range []string{"victim", "root-evil", "hostdir"} {
		for p, e := range readTree(t, filepath.Join(s.dir, d)) {
			tree[d+"/"+p] = e
		}
	}
	for _, p := range []string{"victim/hello", "root-evil/secret", "perm400"} {
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(s.dir, p), &st); err != nil {
			t.Fatal(err)
		}
		e := statEntry(t, filepath.Join(s.dir, p))
		e.Size = int64(st.Nlink)
		tree[p+"#nlink"] = e
	}
	names, err := os.ReadDir(s.dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		tree["top/"+n.Name()] = treeEntry{}
	}
	return tree
}

func (s *sandbox) check(t *testing.T) {
	t.Helper()
	after := s.hostTree(t)
	for k := range after {
		if _, ok := s.before[k]; !ok && strings.HasPrefix(k, "top/") &&
			!strings.HasPrefix(k, "top/snap") {
			t.Errorf("new host path %s outside the root", strings.TrimPrefix(k, "top/"))
		}
	}
	for k, want := range s.before {
		got, ok := after[k]
		if !ok {
			t.Errorf("host path %s removed", k)
			continue
		}
		if fmt.Sprint(want) != fmt.Sprint(got) {
			t.Errorf("host path %s changed: was %+v, now %+v", k, want, got)
		}
	}
}

// applyNative applies the layers in order into one plain directory and
// returns it with the error of the last layer. Earlier layers must apply.
func applyNative(t *testing.T, s *sandbox, layers [][]byte) (string, error) {
	t.Helper()
	root := filepath.Join(s.dir, "snap-native")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, layer := range layers {
		_, err := Apply(context.Background(), root, bytes.NewReader(layer))
		if i == len(layers)-1 {
			return root, err
		}
		if err != nil {
			t.Fatalf("apply layer %d natively: %v", i, err)
		}
	}
	return root, nil
}

// overlaySnapshots applies layer i into its own upper directory over the
// uppers of layers 0..i-1, as an overlay snapshotter does, and returns the
// uppers with the error of the last layer.
func applyOverlay(t *testing.T, s *sandbox, layers [][]byte) ([]string, error) {
	t.Helper()
	var uppers []string
	for i, layer := range layers {
		upper := filepath.Join(s.dir, fmt.Sprintf("snap-upper%d", i))
		if err := os.Mkdir(upper, 0o755); err != nil {
			t.Fatal(err)
		}
		var lowers []string
		for j := len(uppers) - 1; j >= 0; j-- {
			lowers = append(lowers, uppers[j])
		}
		uppers = append(uppers, upper)
		_, err := Apply(context.Background(), upper, bytes.NewReader(layer), WithOverlay(lowers))
		if i == len(layers)-1 {
			return uppers, err
		}
		if err != nil {
			t.Fatalf("apply layer %d in overlay mode: %v", i, err)
		}
	}
	return uppers, nil
}

// mountLayers mounts the uppers read-only as the lower layers of an
// overlayfs and returns the merged directory, unmounted at cleanup.
func mountLayers(t *testing.T, s *sandbox, uppers []string) string {
	t.Helper()
	empty := filepath.Join(s.dir, "snap-empty")
	merged := filepath.Join(s.dir, "snap-merged")
	for _, d := range []string{empty, merged} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	lowers := []string{}
	for j := len(uppers) - 1; j >= 0; j-- {
		lowers = append(lowers, uppers[j])
	}
	lowers = append(lowers, empty)
	opts := "lowerdir=" + strings.Join(lowers, ":")
	if err := unix.Mount("overlay", merged, "overlay", unix.MS_RDONLY, opts); err != nil {
		t.Fatalf("mount overlay %s: %v", opts, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(merged, 0); err != nil {
			t.Errorf("unmount %s: %v", merged, err)
		}
	})
	return merged
}

func tarLayers(t *testing.T, layers [][]tartest.Entry) [][]byte {
	t.Helper()
	out := make([][]byte, len(layers))
	for i, l := range layers {
		out[i] = tartest.Tar(t, l...)
	}
	return out
}

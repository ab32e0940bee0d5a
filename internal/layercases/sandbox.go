package layercases

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/strata-containers/strata/internal/fstree"
	"github.com/strata-containers/strata/internal/testutil"
)

// Sandbox is a test directory that holds the snapshot directories next to
// host sentinels that no layer may change: victim/hello ("SECRET", 0640),
// root-evil/secret (a sibling whose name shares a prefix with a root named
// "root"), perm400 (mode 0400) and the empty directory hostdir.
//
// Tests put everything they create under names that start with "snap";
// [Sandbox.Check] reports any other new name in Dir.
type Sandbox struct {
	Dir    string
	before hostState
}

// hostState is what Check compares: the trees of the sentinel
// directories, the link counts of the sentinel files and the names at the
// top of the sandbox.
type hostState struct {
	Trees map[string][]fstree.Entry
	Links map[string]uint64
	Names []string
}

var sentinelDirs = []string{"victim", "root-evil", "hostdir"}

var sentinelFiles = []string{"victim/hello", "root-evil/secret", "perm400"}

// NewSandbox creates the sandbox in a directory that is removed, with
// anything mounted below it unmounted, when t ends.
func NewSandbox(t testing.TB) *Sandbox {
	t.Helper()
	s := &Sandbox{Dir: testutil.TempDir(t)}
	for _, d := range sentinelDirs {
		if err := os.Mkdir(filepath.Join(s.Dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(s.Dir, "victim/hello"), "SECRET", 0o640)
	writeFile(t, filepath.Join(s.Dir, "root-evil/secret"), "EVIL", 0o644)
	writeFile(t, filepath.Join(s.Dir, "perm400"), "host", 0o400)
	s.before = s.state(t)
	return s
}

// Path returns the absolute path of p inside the sandbox.
func (s *Sandbox) Path(p string) string { return filepath.Join(s.Dir, p) }

func writeFile(t testing.TB, p, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

func (s *Sandbox) state(t testing.TB) hostState {
	t.Helper()
	st := hostState{Trees: map[string][]fstree.Entry{}, Links: map[string]uint64{}}
	for _, d := range sentinelDirs {
		entries, err := fstree.Walk(filepath.Join(s.Dir, d))
		if err != nil {
			t.Fatalf("walk sentinel: %v", err)
		}
		st.Trees[d] = entries
	}
	for _, p := range sentinelFiles {
		var stat unix.Stat_t
		if err := unix.Lstat(filepath.Join(s.Dir, p), &stat); err != nil {
			t.Fatalf("lstat sentinel: %v", err)
		}
		st.Links[p] = uint64(stat.Nlink)
	}
	names, err := os.ReadDir(s.Dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if !strings.HasPrefix(n.Name(), "snap") {
			st.Names = append(st.Names, n.Name())
		}
	}
	return st
}

// Check fails t when a sentinel changed in content, mode, owner, times,
// xattrs or link count, or when a name not starting with "snap" appeared
// at the top of the sandbox.
func (s *Sandbox) Check(t testing.TB) {
	t.Helper()
	after := s.state(t)
	if diff := cmp.Diff(s.before.Names, after.Names); diff != "" {
		t.Errorf("names next to the snapshots changed (-before +after):\n%s", diff)
	}
	for _, d := range sentinelDirs {
		if diff := fstree.Diff(s.before.Trees[d], after.Trees[d]); diff != "" {
			t.Errorf("host directory %s changed (-before +after):\n%s", d, diff)
		}
	}
	for p, n := range s.before.Links {
		if after.Links[p] != n {
			t.Errorf("host file %s: link count %d, was %d", p, after.Links[p], n)
		}
	}
}

// CheckOnly fails t when dir holds a name that is not in names. Tests use
// it on the directories around a snapshot root, where a write that escaped
// the root would land.
func CheckOnly(t testing.TB, dir string, names ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Errorf("read dir %s: %v", dir, err)
		return
	}
	for _, e := range entries {
		if !slices.Contains(names, e.Name()) {
			t.Errorf("unexpected %s in %s", e.Name(), dir)
		}
	}
}

package archive

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

func lstat(t *testing.T, root, p string) (unix.Stat_t, bool) {
	t.Helper()
	var st unix.Stat_t
	err := unix.Lstat(filepath.Join(root, p), &st)
	if err == unix.ENOENT {
		return st, false
	}
	if err != nil {
		t.Fatalf("lstat %s: %v", p, err)
	}
	return st, true
}

func wantFile(t *testing.T, root, p, content string) {
	t.Helper()
	st, ok := lstat(t, root, p)
	if !ok {
		t.Errorf("%s: missing, want file %q", p, content)
		return
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		t.Errorf("%s: mode %o, want a regular file", p, st.Mode)
		return
	}
	b, err := os.ReadFile(filepath.Join(root, p))
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != content {
		t.Errorf("%s: content %q, want %q", p, b, content)
	}
}

func wantMissing(t *testing.T, root, p string) {
	t.Helper()
	if _, ok := lstat(t, root, p); ok {
		t.Errorf("%s: exists, want missing", p)
	}
}

func wantDir(t *testing.T, root, p string) {
	t.Helper()
	st, ok := lstat(t, root, p)
	if !ok || st.Mode&unix.S_IFMT != unix.S_IFDIR {
		t.Errorf("%s: want a directory (exists %v, mode %o)", p, ok, st.Mode)
	}
}

func wantSymlink(t *testing.T, root, p, target string) {
	t.Helper()
	got, err := os.Readlink(filepath.Join(root, p))
	if err != nil {
		t.Errorf("%s: want symlink to %q: %v", p, target, err)
		return
	}
	if got != target {
		t.Errorf("%s: symlink to %q, want %q", p, got, target)
	}
}

func wantMode(t *testing.T, root, p string, mode uint32) {
	t.Helper()
	st, ok := lstat(t, root, p)
	if !ok {
		t.Errorf("%s: missing, want mode %#o", p, mode)
		return
	}
	if got := st.Mode & 0o7777; got != mode {
		t.Errorf("%s: mode %#o, want %#o", p, got, mode)
	}
}

func wantOwner(t *testing.T, root, p string, uid, gid uint32) {
	t.Helper()
	st, ok := lstat(t, root, p)
	if !ok {
		t.Errorf("%s: missing, want owner %d:%d", p, uid, gid)
		return
	}
	if st.Uid != uid || st.Gid != gid {
		t.Errorf("%s: owner %d:%d, want %d:%d", p, st.Uid, st.Gid, uid, gid)
	}
}

func wantMtime(t *testing.T, root, p string, sec, nsec int64) {
	t.Helper()
	st, ok := lstat(t, root, p)
	if !ok {
		t.Errorf("%s: missing, want mtime %d.%09d", p, sec, nsec)
		return
	}
	if st.Mtim.Sec != sec || st.Mtim.Nsec != nsec {
		t.Errorf("%s: mtime %d.%09d, want %d.%09d", p, st.Mtim.Sec, st.Mtim.Nsec, sec, nsec)
	}
}

func wantXattr(t *testing.T, root, p, name, value string) {
	t.Helper()
	got := readXattrs(t, filepath.Join(root, p))
	if v, ok := got[name]; !ok || v != value {
		t.Errorf("%s: xattr %s = %q (set %v), want %q", p, name, v, ok, value)
	}
}

func wantNoXattr(t *testing.T, root, p, name string) {
	t.Helper()
	if v, ok := readXattrs(t, filepath.Join(root, p))[name]; ok {
		t.Errorf("%s: xattr %s = %q, want none", p, name, v)
	}
}

// wantNames checks the exact list of names in directory p.
func wantNames(t *testing.T, root, p string, names ...string) {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(root, p))
	if err != nil {
		t.Errorf("read dir %s: %v", p, err)
		return
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	slices.Sort(names)
	if names == nil {
		names = []string{}
	}
	if got == nil {
		got = []string{}
	}
	if diff := cmp.Diff(names, got); diff != "" {
		t.Errorf("names in %q (-want +got):\n%s", p, diff)
	}
}

// wantSameInode checks that two names are hard links of one inode with the
// given link count.
func wantSameInode(t *testing.T, root, p, q string, nlink uint64) {
	t.Helper()
	a, ok1 := lstat(t, root, p)
	b, ok2 := lstat(t, root, q)
	if !ok1 || !ok2 {
		t.Errorf("%s, %s: want both to exist (%v, %v)", p, q, ok1, ok2)
		return
	}
	if a.Ino != b.Ino {
		t.Errorf("%s and %s: inodes %d and %d, want one inode", p, q, a.Ino, b.Ino)
	}
	if a.Nlink != nlink {
		t.Errorf("%s: nlink %d, want %d", p, a.Nlink, nlink)
	}
}

package layercases

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

// The Want helpers check one fact about the path p below root, which is a
// snapshot directory or a mounted view, and report a failure with t.Errorf
// so that a case's other checks still run.

// Lstat returns the lstat of p below root and whether p exists.
func Lstat(t testing.TB, root, p string) (unix.Stat_t, bool) {
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

// WantFile checks that p is a regular file holding content.
func WantFile(t testing.TB, root, p, content string) {
	t.Helper()
	st, ok := Lstat(t, root, p)
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

// WantMissing checks that p does not exist.
func WantMissing(t testing.TB, root, p string) {
	t.Helper()
	if _, ok := Lstat(t, root, p); ok {
		t.Errorf("%s: exists, want missing", p)
	}
}

// WantDir checks that p is a directory.
func WantDir(t testing.TB, root, p string) {
	t.Helper()
	st, ok := Lstat(t, root, p)
	if !ok || st.Mode&unix.S_IFMT != unix.S_IFDIR {
		t.Errorf("%s: want a directory (exists %v, mode %o)", p, ok, st.Mode)
	}
}

// WantSymlink checks that p is a symlink whose target is exactly target.
func WantSymlink(t testing.TB, root, p, target string) {
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

// WantMode checks the permission bits of p, with setuid, setgid and
// sticky.
func WantMode(t testing.TB, root, p string, mode uint32) {
	t.Helper()
	st, ok := Lstat(t, root, p)
	if !ok {
		t.Errorf("%s: missing, want mode %#o", p, mode)
		return
	}
	if got := st.Mode & 0o7777; got != mode {
		t.Errorf("%s: mode %#o, want %#o", p, got, mode)
	}
}

// WantOwner checks the numeric owner and group of p.
func WantOwner(t testing.TB, root, p string, uid, gid uint32) {
	t.Helper()
	st, ok := Lstat(t, root, p)
	if !ok {
		t.Errorf("%s: missing, want owner %d:%d", p, uid, gid)
		return
	}
	if st.Uid != uid || st.Gid != gid {
		t.Errorf("%s: owner %d:%d, want %d:%d", p, st.Uid, st.Gid, uid, gid)
	}
}

// WantMtime checks the mtime of p, without following a final symlink.
func WantMtime(t testing.TB, root, p string, sec, nsec int64) {
	t.Helper()
	st, ok := Lstat(t, root, p)
	if !ok {
		t.Errorf("%s: missing, want mtime %d.%09d", p, sec, nsec)
		return
	}
	if st.Mtim.Sec != sec || st.Mtim.Nsec != nsec {
		t.Errorf("%s: mtime %d.%09d, want %d.%09d", p, st.Mtim.Sec, st.Mtim.Nsec, sec, nsec)
	}
}

// WantXattr checks that p carries the xattr name with value.
func WantXattr(t testing.TB, root, p, name, value string) {
	t.Helper()
	got := Xattrs(t, filepath.Join(root, p))
	if v, ok := got[name]; !ok || v != value {
		t.Errorf("%s: xattr %s = %q (set %v), want %q", p, name, v, ok, value)
	}
}

// WantNoXattr checks that p does not carry the xattr name.
func WantNoXattr(t testing.TB, root, p, name string) {
	t.Helper()
	if v, ok := Xattrs(t, filepath.Join(root, p))[name]; ok {
		t.Errorf("%s: xattr %s = %q, want none", p, name, v)
	}
}

// WantNames checks the exact list of names in directory p.
func WantNames(t testing.TB, root, p string, names ...string) {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(root, p))
	if err != nil {
		t.Errorf("read dir %s: %v", p, err)
		return
	}
	got := []string{}
	for _, e := range entries {
		got = append(got, e.Name())
	}
	want := append([]string{}, names...)
	slices.Sort(want)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("names in %q (-want +got):\n%s", p, diff)
	}
}

// WantSameInode checks that p and q are hard links of one inode with the
// link count nlink. On a mounted overlay view the count is that of the
// topmost layer holding the inode, which can exceed the links the view
// shows.
func WantSameInode(t testing.TB, root, p, q string, nlink uint64) {
	t.Helper()
	a, ok1 := Lstat(t, root, p)
	b, ok2 := Lstat(t, root, q)
	if !ok1 || !ok2 {
		t.Errorf("%s, %s: want both to exist (%v, %v)", p, q, ok1, ok2)
		return
	}
	if a.Ino != b.Ino {
		t.Errorf("%s and %s: inodes %d and %d, want one inode", p, q, a.Ino, b.Ino)
	}
	if uint64(a.Nlink) != nlink {
		t.Errorf("%s: nlink %d, want %d", p, a.Nlink, nlink)
	}
}

// WantDevice checks that p is a device node of type typ (unix.S_IFCHR or
// unix.S_IFBLK) with the given numbers.
func WantDevice(t testing.TB, root, p string, typ uint32, major, minor uint32) {
	t.Helper()
	st, ok := Lstat(t, root, p)
	if !ok {
		t.Errorf("%s: missing, want device %d:%d", p, major, minor)
		return
	}
	if st.Mode&unix.S_IFMT != typ || st.Rdev != unix.Mkdev(major, minor) {
		t.Errorf("%s: mode %o rdev %d:%d, want type %o %d:%d", p, st.Mode,
			unix.Major(st.Rdev), unix.Minor(st.Rdev), typ, major, minor)
	}
}

// Xattrs returns the xattrs of path, without following a final symlink,
// leaving out trusted.overlay.* and user.overlay.*, which only overlay
// upper directories carry.
func Xattrs(t testing.TB, path string) map[string]string {
	t.Helper()
	buf := make([]byte, 64<<10)
	n, err := unix.Llistxattr(path, buf)
	if err == unix.ENOTSUP {
		return nil
	}
	if err != nil {
		t.Fatalf("list xattrs of %s: %v", path, err)
	}
	var xattrs map[string]string
	for name := range strings.SplitSeq(string(buf[:n]), "\x00") {
		if name == "" || strings.HasPrefix(name, "trusted.overlay.") ||
			strings.HasPrefix(name, "user.overlay.") {
			continue
		}
		value := make([]byte, 64<<10)
		m, err := unix.Lgetxattr(path, name, value)
		if err != nil {
			t.Fatalf("get xattr %s of %s: %v", name, path, err)
		}
		if xattrs == nil {
			xattrs = map[string]string{}
		}
		xattrs[name] = string(value[:m])
	}
	return xattrs
}

func fileSHA256(t testing.TB, root, p string) string {
	t.Helper()
	f, err := os.Open(filepath.Join(root, p))
	if err != nil {
		t.Errorf("open %s: %v", p, err)
		return ""
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Errorf("read %s: %v", p, err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

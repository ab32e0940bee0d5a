//go:build linux

package fstree

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for chown, mknod, trusted.* xattrs or mounts")
	}
}

func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	// WriteFile's mode passes through the umask, Chmod's does not.
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func mustWalk(t *testing.T, root string, opts ...Opt) []Entry {
	t.Helper()
	entries, err := Walk(root, opts...)
	if err != nil {
		t.Fatalf("Walk(%s): %v", root, err)
	}
	return entries
}

func find(t *testing.T, entries []Entry, path string) Entry {
	t.Helper()
	for _, e := range entries {
		if e.Path == path {
			return e
		}
	}
	t.Fatalf("no entry %q in %d entries", path, len(entries))
	return Entry{}
}

func sha(content string) digest.Digest { return digest.FromString(content) }

func TestWalkRecordsTypes(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "dir/file"), "hello", 0o644)
	if err := os.Symlink("dir/file", filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(filepath.Join(root, "fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(root, "fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("unix", filepath.Join(root, "sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(root, "dir"), 0o755); err != nil {
		t.Fatal(err)
	}

	got := mustWalk(t, root, WithoutModTimes())

	uid, gid := uint32(os.Getuid()), uint32(os.Getgid())
	sockMode := find(t, got, "sock").Mode
	want := []Entry{
		{Path: ".", Type: Dir, Mode: 0o755, UID: uid, GID: gid},
		{Path: "dir", Type: Dir, Mode: 0o755, UID: uid, GID: gid},
		{Path: "dir/file", Type: Regular, Mode: 0o644, UID: uid, GID: gid,
			Size: 5, Content: sha("hello")},
		{Path: "fifo", Type: FIFO, Mode: 0o600, UID: uid, GID: gid},
		{Path: "link", Type: Symlink, Mode: 0o777, UID: uid, GID: gid, Target: "dir/file"},
		{Path: "sock", Type: Socket, Mode: sockMode, UID: uid, GID: gid},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Walk mismatch (-want +got):\n%s", diff)
	}
}

func TestWalkModeBits(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "setuid"), "x", 0o755)
	writeFile(t, filepath.Join(root, "setgid"), "x", 0o755)
	if err := os.Mkdir(filepath.Join(root, "sticky"), 0o755); err != nil {
		t.Fatal(err)
	}
	// unix.Chmod takes st_mode bits, which os.FileMode spells differently.
	for path, mode := range map[string]uint32{"setuid": 0o4755, "setgid": 0o2755, "sticky": 0o1777} {
		if err := unix.Chmod(filepath.Join(root, path), mode); err != nil {
			t.Fatal(err)
		}
	}

	got := mustWalk(t, root)
	for path, want := range map[string]uint32{"setuid": 0o4755, "setgid": 0o2755, "sticky": 0o1777} {
		if mode := find(t, got, path).Mode; mode != want {
			t.Errorf("%s: mode %04o, want %04o", path, mode, want)
		}
	}
}

func TestWalkHardLinkGroups(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "b"), "linked", 0o644)
	for _, name := range []string{"a", "sub/c"} {
		if err := os.MkdirAll(filepath.Join(root, filepath.Dir(name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Link(filepath.Join(root, "b"), filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(root, "single"), "one name", 0o644)
	// A link from outside the tree raises nlink but makes no group inside it.
	writeFile(t, filepath.Join(root, "outside-linked"), "two names", 0o644)
	if err := os.Link(filepath.Join(root, "outside-linked"),
		filepath.Join(t.TempDir(), "other")); err != nil {
		t.Fatal(err)
	}

	got := mustWalk(t, root)
	for path, want := range map[string]string{
		"a": "a", "b": "a", "sub/c": "a", "single": "", "outside-linked": "",
	} {
		if group := find(t, got, path).LinkGroup; group != want {
			t.Errorf("%s: LinkGroup %q, want %q", path, group, want)
		}
	}
}

func TestWalkDoesNotFollowSymlinks(t *testing.T) {
	outside := t.TempDir()
	writeFile(t, filepath.Join(outside, "secret"), "outside the root", 0o644)
	root := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(root, "escape")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "secret"), filepath.Join(root, "file-link")); err != nil {
		t.Fatal(err)
	}

	got := mustWalk(t, root)
	var paths []string
	for _, e := range got {
		paths = append(paths, e.Path)
	}
	if diff := cmp.Diff([]string{".", "escape", "file-link"}, paths); diff != "" {
		t.Errorf("paths mismatch (-want +got):\n%s", diff)
	}
	if e := find(t, got, "file-link"); e.Type != Symlink || e.Content != "" {
		t.Errorf("file-link: type %s content %q, want a symlink with no content", e.Type, e.Content)
	}
}

func TestWalkRootNotDirectory(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	writeFile(t, file, "x", 0o644)
	if _, err := Walk(file); !errors.Is(err, unix.ENOTDIR) {
		t.Errorf("Walk(file) error %v, want ENOTDIR", err)
	}
	if _, err := Walk(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Walk(missing) error %v, want not exist", err)
	}
}

func TestWalkNonUTF8Name(t *testing.T) {
	root := t.TempDir()
	name := "caf\xe9 \n"
	writeFile(t, filepath.Join(root, name), "latin-1", 0o644)

	got := mustWalk(t, root)
	if e := find(t, got, name); e.Content != sha("latin-1") {
		t.Errorf("content %s, want %s", e.Content, sha("latin-1"))
	}
}

func TestWalkModTimes(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "dir/file"), "x", 0o644)
	if err := os.Symlink("dir", filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	mtime := time.Unix(1704067200, 123456789)
	ts := []unix.Timespec{unix.NsecToTimespec(mtime.UnixNano()), unix.NsecToTimespec(mtime.UnixNano())}
	for _, p := range []string{"dir/file", "link", "dir", "."} {
		err := unix.UtimesNanoAt(unix.AT_FDCWD, filepath.Join(root, p), ts, unix.AT_SYMLINK_NOFOLLOW)
		if err != nil {
			t.Fatal(err)
		}
	}

	tests := []struct {
		name          string
		opts          []Opt
		file, dir, ln int64
	}{
		{"default", nil, mtime.UnixNano(), mtime.UnixNano(), mtime.UnixNano()},
		{"without dirs", []Opt{WithoutDirModTimes()}, mtime.UnixNano(), 0, mtime.UnixNano()},
		{"without any", []Opt{WithoutModTimes()}, 0, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := mustWalk(t, root, tt.opts...)
			if m := find(t, got, "dir/file").ModTime; m != tt.file {
				t.Errorf("file mtime %d, want %d", m, tt.file)
			}
			if m := find(t, got, "dir").ModTime; m != tt.dir {
				t.Errorf("dir mtime %d, want %d", m, tt.dir)
			}
			if m := find(t, got, "link").ModTime; m != tt.ln {
				t.Errorf("symlink mtime %d, want %d", m, tt.ln)
			}
		})
	}
}

func TestWalkUserXattrs(t *testing.T) {
	root := t.TempDir()
	file := filepath.Join(root, "file")
	writeFile(t, file, "x", 0o644)
	if err := unix.Setxattr(file, "user.b", []byte("2"), 0); errors.Is(err, unix.ENOTSUP) {
		t.Skipf("no user xattrs on %s", root)
	} else if err != nil {
		t.Fatal(err)
	}
	for name, value := range map[string]string{"user.a": "1\x00bin", "user.overlay.origin": "o"} {
		if err := unix.Setxattr(file, name, []byte(value), 0); err != nil {
			t.Fatal(err)
		}
	}

	got := find(t, mustWalk(t, root), "file").Xattrs
	want := []Xattr{{"user.a", "1\x00bin"}, {"user.b", "2"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("default xattrs mismatch (-want +got):\n%s", diff)
	}

	got = find(t, mustWalk(t, root, WithOverlayXattrs()), "file").Xattrs
	want = []Xattr{{"user.a", "1\x00bin"}, {"user.b", "2"}, {"user.overlay.origin", "o"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("WithOverlayXattrs mismatch (-want +got):\n%s", diff)
	}
}

func TestWalkSkip(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "keep/file"), "x", 0o644)
	writeFile(t, filepath.Join(root, "drop/file"), "x", 0o644)

	got := mustWalk(t, root, WithSkip(func(p string) bool { return p == "drop" }))
	var paths []string
	for _, e := range got {
		paths = append(paths, e.Path)
	}
	if diff := cmp.Diff([]string{".", "keep", "keep/file"}, paths); diff != "" {
		t.Errorf("paths mismatch (-want +got):\n%s", diff)
	}
}

func TestWalkOwnersAndDevices(t *testing.T) {
	requireRoot(t)
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "owned"), "x", 0o644)
	if err := os.Lchown(filepath.Join(root, "owned"), 1000, 65534); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("owned", filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(filepath.Join(root, "link"), 65534, 1000); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mknod(filepath.Join(root, "null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mknod(filepath.Join(root, "loop"), unix.S_IFBLK|0o660, int(unix.Mkdev(7, 300))); err != nil {
		t.Fatal(err)
	}

	got := mustWalk(t, root)
	if e := find(t, got, "owned"); e.UID != 1000 || e.GID != 65534 {
		t.Errorf("owned: %d:%d, want 1000:65534", e.UID, e.GID)
	}
	if e := find(t, got, "link"); e.UID != 65534 || e.GID != 1000 {
		t.Errorf("link: %d:%d, want 65534:1000", e.UID, e.GID)
	}
	if e := find(t, got, "null"); e.Type != CharDevice || e.Rdev != unix.Mkdev(1, 3) {
		t.Errorf("null: %s rdev %d, want char 1:3", e.Type, e.Rdev)
	}
	if e := find(t, got, "loop"); e.Type != BlockDevice || e.Rdev != unix.Mkdev(7, 300) {
		t.Errorf("loop: %s rdev %d, want block 7:300", e.Type, e.Rdev)
	}

	loop := find(t, got, "loop")
	changed := loop
	changed.Rdev = unix.Mkdev(7, 301)
	if d := Diff([]Entry{loop}, []Entry{changed}); d != "~ \"loop\" rdev: 7:300 -> 7:301\n" {
		t.Errorf("Diff of a changed device number:\n%s", d)
	}
}

func TestWalkUnreadableDir(t *testing.T) {
	requireRoot(t)
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "locked/file"), "x", 0o000)
	if err := os.Chmod(filepath.Join(root, "locked"), 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chmod(filepath.Join(root, "locked"), 0o755) })

	got := mustWalk(t, root)
	if e := find(t, got, "locked"); e.Mode != 0 {
		t.Errorf("locked: mode %04o, want 0000", e.Mode)
	}
	if e := find(t, got, "locked/file"); e.Content != sha("x") {
		t.Errorf("locked/file: content %s, want %s", e.Content, sha("x"))
	}
}

func TestWalkTrustedOverlayXattrs(t *testing.T) {
	requireRoot(t)
	root := t.TempDir()
	dir := filepath.Join(root, "opaque")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Setxattr(dir, "trusted.overlay.opaque", []byte("y"), 0); err != nil {
		t.Skipf("set trusted.overlay.opaque on %s: %v", dir, err)
	}

	if x := find(t, mustWalk(t, root), "opaque").Xattrs; len(x) != 0 {
		t.Errorf("default xattrs %v, want none", x)
	}
	got := find(t, mustWalk(t, root, WithOverlayXattrs()), "opaque").Xattrs
	if diff := cmp.Diff([]Xattr{{"trusted.overlay.opaque", "y"}}, got); diff != "" {
		t.Errorf("WithOverlayXattrs mismatch (-want +got):\n%s", diff)
	}
}

func TestWalkStopsAtMountPoint(t *testing.T) {
	requireRoot(t)
	root := t.TempDir()
	mnt := filepath.Join(root, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("fstree-test", mnt, "tmpfs", 0, "mode=0755"); err != nil {
		t.Skipf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(mnt, 0); err != nil {
			t.Errorf("unmount %s: %v", mnt, err)
		}
	})
	writeFile(t, filepath.Join(mnt, "inside"), "x", 0o644)

	got := mustWalk(t, root)
	find(t, got, "mnt")
	for _, e := range got {
		if e.Path == "mnt/inside" {
			t.Errorf("Walk descended into the tmpfs mounted at mnt")
		}
	}
}

// TestWalkOverlayMatchesCopy checks that an overlay mount walks like a plain
// directory holding the merged result.
func TestWalkOverlayMatchesCopy(t *testing.T) {
	requireRoot(t)
	base := t.TempDir()
	lower, upper := filepath.Join(base, "lower"), filepath.Join(base, "upper")
	work, merged := filepath.Join(base, "work"), filepath.Join(base, "merged")
	plain := filepath.Join(base, "plain")
	for _, d := range []string{work, merged} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(lower, "etc/kept"), "lower", 0o644)
	writeFile(t, filepath.Join(upper, "etc/added"), "upper", 0o600)
	writeFile(t, filepath.Join(plain, "etc/kept"), "lower", 0o644)
	writeFile(t, filepath.Join(plain, "etc/added"), "upper", 0o600)
	for _, d := range []string{lower, upper, plain} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}

	opts := "lowerdir=" + lower + ",upperdir=" + upper + ",workdir=" + work
	if err := unix.Mount("overlay", merged, "overlay", 0, opts); err != nil {
		t.Skipf("mount overlay: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(merged, 0); err != nil {
			t.Errorf("unmount %s: %v", merged, err)
		}
	})

	want := mustWalk(t, plain, WithoutModTimes())
	got := mustWalk(t, merged, WithoutModTimes())
	if Digest(want) != Digest(got) {
		t.Errorf("overlay differs from plain copy (-want +got):\n%s", Diff(want, got))
	}
}

func TestDigestDependsOnEachField(t *testing.T) {
	base := []Entry{
		{Path: ".", Type: Dir, Mode: 0o755},
		{Path: "file", Type: Regular, Mode: 0o644, Size: 1, Content: sha("x"), ModTime: 1},
	}
	want := Digest(base)
	if got := Digest([]Entry{base[1], base[0]}); got != want {
		t.Errorf("Digest depends on order: %s != %s", got, want)
	}

	changes := map[string]func(e *Entry){
		"path":      func(e *Entry) { e.Path = "File" },
		"type":      func(e *Entry) { e.Type = FIFO },
		"mode":      func(e *Entry) { e.Mode = 0o4644 },
		"uid":       func(e *Entry) { e.UID = 1 },
		"gid":       func(e *Entry) { e.GID = 1 },
		"size":      func(e *Entry) { e.Size = 2 },
		"content":   func(e *Entry) { e.Content = sha("y") },
		"target":    func(e *Entry) { e.Target = "x" },
		"xattrs":    func(e *Entry) { e.Xattrs = []Xattr{{"user.a", ""}} },
		"rdev":      func(e *Entry) { e.Rdev = 1 },
		"mtime":     func(e *Entry) { e.ModTime = 2 },
		"linkgroup": func(e *Entry) { e.LinkGroup = "file" },
	}
	for name, change := range changes {
		entries := append([]Entry(nil), base...)
		change(&entries[1])
		if Digest(entries) == want {
			t.Errorf("changing %s keeps the digest", name)
		}
		if Diff(base, entries) == "" {
			t.Errorf("changing %s gives an empty Diff", name)
		}
	}

	// A quoted encoding keeps a field's bytes from moving into the next one.
	a := []Entry{{Path: "a", Target: "b c"}}
	b := []Entry{{Path: "a", Target: "b", LinkGroup: "c"}}
	if Digest(a) == Digest(b) {
		t.Errorf("entries with shifted field bytes share a digest")
	}
}

func TestDiffLines(t *testing.T) {
	want := []Entry{
		{Path: ".", Type: Dir, Mode: 0o755},
		{Path: "gone", Type: Regular},
		{Path: "same", Type: Regular},
		{Path: "mode", Type: Regular, Mode: 0o644},
	}
	got := []Entry{
		{Path: ".", Type: Dir, Mode: 0o755},
		{Path: "added\xff", Type: Symlink, Target: "x"},
		{Path: "same", Type: Regular},
		{Path: "mode", Type: Regular, Mode: 0o4755},
	}
	if d := Diff(want, want); d != "" {
		t.Errorf("Diff(want, want) = %q, want empty", d)
	}

	wantDiff := strings.Join([]string{
		`+ "added\xff" symlink`,
		`- "gone" reg`,
		`~ "mode" mode: 0644 -> 4755`,
	}, "\n") + "\n"
	if d := Diff(want, got); d != wantDiff {
		t.Errorf("Diff mismatch:\ngot:\n%s\nwant:\n%s", d, wantDiff)
	}
}

func TestDiffCapsLines(t *testing.T) {
	var got []Entry
	for i := range maxDiffLines + 5 {
		got = append(got, Entry{Path: fmt.Sprintf("f%03d", i), Type: Regular})
	}
	lines := strings.Split(strings.TrimSuffix(Diff(nil, got), "\n"), "\n")
	if len(lines) != maxDiffLines+1 {
		t.Fatalf("Diff printed %d lines, want %d", len(lines), maxDiffLines+1)
	}
	if last := lines[len(lines)-1]; last != "... and 5 more differences" {
		t.Errorf("last line %q, want the count of the rest", last)
	}
}

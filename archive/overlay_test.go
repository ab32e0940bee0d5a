package archive

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/strata-containers/strata/archive/tartest"
	"github.com/strata-containers/strata/internal/fstree"
)

func wantWhiteout(t *testing.T, upper, p string) {
	t.Helper()
	st, ok := lstat(t, upper, p)
	if !ok || st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
		t.Errorf("%s: want an overlay whiteout (exists %v, mode %o, rdev %d)",
			p, ok, st.Mode, st.Rdev)
	}
}

func wantOpaque(t *testing.T, upper, p string, opaque bool) {
	t.Helper()
	buf := make([]byte, 8)
	n, err := unix.Lgetxattr(filepath.Join(upper, p), overlayOpaqueXattr, buf)
	got := err == nil && string(buf[:n]) == "y"
	if got != opaque {
		t.Errorf("%s: opaque %v, want %v", p, got, opaque)
	}
}

// applyUppers applies the layers in overlay mode and checks that each
// layer leaves the uppers below it unchanged.
func applyUppers(t *testing.T, s *sandbox, ls ...[]tartest.Entry) []string {
	t.Helper()
	var uppers []string
	for i := range ls {
		var before [][]fstree.Entry
		for _, u := range uppers {
			before = append(before, walkTree(t, u, fstree.WithOverlayXattrs()))
		}
		var err error
		uppers, err = applyOverlaySeq(t, s, uppers, tartest.Tar(t, ls[i]...))
		if err != nil {
			t.Fatalf("apply layer %d: %v", i, err)
		}
		for j, u := range uppers[:len(uppers)-1] {
			compareUpper(t, i, j, before[j], u)
		}
	}
	return uppers
}

func applyOverlaySeq(t *testing.T, s *sandbox, uppers []string, layer []byte) ([]string, error) {
	t.Helper()
	upper := newRoot(t, s, "snap-u"+string(rune('a'+len(uppers))))
	_, err := Apply(context.Background(), upper, bytes.NewReader(layer),
		WithOverlay(reversed(uppers)))
	return append(uppers, upper), err
}

func TestOverlayUpper(t *testing.T) {
	requireRoot(t)

	t.Run("usrmerge", func(t *testing.T) {
		s := newSandbox(t)
		u := applyUppers(t, s,
			entries(dir("usr/", mode(0o750)), dir("usr/lib/"), file("usr/lib/libc.so", "C"),
				symlink("lib", "usr/lib")),
			entries(file("lib/systemd/system/container.service", "content")),
		)
		wantNames(t, u[1], "", "usr")
		wantMode(t, u[1], "usr", 0o750)
		wantFile(t, u[1], "usr/lib/systemd/system/container.service", "content")
	})

	t.Run("whiteouts and opaque", func(t *testing.T) {
		s := newSandbox(t)
		u := applyUppers(t, s,
			entries(dir("a/"), file("a/f", ""), file("a/g", ""), dir("b/"), file("b/x", ""),
				dir("c/"), file("c/old", "")),
			entries(whiteout("a/f"), whiteout("a/missing"), whiteout("c/old"), opaque("c"),
				file("c/new", ""), whiteout("b")),
		)
		wantWhiteout(t, u[1], "a/f")
		wantMissing(t, u[1], "a/missing")
		wantOpaque(t, u[1], "a", false)
		wantWhiteout(t, u[1], "b")
		wantOpaque(t, u[1], "c", true)
		wantNames(t, u[1], "c", "new")
	})

	t.Run("dir replacing lower file is opaque", func(t *testing.T) {
		s := newSandbox(t)
		u := applyUppers(t, s,
			entries(file("x", ""), dir("y/"), file("y/old", "")),
			entries(dir("x/"), file("x/a", ""), whiteout("y"), dir("y/"), dir("z/")),
		)
		wantOpaque(t, u[1], "x", true)
		wantOpaque(t, u[1], "y", true)
		wantOpaque(t, u[1], "z", false)
	})

	t.Run("implied parents copy lower metadata", func(t *testing.T) {
		s := newSandbox(t)
		u := applyUppers(t, s,
			entries(dir("tmp/", mode(0o1777)),
				dir("opt/", mode(0o750), owner(5, 6), xattr("user.x", "1"), mtime(1234))),
			entries(file("tmp/app/sock.conf", "c"), file("opt/tool/bin/t", "t")),
		)
		wantMode(t, u[1], "tmp", 0o1777)
		wantMode(t, u[1], "opt", 0o750)
		wantOwner(t, u[1], "opt", 5, 6)
		wantXattr(t, u[1], "opt", "user.x", "1")
		wantMtime(t, u[1], "opt", 1234, 0)
		wantMode(t, u[1], "opt/tool", 0o755)
	})

	t.Run("read-only lower dir", func(t *testing.T) {
		s := newSandbox(t)
		u := applyUppers(t, s,
			entries(dir("m/", mode(0o555)), file("m/a.conf", "a", mode(0o444))),
			entries(whiteout("m/a.conf"), file("m/b.conf", "b")),
		)
		wantMode(t, u[1], "m", 0o555)
		wantWhiteout(t, u[1], "m/a.conf")
		wantFile(t, u[1], "m/b.conf", "b")
	})

	t.Run("hardlink copies lower target up", func(t *testing.T) {
		s := newSandbox(t)
		u := applyUppers(t, s,
			entries(file("bin/busybox", "BB", mode(0o4755), xattr("user.tag", "1"))),
			entries(hardlink("bin/sh", "bin/busybox")),
		)
		wantSameInode(t, u[1], "bin/busybox", "bin/sh", 2)
		wantMode(t, u[1], "bin/busybox", 0o4755)
		wantXattr(t, u[1], "bin/busybox", "user.tag", "1")
		wantSameInode(t, u[0], "bin/busybox", "bin/busybox", 1)
	})
}

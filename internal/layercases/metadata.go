package layercases

import (
	"testing"
	"time"

	"github.com/strata-containers/strata/archive/tartest"
	"github.com/strata-containers/strata/errdefs"
)

// Metadata returns the cases of owners, modes, xattrs and times: setuid
// after chown, capabilities, dropped xattrs, directory times set after the
// children, implied parents, read-only directories and the root entry.
func Metadata() []Case {
	capability := string([]byte{1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	return []Case{{
		Name: "setuid after chown",
		Layers: layers(entries(
			dir("tmp/", mode(0o1777)), dir("srv/shared/", mode(0o2775), owner(0, 100)),
			file("usr/bin/su", "su", mode(0o4755)),
			file("usr/bin/wall", "w", mode(0o2755), owner(0, 5)),
			file("usr/bin/pw", "p", mode(0o6750), owner(0, 42)),
			file("usr/bin/own", "o", mode(0o4755), owner(1000, 1000)),
			file("usr/bin/weird", "x", mode(0o7777)),
		)),
		Check: func(t testing.TB, s *Sandbox, root string) {
			WantMode(t, root, "tmp", 0o1777)
			WantMode(t, root, "srv/shared", 0o2775)
			WantOwner(t, root, "srv/shared", 0, 100)
			WantMode(t, root, "usr/bin/su", 0o4755)
			WantMode(t, root, "usr/bin/wall", 0o2755)
			WantOwner(t, root, "usr/bin/wall", 0, 5)
			WantMode(t, root, "usr/bin/pw", 0o6750)
			WantOwner(t, root, "usr/bin/pw", 0, 42)
			WantMode(t, root, "usr/bin/own", 0o4755)
			WantOwner(t, root, "usr/bin/own", 1000, 1000)
			WantMode(t, root, "usr/bin/weird", 0o7777)
		},
	}, {
		Name: "setgid dir owner changes in later layer",
		Layers: layers(
			entries(dir("s/", mode(0o2775), owner(0, 100)), file("s/f", "")),
			entries(dir("s/", mode(0o2775), owner(0, 200))),
		),
		Check: func(t testing.TB, s *Sandbox, root string) {
			WantMode(t, root, "s", 0o2775)
			WantOwner(t, root, "s", 0, 200)
		},
	}, {
		Name: "xattrs",
		Layers: layers(entries(
			file("usr/bin/ping", "ELF", mode(0o755),
				xattr("security.capability", capability), xattr("user.comment", "hi")),
			file("usr/bin/own-cap", "ELF", mode(0o755), owner(1000, 1000),
				xattr("security.capability", capability)),
			dir("etc/", xattr("user.dirtag", "1")),
			symlink("usr/bin/ping6", "ping", xattr("user.x", "1")),
			file("f2", "", xattr("security.selinux", "system_u:object_r:bin_t:s0")),
			file("f3", "", xattr("trusted.foo", "bar"), xattr("trusted.overlay.opaque", "y")),
			file("f4", "", tartest.PAX("LIBARCHIVE.xattr.user.b64", "aGk=")),
			dir("d/", xattr("user.overlay.opaque", "y"), xattr("trusted.overlay.redirect", "/x")),
		)),
		Check: func(t testing.TB, s *Sandbox, root string) {
			WantXattr(t, root, "usr/bin/ping", "security.capability", capability)
			WantXattr(t, root, "usr/bin/ping", "user.comment", "hi")
			WantOwner(t, root, "usr/bin/ping", 0, 0)
			WantMode(t, root, "usr/bin/ping", 0o755)
			WantXattr(t, root, "usr/bin/own-cap", "security.capability", capability)
			WantOwner(t, root, "usr/bin/own-cap", 1000, 1000)
			WantXattr(t, root, "etc", "user.dirtag", "1")
			WantNoXattr(t, root, "usr/bin/ping6", "user.x")
			WantXattr(t, root, "f3", "trusted.foo", "bar")
			WantNoXattr(t, root, "f4", "user.b64")
			WantNames(t, root, "d")
		},
	}, {
		Name: "dir entry replaces xattrs",
		Layers: layers(
			entries(dir("d/", xattr("user.a", "1")), file("d/f", "")),
			entries(dir("d/", xattr("user.b", "2"))),
		),
		Check: func(t testing.TB, s *Sandbox, root string) {
			WantNoXattr(t, root, "d", "user.a")
			WantXattr(t, root, "d", "user.b", "2")
			WantNames(t, root, "d", "f")
		},
	}, {
		Name: "dir mtimes restored",
		Layers: layers(
			entries(dir("a/"), file("a/gone", ""), dir("p/", mtime(1600000000)), file("p/old", "")),
			entries(
				dir("a/", mtime(1000000000)), dir("a/b/", mtime(1100000000)),
				file("a/b/f", "", mtime(1200000000)), file("a/g", "", mtime(1300000000)),
				symlink("a/l", "g", mtime(1400000000)), whiteout("a/gone"),
				dir("c/", tartest.ModTime(time.Unix(1500000000, 123456789))), file("c/x", ""),
				file("p/new", ""),
			),
		),
		Check: func(t testing.TB, s *Sandbox, root string) {
			WantMtime(t, root, "a", 1000000000, 0)
			WantMtime(t, root, "a/b", 1100000000, 0)
			WantMtime(t, root, "a/b/f", 1200000000, 0)
			WantMtime(t, root, "a/g", 1300000000, 0)
			WantMtime(t, root, "a/l", 1400000000, 0)
			WantMtime(t, root, "c", 1500000000, 123456789)
			WantMtime(t, root, "p", 1600000000, 0)
			WantMissing(t, root, "a/gone")
		},
	}, {
		Name: "dir mtime kept after whiteout",
		Layers: layers(
			entries(dir("p/", mtime(1600000000)), file("p/old", ""), file("p/keep", "")),
			entries(whiteout("p/old")),
		),
		Check: func(t testing.TB, s *Sandbox, root string) {
			WantMtime(t, root, "p", 1600000000, 0)
			WantNames(t, root, "p", "keep")
		},
	}, {
		Name: "times outside the usual range",
		Layers: layers(entries(
			file("old", "", mtime(-1)), file("future", "", mtime(32503680000)),
			dir("olddir/", mtime(-86400)),
		)),
		Check: func(t testing.TB, s *Sandbox, root string) {
			WantMtime(t, root, "old", -1, 0)
			WantMtime(t, root, "olddir", -86400, 0)
		},
	}, {
		Name: "duplicate entries",
		Layers: func(_ testing.TB, s *Sandbox) [][]tartest.Entry {
			return [][]tartest.Entry{{
				file("etc/conf", "v1", mode(0o644)),
				file("./etc/conf", "v2", mode(0o600), owner(7, 7)),
				hardlink("h", "etc/conf"),
				file("/etc/conf", "v3"),
				dir("etc/", mode(0o700)),
				symlink("x", "../victim/hello"), file("x", "now a file"),
				symlink("y", "etc/conf"), file("y", "replaces link"),
				dir("d/"), file("d/child", ""), file("d", "file"),
				symlink("abs", s.Path("victim/hello")), file("abs", "file"),
				dir("m/", mode(0o700)), dir("./m/", mode(0o750), owner(3, 4)),
			}}
		},
		Check: func(t testing.TB, s *Sandbox, root string) {
			WantFile(t, root, "etc/conf", "v3")
			WantMode(t, root, "etc/conf", 0o644)
			WantFile(t, root, "h", "v2")
			WantMode(t, root, "h", 0o600)
			WantOwner(t, root, "h", 7, 7)
			WantMode(t, root, "etc", 0o700)
			WantFile(t, root, "x", "now a file")
			WantFile(t, root, "y", "replaces link")
			WantFile(t, root, "d", "file")
			WantFile(t, root, "abs", "file")
			WantMode(t, root, "m", 0o750)
			WantOwner(t, root, "m", 3, 4)
		},
	}, {
		Name: "implied parents",
		Layers: layers(
			entries(dir("tmp/", mode(0o1777)), dir("opt/", mode(0o750), owner(5, 6),
				xattr("user.x", "1"))),
			entries(
				file("tmp/app/sock.conf", "c"), file("opt/tool/bin/t", "t", mode(0o755)),
				file("etc/ssl/certs/ca.crt", "pem"),
				hardlink("new/deep/alias", "tmp/app/sock.conf"),
				dir("other/noparent/leaf", mode(0o700)),
			),
		),
		Check: func(t testing.TB, s *Sandbox, root string) {
			WantMode(t, root, "tmp", 0o1777)
			WantMode(t, root, "opt", 0o750)
			WantOwner(t, root, "opt", 5, 6)
			WantXattr(t, root, "opt", "user.x", "1")
			for _, p := range []string{"tmp/app", "opt/tool", "opt/tool/bin", "etc", "etc/ssl",
				"etc/ssl/certs", "new", "new/deep", "other", "other/noparent"} {
				WantMode(t, root, p, 0o755)
				WantOwner(t, root, p, 0, 0)
			}
			WantMode(t, root, "other/noparent/leaf", 0o700)
			WantSameInode(t, root, "new/deep/alias", "tmp/app/sock.conf", 2)
		},
	}, {
		Name: "usrmerge implied parent through lower symlink",
		Layers: layers(
			entries(dir("usr/"), dir("usr/lib/"), file("usr/lib/libc.so", "C"),
				symlink("lib", "usr/lib")),
			entries(file("lib/systemd/system/container.service", "content")),
		),
		Check: func(t testing.TB, s *Sandbox, root string) {
			WantSymlink(t, root, "lib", "usr/lib")
			WantFile(t, root, "usr/lib/systemd/system/container.service", "content")
			WantFile(t, root, "usr/lib/libc.so", "C")
		},
	}, {
		Name: "read-only dirs",
		Layers: layers(
			entries(
				dir("usr/lib/modprobe.d/", mode(0o555)),
				file("usr/lib/modprobe.d/a.conf", "a", mode(0o444)),
				dir("ro/", mode(0o500)), dir("ro/sub/", mode(0o500)),
				file("ro/sub/deep", "d", mode(0o400)),
				dir("home/u/.ssh/", mode(0o700), owner(1000, 1000)),
				file("home/u/.ssh/k", "key", mode(0o600), owner(1000, 1000)),
				dir("zero/", mode(0)), file("zero/f", "z"),
			),
			entries(
				whiteout("usr/lib/modprobe.d/a.conf"),
				file("usr/lib/modprobe.d/b.conf", "b", mode(0o444)),
				file("ro/sub/new", "n", mode(0o400)),
				file("zero/g", "g"),
			),
		),
		Check: func(t testing.TB, s *Sandbox, root string) {
			WantMode(t, root, "usr/lib/modprobe.d", 0o555)
			WantNames(t, root, "usr/lib/modprobe.d", "b.conf")
			WantMode(t, root, "ro", 0o500)
			WantMode(t, root, "ro/sub", 0o500)
			WantFile(t, root, "ro/sub/new", "n")
			WantMode(t, root, "home/u/.ssh", 0o700)
			WantMode(t, root, "zero", 0)
			WantNames(t, root, "zero", "f", "g")
		},
	}, {
		Name: "root entry directory",
		Layers: layers(entries(
			dir("./", mode(0o555), mtime(1234), owner(1, 2)), file("a", "a"),
		)),
		Check: func(t testing.TB, s *Sandbox, root string) {
			WantMode(t, root, ".", 0o555)
			WantOwner(t, root, ".", 1, 2)
			WantMtime(t, root, ".", 1234, 0)
			WantFile(t, root, "a", "a")
		},
	}, {
		Name: "root attributes across layers",
		Layers: layers(
			entries(dir("./", mode(0o750), mtime(1234), owner(1, 2), xattr("user.r", "1")),
				file("a", "a")),
			entries(file("b", "b")),
			entries(whiteout("a"), dir("c/")),
		),
		Check: func(t testing.TB, s *Sandbox, root string) {
			WantMode(t, root, ".", 0o750)
			WantOwner(t, root, ".", 1, 2)
			WantMtime(t, root, ".", 1234, 0)
			WantNames(t, root, "", "b", "c")
		},
	}, {
		Name: "root entry spelled slash in later layer",
		Layers: layers(
			entries(file("a", "a")),
			entries(dir("/", mode(0o700), mtime(99))),
		),
		Check: func(t testing.TB, s *Sandbox, root string) {
			WantMode(t, root, ".", 0o700)
			WantMtime(t, root, ".", 99, 0)
			WantNames(t, root, "", "a")
		},
	}, {
		// Names are cleaned lexically, so a name whose ".." removes the
		// component before it names the root.
		Name: "root entry spelled with dotdot",
		Layers: layers(
			entries(file("a/x", "x")),
			entries(dir("a/..", mode(0o750), mtime(1234))),
		),
		Check: func(t testing.TB, s *Sandbox, root string) {
			WantMode(t, root, ".", 0o750)
			WantMtime(t, root, ".", 1234, 0)
			WantNames(t, root, "", "a")
		},
	}, {
		Name: "root entry spelled with two dotdots",
		Layers: layers(entries(
			file("b/c/f", "f"), dir("./b/c/../../", mode(0o711), mtime(77)),
		)),
		Check: func(t testing.TB, s *Sandbox, root string) {
			WantMode(t, root, ".", 0o711)
			WantMtime(t, root, ".", 77, 0)
			WantFile(t, root, "b/c/f", "f")
		},
	}, {
		Name:    "root entry file spelled with dotdot",
		Layers:  layers(entries(file("a", "a")), entries(file("a/..", "x"))),
		WantErr: errdefs.ErrInvalidLayer,
		ErrPath: "a/..",
	}}
}

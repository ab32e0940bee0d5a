package layercases

import (
	"strings"
	"testing"

	"github.com/strata-containers/strata/archive/tartest"
	"github.com/strata-containers/strata/errdefs"
)

// Whiteout returns the cases of OCI whiteouts and opaque directories:
// malformed names, AUFS metadata, targets through symlinks, markers before
// and after the entries they must spare, and lower layers that merge.
func Whiteout() []Case {
	lowerEtc := entries(dir("etc/"), file("etc/passwd", "inside"))
	var cases []Case
	for _, name := range []string{".wh...", "etc/.wh...", ".wh..", "etc/.wh..", ".wh.", "etc/.wh."} {
		cases = append(cases, Case{
			Name:    "malformed " + name,
			Layers:  layers(lowerEtc, entries(file(name, ""))),
			WantErr: errdefs.ErrInvalidLayer,
			ErrPath: name,
			Check: func(t testing.TB, s *Sandbox, root string) {
				WantFile(t, root, "etc/passwd", "inside")
				WantNames(t, root, "", "etc")
			},
		})
	}
	cases = append(cases, []Case{{
		Name:   "prefix only matters on base name",
		Layers: layers(lowerEtc, entries(file(".wh.etc/somefile", "non-empty"))),
		Check: func(t testing.TB, s *Sandbox, root string) {
			WantDir(t, root, ".wh.etc")
			WantFile(t, root, ".wh.etc/somefile", "non-empty")
			WantFile(t, root, "etc/passwd", "inside")
		},
	}, {
		Name: "aufs metadata rejected",
		Layers: layers(lowerEtc, entries(
			dir(".wh..wh.plnk/"), file(".wh..wh.plnk/1234.5678", "payload"),
			hardlink("usr/bin/x", ".wh..wh.plnk/1234.5678"), file(".wh..wh.aufs", ""),
		)),
		WantErr: errdefs.ErrUnsupported,
		ErrPath: ".wh..wh.plnk/",
	}, {
		Name:    "aufs name in subdir rejected",
		Layers:  layers(lowerEtc, entries(file("etc/.wh..wh.foo", ""))),
		WantErr: errdefs.ErrUnsupported,
		ErrPath: "etc/.wh..wh.foo",
		Check: func(t testing.TB, s *Sandbox, root string) {
			WantFile(t, root, "etc/passwd", "inside")
		},
	}, {
		Name: "file and dir",
		Layers: layers(
			entries(dir("a/"), file("a/f", "f"), file("a/g", "g"), dir("b/"), file("b/x", "")),
			entries(whiteout("a/f"), whiteout("b")),
		),
		Check: func(t testing.TB, s *Sandbox, root string) {
			WantNames(t, root, "a", "g")
			WantMissing(t, root, "b")
		},
	}, {
		Name: "base layer whiteout is no-op",
		Layers: layers(entries(
			whiteout("nothing"), opaque("d"), file("d/x", "x"), opaque(""), whiteout("p/q/r"),
		)),
		Check: func(t testing.TB, s *Sandbox, root string) {
			WantNames(t, root, "", "d")
			WantNames(t, root, "d", "x")
		},
	}, {
		Name: "same layer entries survive whiteout",
		Layers: layers(
			entries(dir("a/"), file("a/old", "o"), file("f", "lower")),
			entries(file("f", "new"), whiteout("f"), file("a/new", "n"), whiteout("a")),
		),
		Check: func(t testing.TB, s *Sandbox, root string) {
			WantFile(t, root, "f", "new")
			WantNames(t, root, "a", "new")
		},
	}, {
		Name: "whiteouts under whited-out dir",
		Layers: layers(
			entries(dir("a/"), dir("a/b/"), file("a/b/c", "c"), file("a/keep", "k")),
			entries(whiteout("a"), whiteout("a/b"), whiteout("a/b/c")),
		),
		Check: func(t testing.TB, s *Sandbox, root string) {
			WantNames(t, root, "")
		},
	}, {
		Name: "whiteout of dir after whiteouts inside it",
		Layers: layers(
			entries(dir("a/"), dir("a/b/"), file("a/b/c", "c"), file("a/keep", "k")),
			entries(whiteout("a/b/c"), whiteout("a/keep"), whiteout("a")),
		),
		Check: func(t testing.TB, s *Sandbox, root string) {
			WantNames(t, root, "")
		},
	}, {
		Name: "whiteout of dir merged from two layers",
		Layers: layers(
			entries(dir("d/"), file("d/a", "a")),
			entries(dir("d/"), file("d/b", "b")),
			entries(whiteout("d"), file("e", "e")),
		),
		Check: func(t testing.TB, s *Sandbox, root string) {
			WantNames(t, root, "", "e")
		},
	}, {
		Name: "whiteout of name hidden by middle opaque",
		Layers: layers(
			entries(dir("a/"), file("a/x", "x")),
			entries(opaque("a"), file("a/y", "y")),
			entries(whiteout("a/x")),
		),
		Check: func(t testing.TB, s *Sandbox, root string) {
			WantNames(t, root, "a", "y")
		},
	}, {
		Name: "whiteout of one hard link",
		Layers: layers(
			entries(file("a", "x"), hardlink("b", "a")),
			entries(whiteout("a")),
		),
		Check: func(t testing.TB, s *Sandbox, root string) {
			WantMissing(t, root, "a")
			WantFile(t, root, "b", "x")
		},
	}, {
		// Native mode removes the tree with one descriptor per level, as
		// its full paths may pass PATH_MAX; overlay mode writes one
		// whiteout over it.
		Name: "whiteout of tree 1000 deep",
		Layers: layers(
			entries(file(DeepName, "deep"), file("keep", "k")),
			entries(whiteout("d")),
		),
		Check: func(t testing.TB, s *Sandbox, root string) {
			WantNames(t, root, "", "keep")
		},
	}}...)

	symLower := entries(
		dir("etc/"), file("etc/passwd", "all"), file("etc/whitedout", "x"),
		symlink("localetc", "/etc"), symlink("dead", "/dne"), symlink("escape", "../../victim"),
	)
	cases = append(cases, []Case{{
		Name:   "whiteout of symlink",
		Layers: layers(symLower, entries(file(".wh.localetc", ""))),
		Check: func(t testing.TB, s *Sandbox, root string) {
			WantMissing(t, root, "localetc")
			WantFile(t, root, "etc/passwd", "all")
		},
	}, {
		Name:   "whiteout through symlinked parent",
		Layers: layers(symLower, entries(file("localetc/.wh.whitedout", ""))),
		Check: func(t testing.TB, s *Sandbox, root string) {
			WantMissing(t, root, "etc/whitedout")
			WantFile(t, root, "etc/passwd", "all")
			WantSymlink(t, root, "localetc", "/etc")
		},
	}, {
		Name:   "whiteout through dead symlink",
		Layers: layers(symLower, entries(file("dead/.wh.etc", ""))),
		Check: func(t testing.TB, s *Sandbox, root string) {
			WantFile(t, root, "etc/passwd", "all")
			WantMissing(t, root, "dne")
			WantSymlink(t, root, "dead", "/dne")
		},
	}, {
		Name:   "whiteout after dotdot",
		Layers: layers(symLower, entries(file("dne/../.wh.etc", ""))),
		Check: func(t testing.TB, s *Sandbox, root string) {
			WantMissing(t, root, "etc")
			WantMissing(t, root, "dne")
		},
	}, {
		Name:   "whiteout through escaping symlink",
		Layers: layers(symLower, entries(file("escape/.wh.hello", ""))),
		Check: func(t testing.TB, s *Sandbox, root string) {
			WantSymlink(t, root, "escape", "../../victim")
			WantMissing(t, root, "victim")
		},
	}, {
		Name:    "whiteout climbing above root",
		Layers:  layers(symLower, entries(file("../.wh.victim", ""))),
		WantErr: errdefs.ErrBreakout,
		ErrPath: "../.wh.victim",
	}}...)

	opqLower := entries(
		dir("a/"), file("a/old1", "o1"), dir("a/sub/"), file("a/sub/old2", "o2"),
		file("a/.hidden", "h"), dir("b/"), file("b/keep", "k"),
	)
	checkXY := func(t testing.TB, s *Sandbox, root string) {
		WantNames(t, root, "a", "new", "sub")
		WantNames(t, root, "a/sub", "new2")
		WantMode(t, root, "a", 0o750)
		WantFile(t, root, "b/keep", "k")
	}
	cases = append(cases, []Case{{
		Name: "opaque marker first",
		Layers: layers(opqLower, entries(
			dir("a/", mode(0o750)), opaque("a"), file("a/new", "n"), dir("a/sub/"),
			file("a/sub/new2", "n2"),
		)),
		Check: checkXY,
	}, {
		Name: "opaque marker last",
		Layers: layers(opqLower, entries(
			dir("./a/", mode(0o750)), file("./a/new", "n"), dir("a/sub/"),
			file("./a/sub/new2", "n2"), opaque("a"),
		)),
		Check: checkXY,
	}, {
		Name:   "opaque marker only",
		Layers: layers(opqLower, entries(dir("a/", mode(0o750)), opaque("a"))),
		Check: func(t testing.TB, s *Sandbox, root string) {
			WantNames(t, root, "a")
			WantMode(t, root, "a", 0o750)
		},
	}, {
		Name:   "opaque marker without dir entry",
		Layers: layers(opqLower, entries(opaque("a/sub"))),
		Check: func(t testing.TB, s *Sandbox, root string) {
			WantNames(t, root, "a/sub")
			WantNames(t, root, "a", ".hidden", "old1", "sub")
		},
	}, {
		Name:   "opaque root",
		Layers: layers(opqLower, entries(file(".abc", "r"), opaque(""), file("foobar", "f"))),
		Check: func(t testing.TB, s *Sandbox, root string) {
			WantNames(t, root, "", ".abc", "foobar")
		},
	}, {
		Name: "opaque root over two layers",
		Layers: layers(
			opqLower,
			entries(file("c", "c"), dir("a/"), file("a/more", "m")),
			entries(opaque(""), file("d", "d")),
		),
		Check: func(t testing.TB, s *Sandbox, root string) {
			WantNames(t, root, "", "d")
		},
	}, {
		Name: "opaque dir merged from two layers",
		Layers: layers(
			entries(dir("d/"), file("d/a", "a")),
			entries(dir("d/"), file("d/b", "b")),
			entries(opaque("d"), file("d/c", "c")),
		),
		Check: func(t testing.TB, s *Sandbox, root string) {
			WantNames(t, root, "d", "c")
		},
	}, {
		Name: "opaque after whiteout in same dir",
		Layers: layers(opqLower, entries(
			whiteout("a/old1"), file("a/new", "n"), opaque("a"), whiteout("a/new"),
		)),
		Check: func(t testing.TB, s *Sandbox, root string) {
			WantNames(t, root, "a", "new")
		},
	}, {
		Name: "opaque through symlinked parent",
		Layers: layers(
			entries(dir("real/"), file("real/old", "o"), symlink("link", "real")),
			entries(opaque("link"), file("link/new", "n")),
		),
		Check: func(t testing.TB, s *Sandbox, root string) {
			WantSymlink(t, root, "link", "real")
			WantNames(t, root, "real", "new")
		},
	}}...)
	return cases
}

// TypeChange returns the cases where an entry replaces one of another
// type, in the same layer or across layers.
func TypeChange() []Case {
	return []Case{{
		Name: "across layers",
		Layers: layers(
			entries(dir("x/"), file("x/child", "c"), file("y", "file-y"), symlink("z", "x")),
			entries(file("x", "now-a-file", mode(0o600)), dir("y/", mode(0o700)),
				file("y/inner", "i"), dir("z/"), file("z/w", "w")),
			entries(dir("x/", mode(0o755)), file("x/again", "a")),
		),
		Check: func(t testing.TB, s *Sandbox, root string) {
			WantNames(t, root, "x", "again")
			WantNames(t, root, "y", "inner")
			WantMode(t, root, "y", 0o700)
			WantNames(t, root, "z", "w")
		},
	}, {
		Name: "file to dir after whiteout",
		Layers: layers(
			entries(dir("d/"), file("d/old", "o")),
			entries(whiteout("d"), dir("d/"), file("d/new", "n")),
		),
		Check: func(t testing.TB, s *Sandbox, root string) {
			WantNames(t, root, "d", "new")
		},
	}, {
		Name: "dir replaced by file then dir in one layer",
		Layers: layers(
			entries(dir("d/"), file("d/old", "o")),
			entries(file("d", "f"), dir("d/"), file("d/new", "n")),
		),
		Check: func(t testing.TB, s *Sandbox, root string) {
			WantNames(t, root, "d", "new")
		},
	}, {
		Name: "implied dir replaces lower file",
		Layers: layers(
			entries(file("f", "f")),
			entries(whiteout("f"), file("f/inner", "i")),
		),
		Check: func(t testing.TB, s *Sandbox, root string) {
			WantNames(t, root, "f", "inner")
		},
	}, {
		Name:    "same layer non-dir parent",
		Layers:  layers(entries(file("n", "f"), file("n/deep/file", "d"))),
		WantErr: errdefs.ErrInvalidLayer,
		ErrPath: "n/deep/file",
	}, {
		Name:    "lower non-dir parent",
		Layers:  layers(entries(file("n", "f")), entries(file("n/deep/file", "d"))),
		WantErr: errdefs.ErrInvalidLayer,
		ErrPath: "n/deep/file",
		Check: func(t testing.TB, s *Sandbox, root string) {
			WantFile(t, root, "n", "f")
		},
	}, {
		Name: "file to symlink",
		Layers: layers(
			entries(file("etc/conf", "v1")),
			entries(symlink("etc/conf", "/victim/hello")),
		),
		Check: func(t testing.TB, s *Sandbox, root string) {
			WantSymlink(t, root, "etc/conf", "/victim/hello")
		},
	}, {
		Name: "dir to symlink",
		Layers: layers(
			entries(dir("d/"), file("d/f", "f"), dir("x/")),
			entries(symlink("d", "x")),
		),
		Check: func(t testing.TB, s *Sandbox, root string) {
			WantSymlink(t, root, "d", "x")
			WantNames(t, root, "x")
		},
	}, {
		Name: "file to hardlink of another",
		Layers: layers(
			entries(file("a", "a"), file("b", "b")),
			entries(hardlink("b", "a")),
		),
		Check: func(t testing.TB, s *Sandbox, root string) {
			WantFile(t, root, "b", "a")
			WantSameInode(t, root, "a", "b", 2)
		},
	}, {
		Name: "dir entry without slash keeps children",
		Layers: layers(
			entries(dir("d/"), file("d/f", "f")),
			entries(dir("d", mode(0o700))),
		),
		Check: func(t testing.TB, s *Sandbox, root string) {
			WantNames(t, root, "d", "f")
			WantMode(t, root, "d", 0o700)
		},
	}}
}

// DeepName is the name of a file 1,000 components deep, below the
// directory "d".
var DeepName = strings.Repeat("d/", 999) + "f"

// HardlinkLower returns the cases of hard links whose target only a lower
// layer holds, which overlay mode must copy up.
func HardlinkLower() []Case {
	l1 := entries(dir("bin/"), file("bin/busybox", "BB", mode(0o4755), xattr("user.tag", "1")))
	l2 := entries(hardlink("bin/sh", "bin/busybox"))
	capability := string([]byte{1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	return []Case{{
		Name:   "link to lower file",
		Layers: layers(l1, l2),
		Check: func(t testing.TB, s *Sandbox, root string) {
			WantFile(t, root, "bin/sh", "BB")
			WantMode(t, root, "bin/sh", 0o4755)
			WantXattr(t, root, "bin/sh", "user.tag", "1")
			WantSameInode(t, root, "bin/sh", "bin/busybox", 2)
		},
	}, {
		Name:   "then whiteout target",
		Layers: layers(l1, l2, entries(whiteout("bin/busybox"))),
		Check: func(t testing.TB, s *Sandbox, root string) {
			WantFile(t, root, "bin/sh", "BB")
			WantMissing(t, root, "bin/busybox")
		},
	}, {
		Name:   "then replace target",
		Layers: layers(l1, l2, entries(file("bin/busybox", "NEW"))),
		Check: func(t testing.TB, s *Sandbox, root string) {
			WantFile(t, root, "bin/sh", "BB")
			WantFile(t, root, "bin/busybox", "NEW")
		},
	}, {
		Name:   "link and whiteout target in one layer",
		Layers: layers(l1, entries(hardlink("bin/sh", "bin/busybox"), whiteout("bin/busybox"))),
		Check: func(t testing.TB, s *Sandbox, root string) {
			WantFile(t, root, "bin/sh", "BB")
			WantNames(t, root, "bin", "sh")
		},
	}, {
		Name: "link to lower symlink",
		Layers: layers(
			entries(symlink("l", "/etc/passwd")),
			entries(hardlink("l2", "l")),
		),
		Check: func(t testing.TB, s *Sandbox, root string) {
			WantSymlink(t, root, "l2", "/etc/passwd")
		},
	}, {
		Name: "link chain across three layers",
		Layers: layers(
			entries(file("a", "A", mode(0o600), owner(3, 4))),
			entries(hardlink("b", "a")),
			entries(hardlink("c", "b")),
		),
		Check: func(t testing.TB, s *Sandbox, root string) {
			WantSameInode(t, root, "a", "c", 3)
			WantFile(t, root, "c", "A")
			WantOwner(t, root, "c", 3, 4)
			WantMode(t, root, "c", 0o600)
		},
	}, {
		Name: "link in read-only lower dir",
		Layers: layers(
			entries(dir("ro/", mode(0o555)), file("ro/f", "f", mode(0o444))),
			entries(hardlink("ro/g", "ro/f")),
		),
		Check: func(t testing.TB, s *Sandbox, root string) {
			WantSameInode(t, root, "ro/f", "ro/g", 2)
			WantMode(t, root, "ro", 0o555)
		},
	}, {
		Name: "link keeps file capability",
		Layers: layers(
			entries(file("ping", "ELF", mode(0o755), xattr("security.capability", capability))),
			entries(hardlink("ping2", "ping")),
		),
		Check: func(t testing.TB, s *Sandbox, root string) {
			WantXattr(t, root, "ping2", "security.capability", capability)
		},
	}, {
		Name: "link to lower fifo",
		Layers: layers(
			entries(tartest.Fifo("run/fifo", mode(0o600))),
			entries(hardlink("run/f2", "run/fifo")),
		),
		Check: func(t testing.TB, s *Sandbox, root string) {
			WantSameInode(t, root, "run/fifo", "run/f2", 2)
		},
	}, {
		// A hard link of a name to itself writes that name in this layer,
		// so the layer's own whiteout spares it.
		Name: "lower symlink linked to itself then whiteout",
		Layers: layers(
			entries(dir("a/"), symlink("l", "a")),
			entries(hardlink("l", "l"), whiteout("l")),
		),
		Check: func(t testing.TB, s *Sandbox, root string) {
			WantSymlink(t, root, "l", "a")
		},
	}, {
		Name: "lower file linked to itself then whiteout",
		Layers: layers(
			entries(file("x", "x", mode(0o600)), hardlink("y", "x")),
			entries(hardlink("x", "./x"), whiteout("x"), whiteout("y")),
		),
		Check: func(t testing.TB, s *Sandbox, root string) {
			WantFile(t, root, "x", "x")
			WantMode(t, root, "x", 0o600)
			WantMissing(t, root, "y")
		},
	}, {
		Name: "link target whited out below",
		Layers: layers(
			entries(file("a", "a")),
			entries(whiteout("a")),
			entries(hardlink("b", "a")),
		),
		WantErr: errdefs.ErrInvalidLayer,
		ErrPath: "b",
	}}
}

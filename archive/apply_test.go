package archive

import (
	"archive/tar"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strata-containers/strata/archive/tartest"
	"github.com/strata-containers/strata/errdefs"
)

// layerCase applies its layers in sequence, once into one plain directory
// (native mode) and once as overlay uppers, each over the ones before. A
// case that succeeds must give the same tree in the plain directory and in
// the mounted overlay, and check runs on both. A case with wantErr expects
// that class from the last layer in both modes, and check runs on the
// native root.
type layerCase struct {
	name    string
	layers  func(s *sandbox) [][]tartest.Entry
	wantErr error
	check   func(t *testing.T, s *sandbox, root string)
}

func layers(ls ...[]tartest.Entry) func(*sandbox) [][]tartest.Entry {
	return func(*sandbox) [][]tartest.Entry { return ls }
}

func entries(es ...tartest.Entry) []tartest.Entry { return es }

var (
	file     = tartest.File
	dir      = tartest.Dir
	symlink  = tartest.Symlink
	hardlink = tartest.Hardlink
	whiteout = tartest.Whiteout
	opaque   = tartest.Opaque
	mode     = tartest.Mode
	owner    = tartest.Owner
	xattr    = tartest.Xattr
)

var gnu = tartest.Format(tar.FormatGNU)

func mtime(sec int64) tartest.Opt { return tartest.ModTime(time.Unix(sec, 0)) }

func runCases(t *testing.T, cases []layerCase) {
	requireRoot(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newSandbox(t)
			defer s.check(t)
			ls := tarLayers(t, tc.layers(s))
			native, nerr := applyNative(t, s, ls)
			uppers, oerr := applyOverlay(t, s, ls)

			if tc.wantErr != nil {
				if !errors.Is(nerr, tc.wantErr) {
					t.Errorf("native apply: error %v, want %v", nerr, tc.wantErr)
				}
				if !errors.Is(oerr, tc.wantErr) {
					t.Errorf("overlay apply: error %v, want %v", oerr, tc.wantErr)
				}
				if tc.check != nil {
					tc.check(t, s, native)
				}
				return
			}
			if nerr != nil {
				t.Fatalf("native apply: %v", nerr)
			}
			if oerr != nil {
				t.Fatalf("overlay apply: %v", oerr)
			}
			merged := mountLayers(t, s, uppers)
			// Checks run first: reading the trees to compare them changes
			// atimes.
			if tc.check != nil {
				t.Run("native", func(t *testing.T) { tc.check(t, s, native) })
				t.Run("overlay", func(t *testing.T) { tc.check(t, s, merged) })
			}
			compareTrees(t, native, merged)
		})
	}
}

func TestApplyBreakout(t *testing.T) {
	runCases(t, []layerCase{{
		name: "absolute symlink then write",
		layers: func(s *sandbox) [][]tartest.Entry {
			host := filepath.Join(s.dir, "hostdir")
			return [][]tartest.Entry{{
				symlink("hostetc", host),
				file("hostetc/unbroken", "unbroken"),
				symlink("c1", "/c2"),
				symlink("c2", host),
				file("c1/two", "two"),
			}}
		},
		check: func(t *testing.T, s *sandbox, root string) {
			host := filepath.Join(s.dir, "hostdir")
			wantSymlink(t, root, "hostetc", host)
			wantFile(t, root, host+"/unbroken", "unbroken")
			wantFile(t, root, host+"/two", "two")
		},
	}, {
		name: "absolute symlink in lower layer",
		layers: layers(
			entries(dir("var/"), symlink("var/run", "/run")),
			entries(file("var/run/existing/non-existing/file", "content")),
		),
		check: func(t *testing.T, s *sandbox, root string) {
			wantSymlink(t, root, "var/run", "/run")
			wantFile(t, root, "run/existing/non-existing/file", "content")
		},
	}, {
		name: "relative symlink escape clamps",
		layers: layers(entries(
			dir("dir/"),
			symlink("dir/loophole", "../../victim"),
			file("dir/loophole/newdir/newfile", "x"),
		)),
		check: func(t *testing.T, s *sandbox, root string) {
			wantSymlink(t, root, "dir/loophole", "../../victim")
			wantFile(t, root, "victim/newdir/newfile", "x")
		},
	}, {
		name: "two-hop symlink chain",
		layers: layers(entries(
			dir("inner/"),
			symlink("inner/up", ".."),
			symlink("inner/up/escape", "../victim"),
			file("inner/up/escape/newfile", "x"),
		)),
		check: func(t *testing.T, s *sandbox, root string) {
			wantSymlink(t, root, "escape", "../victim")
			wantFile(t, root, "victim/newfile", "x")
		},
	}, {
		name: "relative escape before absolute symlink",
		layers: layers(
			entries(symlink("escape", ".."), symlink("absolute", "/target"), dir("target/")),
			entries(file("escape/absolute/file", "x")),
		),
		check: func(t *testing.T, s *sandbox, root string) {
			wantFile(t, root, "target/file", "x")
		},
	}, {
		name: "escaping symlinks kept verbatim",
		layers: layers(entries(
			symlink("home/derek/breakout", "../../../breakout"),
			symlink("b2", "../../breakout"),
			symlink("up", "etc/../../upandout"),
		)),
		check: func(t *testing.T, s *sandbox, root string) {
			wantSymlink(t, root, "home/derek/breakout", "../../../breakout")
			wantSymlink(t, root, "b2", "../../breakout")
			wantSymlink(t, root, "up", "etc/../../upandout")
		},
	}, {
		name:    "hardlink to parent path",
		layers:  layers(entries(hardlink("grab", "../victim/hello"))),
		wantErr: errdefs.ErrBreakout,
	}, {
		name:    "hardlink to slash dotdot path",
		layers:  layers(entries(hardlink("grab", "/../victim/hello"))),
		wantErr: errdefs.ErrBreakout,
	}, {
		name:    "hardlink to sibling with root prefix",
		layers:  layers(entries(hardlink("grab", "../root-evil/secret"))),
		wantErr: errdefs.ErrBreakout,
	}, {
		name: "hardlink through escaping symlink",
		layers: layers(entries(
			dir("d/"), symlink("d/up", "../../victim"), hardlink("grab", "d/up/hello"),
		)),
		wantErr: errdefs.ErrInvalidLayer,
	}, {
		name:    "hardlink to directory",
		layers:  layers(entries(dir("a/"), hardlink("loop", "a"))),
		wantErr: errdefs.ErrInvalidLayer,
	}, {
		name: "hardlink absolute name inside root",
		layers: layers(entries(
			file("usr/bin/perlbug", "hello", mode(0o755)),
			hardlink("usr/bin/perlthanks", "/usr/bin/perlbug"),
		)),
		check: func(t *testing.T, s *sandbox, root string) {
			wantFile(t, root, "usr/bin/perlthanks", "hello")
			wantSameInode(t, root, "usr/bin/perlbug", "usr/bin/perlthanks", 2)
		},
	}, {
		name: "hardlink to symlink",
		layers: func(s *sandbox) [][]tartest.Entry {
			return [][]tartest.Entry{{
				dir("etc/", mode(0o770)),
				file("etc/passwd", "inside"),
				symlink("passwdlink", "../../../../../etc/passwd"),
				hardlink("localpasswd", "passwdlink"),
				symlink("abslink", "/etc/passwd"),
				hardlink("abslink2", "abslink", mode(0o600), owner(1234, 1234)),
				symlink("sketch", filepath.Join(s.dir, "perm400")),
				hardlink("sketchylink", "sketch", mode(0o777)),
				symlink("fwd", "etc/late"),
				hardlink("fwd2", "fwd"),
				file("etc/late", "late"),
			}}
		},
		check: func(t *testing.T, s *sandbox, root string) {
			wantSymlink(t, root, "localpasswd", "../../../../../etc/passwd")
			wantSameInode(t, root, "passwdlink", "localpasswd", 2)
			wantSymlink(t, root, "abslink2", "/etc/passwd")
			wantSameInode(t, root, "abslink", "abslink2", 2)
			wantOwner(t, root, "abslink2", 0, 0)
			wantSameInode(t, root, "sketch", "sketchylink", 2)
			wantSameInode(t, root, "fwd", "fwd2", 2)
			wantFile(t, root, "etc/late", "late")
			wantFile(t, root, "etc/passwd", "inside")
		},
	}, {
		name:    "dotdot name",
		layers:  layers(entries(file("../victim/dotdot", "bad"))),
		wantErr: errdefs.ErrBreakout,
	}, {
		name:    "slash dotdot name",
		layers:  layers(entries(file("/../victim/slash-dotdot", "bad"))),
		wantErr: errdefs.ErrBreakout,
	}, {
		name:    "bare dotdot",
		layers:  layers(entries(file("..", "bad"))),
		wantErr: errdefs.ErrBreakout,
	}, {
		name:    "dotdot after component",
		layers:  layers(entries(file("a/../../pwned", "bad"))),
		wantErr: errdefs.ErrBreakout,
	}, {
		name: "benign dot names",
		layers: layers(entries(
			file("./x/../y", "ok"), file("/abs/file", "ok"), file("x//z", "ok"),
			file("..data", "d"), file("...", "t"),
		)),
		check: func(t *testing.T, s *sandbox, root string) {
			wantFile(t, root, "y", "ok")
			wantFile(t, root, "abs/file", "ok")
			wantFile(t, root, "x/z", "ok")
			wantFile(t, root, "..data", "d")
			wantFile(t, root, "...", "t")
		},
	}, {
		name: "root entry symlink",
		layers: func(s *sandbox) [][]tartest.Entry {
			victim := filepath.Join(s.dir, "victim")
			return [][]tartest.Entry{{symlink(".", victim), file("etc/x", "pwn")}}
		},
		wantErr: errdefs.ErrInvalidLayer,
	}, {
		name:    "root entry relative symlink",
		layers:  layers(entries(symlink("./", "../victim"), file("y", ""))),
		wantErr: errdefs.ErrInvalidLayer,
	}, {
		name:    "root entry file",
		layers:  layers(entries(file(".", ""))),
		wantErr: errdefs.ErrInvalidLayer,
	}, {
		name:    "root entry hardlink",
		layers:  layers(entries(file("etc/passwd", ""), hardlink(".", "etc/passwd"))),
		wantErr: errdefs.ErrInvalidLayer,
	}, {
		name: "root entry directory",
		layers: layers(entries(
			dir("./", mode(0o555), mtime(1234)), file("a", "a"),
		)),
		check: func(t *testing.T, s *sandbox, root string) {
			wantMode(t, root, ".", 0o555)
			wantMtime(t, root, ".", 1234, 0)
			wantFile(t, root, "a", "a")
		},
	}})
}

func TestApplyWhiteout(t *testing.T) {
	lowerEtc := entries(dir("etc/"), file("etc/passwd", "inside"))
	var cases []layerCase
	for _, name := range []string{".wh...", "etc/.wh...", ".wh..", "etc/.wh..", ".wh.", "etc/.wh."} {
		cases = append(cases, layerCase{
			name:    "malformed " + name,
			layers:  layers(lowerEtc, entries(file(name, ""))),
			wantErr: errdefs.ErrInvalidLayer,
			check: func(t *testing.T, s *sandbox, root string) {
				wantFile(t, root, "etc/passwd", "inside")
			},
		})
	}
	cases = append(cases, []layerCase{{
		name:   "prefix only matters on base name",
		layers: layers(lowerEtc, entries(file(".wh.etc/somefile", "non-empty"))),
		check: func(t *testing.T, s *sandbox, root string) {
			wantDir(t, root, ".wh.etc")
			wantFile(t, root, ".wh.etc/somefile", "non-empty")
			wantFile(t, root, "etc/passwd", "inside")
		},
	}, {
		name: "aufs metadata rejected",
		layers: layers(lowerEtc, entries(
			dir(".wh..wh.plnk/"), file(".wh..wh.plnk/1234.5678", "payload"),
		)),
		wantErr: errdefs.ErrUnsupported,
	}, {
		name:    "aufs name in subdir rejected",
		layers:  layers(lowerEtc, entries(file("etc/.wh..wh.foo", ""))),
		wantErr: errdefs.ErrUnsupported,
	}, {
		name: "file and dir",
		layers: layers(
			entries(dir("a/"), file("a/f", "f"), file("a/g", "g"), dir("b/"), file("b/x", "")),
			entries(whiteout("a/f"), whiteout("b")),
		),
		check: func(t *testing.T, s *sandbox, root string) {
			wantNames(t, root, "a", "g")
			wantMissing(t, root, "b")
		},
	}, {
		name:   "base layer whiteout is no-op",
		layers: layers(entries(whiteout("nothing"), opaque("d"), file("d/x", "x"), opaque(""))),
		check: func(t *testing.T, s *sandbox, root string) {
			wantNames(t, root, "", "d")
			wantNames(t, root, "d", "x")
		},
	}, {
		name: "same layer entries survive whiteout",
		layers: layers(
			entries(dir("a/"), file("a/old", "o"), file("f", "lower")),
			entries(file("f", "new"), whiteout("f"), file("a/new", "n"), whiteout("a")),
		),
		check: func(t *testing.T, s *sandbox, root string) {
			wantFile(t, root, "f", "new")
			wantNames(t, root, "a", "new")
		},
	}}...)

	symLower := entries(
		dir("etc/"), file("etc/passwd", "all"), file("etc/whitedout", "x"),
		symlink("localetc", "/etc"), symlink("dead", "/dne"), symlink("escape", "../../victim"),
	)
	cases = append(cases, []layerCase{{
		name:   "whiteout of symlink",
		layers: layers(symLower, entries(file(".wh.localetc", ""))),
		check: func(t *testing.T, s *sandbox, root string) {
			wantMissing(t, root, "localetc")
			wantFile(t, root, "etc/passwd", "all")
		},
	}, {
		name:   "whiteout through symlinked parent",
		layers: layers(symLower, entries(file("localetc/.wh.whitedout", ""))),
		check: func(t *testing.T, s *sandbox, root string) {
			wantMissing(t, root, "etc/whitedout")
			wantFile(t, root, "etc/passwd", "all")
			wantSymlink(t, root, "localetc", "/etc")
		},
	}, {
		name:   "whiteout through dead symlink",
		layers: layers(symLower, entries(file("dead/.wh.etc", ""))),
		check: func(t *testing.T, s *sandbox, root string) {
			wantFile(t, root, "etc/passwd", "all")
			wantMissing(t, root, "dne")
		},
	}, {
		name:   "whiteout after dotdot",
		layers: layers(symLower, entries(file("dne/../.wh.etc", ""))),
		check: func(t *testing.T, s *sandbox, root string) {
			wantMissing(t, root, "etc")
			wantMissing(t, root, "dne")
		},
	}, {
		name:   "whiteout through escaping symlink",
		layers: layers(symLower, entries(file("escape/.wh.hello", ""))),
		check: func(t *testing.T, s *sandbox, root string) {
			wantSymlink(t, root, "escape", "../../victim")
		},
	}}...)

	opqLower := entries(
		dir("a/"), file("a/old1", "o1"), dir("a/sub/"), file("a/sub/old2", "o2"),
		file("a/.hidden", "h"), dir("b/"), file("b/keep", "k"),
	)
	checkXY := func(t *testing.T, s *sandbox, root string) {
		wantNames(t, root, "a", "new", "sub")
		wantNames(t, root, "a/sub", "new2")
		wantMode(t, root, "a", 0o750)
		wantFile(t, root, "b/keep", "k")
	}
	cases = append(cases, []layerCase{{
		name: "opaque marker first",
		layers: layers(opqLower, entries(
			dir("a/", mode(0o750)), opaque("a"), file("a/new", "n"), dir("a/sub/"),
			file("a/sub/new2", "n2"),
		)),
		check: checkXY,
	}, {
		name: "opaque marker last",
		layers: layers(opqLower, entries(
			dir("./a/", mode(0o750)), file("./a/new", "n"), dir("a/sub/"),
			file("./a/sub/new2", "n2"), opaque("a"),
		)),
		check: checkXY,
	}, {
		name:   "opaque marker only",
		layers: layers(opqLower, entries(dir("a/", mode(0o750)), opaque("a"))),
		check: func(t *testing.T, s *sandbox, root string) {
			wantNames(t, root, "a")
			wantMode(t, root, "a", 0o750)
		},
	}, {
		name:   "opaque root",
		layers: layers(opqLower, entries(file(".abc", "r"), opaque(""), file("foobar", "f"))),
		check: func(t *testing.T, s *sandbox, root string) {
			wantNames(t, root, "", ".abc", "foobar")
		},
	}, {
		name: "opaque after whiteout in same dir",
		layers: layers(opqLower, entries(
			whiteout("a/old1"), file("a/new", "n"), opaque("a"), whiteout("a/new"),
		)),
		check: func(t *testing.T, s *sandbox, root string) {
			wantNames(t, root, "a", "new")
		},
	}}...)
	runCases(t, cases)
}

func TestApplyTypeChange(t *testing.T) {
	runCases(t, []layerCase{{
		name: "across layers",
		layers: layers(
			entries(dir("x/"), file("x/child", "c"), file("y", "file-y"), symlink("z", "x")),
			entries(file("x", "now-a-file", mode(0o600)), dir("y/", mode(0o700)),
				file("y/inner", "i"), dir("z/"), file("z/w", "w")),
			entries(dir("x/", mode(0o755)), file("x/again", "a")),
		),
		check: func(t *testing.T, s *sandbox, root string) {
			wantNames(t, root, "x", "again")
			wantNames(t, root, "y", "inner")
			wantMode(t, root, "y", 0o700)
			wantNames(t, root, "z", "w")
		},
	}, {
		name: "file to dir after whiteout",
		layers: layers(
			entries(dir("d/"), file("d/old", "o")),
			entries(whiteout("d"), dir("d/"), file("d/new", "n")),
		),
		check: func(t *testing.T, s *sandbox, root string) {
			wantNames(t, root, "d", "new")
		},
	}, {
		name: "dir replaced by file then dir in one layer",
		layers: layers(
			entries(dir("d/"), file("d/old", "o")),
			entries(file("d", "f"), dir("d/"), file("d/new", "n")),
		),
		check: func(t *testing.T, s *sandbox, root string) {
			wantNames(t, root, "d", "new")
		},
	}, {
		name: "implied dir replaces lower file",
		layers: layers(
			entries(file("f", "f")),
			entries(whiteout("f"), file("f/inner", "i")),
		),
		check: func(t *testing.T, s *sandbox, root string) {
			wantNames(t, root, "f", "inner")
		},
	}, {
		name:    "same layer non-dir parent",
		layers:  layers(entries(file("n", "f"), file("n/deep/file", "d"))),
		wantErr: errdefs.ErrInvalidLayer,
	}, {
		name: "file to symlink",
		layers: layers(
			entries(file("etc/conf", "v1")),
			entries(symlink("etc/conf", "/victim/hello")),
		),
		check: func(t *testing.T, s *sandbox, root string) {
			wantSymlink(t, root, "etc/conf", "/victim/hello")
		},
	}})
}

func TestApplyHardlinkLower(t *testing.T) {
	l1 := entries(dir("bin/"), file("bin/busybox", "BB", mode(0o4755), xattr("user.tag", "1")))
	l2 := entries(hardlink("bin/sh", "bin/busybox"))
	runCases(t, []layerCase{{
		name:   "link to lower file",
		layers: layers(l1, l2),
		check: func(t *testing.T, s *sandbox, root string) {
			wantFile(t, root, "bin/sh", "BB")
			wantMode(t, root, "bin/sh", 0o4755)
			wantXattr(t, root, "bin/sh", "user.tag", "1")
			wantSameInode(t, root, "bin/sh", "bin/busybox", 2)
		},
	}, {
		name:   "then whiteout target",
		layers: layers(l1, l2, entries(whiteout("bin/busybox"))),
		check: func(t *testing.T, s *sandbox, root string) {
			wantFile(t, root, "bin/sh", "BB")
			wantMissing(t, root, "bin/busybox")
		},
	}, {
		name:   "then replace target",
		layers: layers(l1, l2, entries(file("bin/busybox", "NEW"))),
		check: func(t *testing.T, s *sandbox, root string) {
			wantFile(t, root, "bin/sh", "BB")
			wantFile(t, root, "bin/busybox", "NEW")
		},
	}, {
		name:   "link and whiteout target in one layer",
		layers: layers(l1, entries(hardlink("bin/sh", "bin/busybox"), whiteout("bin/busybox"))),
		check: func(t *testing.T, s *sandbox, root string) {
			wantFile(t, root, "bin/sh", "BB")
			wantNames(t, root, "bin", "sh")
		},
	}, {
		name: "link to lower symlink",
		layers: layers(
			entries(symlink("l", "/etc/passwd")),
			entries(hardlink("l2", "l")),
		),
		check: func(t *testing.T, s *sandbox, root string) {
			wantSymlink(t, root, "l2", "/etc/passwd")
		},
	}})
}

func TestApplyMetadata(t *testing.T) {
	capability := string([]byte{1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	runCases(t, []layerCase{{
		name: "setuid after chown",
		layers: layers(entries(
			dir("tmp/", mode(0o1777)), dir("srv/shared/", mode(0o2775), owner(0, 100)),
			file("usr/bin/su", "su", mode(0o4755)),
			file("usr/bin/wall", "w", mode(0o2755), owner(0, 5)),
			file("usr/bin/pw", "p", mode(0o6750), owner(0, 42)),
			file("usr/bin/own", "o", mode(0o4755), owner(1000, 1000)),
			file("usr/bin/weird", "x", mode(0o7777)),
		)),
		check: func(t *testing.T, s *sandbox, root string) {
			wantMode(t, root, "tmp", 0o1777)
			wantMode(t, root, "srv/shared", 0o2775)
			wantOwner(t, root, "srv/shared", 0, 100)
			wantMode(t, root, "usr/bin/su", 0o4755)
			wantMode(t, root, "usr/bin/wall", 0o2755)
			wantMode(t, root, "usr/bin/pw", 0o6750)
			wantOwner(t, root, "usr/bin/pw", 0, 42)
			wantMode(t, root, "usr/bin/own", 0o4755)
			wantOwner(t, root, "usr/bin/own", 1000, 1000)
			wantMode(t, root, "usr/bin/weird", 0o7777)
		},
	}, {
		name: "xattrs",
		layers: layers(entries(
			file("usr/bin/ping", "ELF", mode(0o755),
				xattr("security.capability", capability), xattr("user.comment", "hi")),
			dir("etc/", xattr("user.dirtag", "1")),
			symlink("usr/bin/ping6", "ping", xattr("user.x", "1")),
			file("f2", "", xattr("security.selinux", "system_u:object_r:bin_t:s0")),
			file("f3", "", xattr("trusted.foo", "bar"), xattr("trusted.overlay.opaque", "y")),
			dir("d/", xattr("user.overlay.opaque", "y"), xattr("trusted.overlay.redirect", "/x")),
		)),
		check: func(t *testing.T, s *sandbox, root string) {
			wantXattr(t, root, "usr/bin/ping", "security.capability", capability)
			wantXattr(t, root, "usr/bin/ping", "user.comment", "hi")
			wantOwner(t, root, "usr/bin/ping", 0, 0)
			wantMode(t, root, "usr/bin/ping", 0o755)
			wantXattr(t, root, "etc", "user.dirtag", "1")
			wantNoXattr(t, root, "usr/bin/ping6", "user.x")
			wantXattr(t, root, "f3", "trusted.foo", "bar")
			wantNoXattr(t, root, "d", "user.overlay.opaque")
		},
	}, {
		name: "dir mtimes restored",
		layers: layers(
			entries(dir("a/"), file("a/gone", ""), dir("p/", mtime(1600000000)), file("p/old", "")),
			entries(
				dir("a/", mtime(1000000000)), dir("a/b/", mtime(1100000000)),
				file("a/b/f", "", mtime(1200000000)), file("a/g", "", mtime(1300000000)),
				symlink("a/l", "g", mtime(1400000000)), whiteout("a/gone"),
				dir("c/", tartest.ModTime(time.Unix(1500000000, 123456789))), file("c/x", ""),
				file("p/new", ""),
			),
		),
		check: func(t *testing.T, s *sandbox, root string) {
			wantMtime(t, root, "a", 1000000000, 0)
			wantMtime(t, root, "a/b", 1100000000, 0)
			wantMtime(t, root, "a/b/f", 1200000000, 0)
			wantMtime(t, root, "a/g", 1300000000, 0)
			wantMtime(t, root, "a/l", 1400000000, 0)
			wantMtime(t, root, "c", 1500000000, 123456789)
			wantMtime(t, root, "p", 1600000000, 0)
			wantMissing(t, root, "a/gone")
		},
	}, {
		name: "atime from header",
		layers: layers(entries(
			file("f", "", mtime(1000), tartest.AccessTime(time.Unix(2000, 5))),
		)),
		check: func(t *testing.T, s *sandbox, root string) {
			st, _ := lstat(t, root, "f")
			if st.Atim.Sec != 2000 || st.Atim.Nsec != 5 {
				t.Errorf("f: atime %d.%09d, want 2000.000000005", st.Atim.Sec, st.Atim.Nsec)
			}
		},
	}, {
		name: "duplicate entries",
		layers: func(s *sandbox) [][]tartest.Entry {
			return [][]tartest.Entry{{
				file("etc/conf", "v1", mode(0o644)),
				file("./etc/conf", "v2", mode(0o600), owner(7, 7)),
				hardlink("h", "etc/conf"),
				file("/etc/conf", "v3"),
				dir("etc/", mode(0o700)),
				symlink("x", "../victim/hello"), file("x", "now a file"),
				symlink("y", "etc/conf"), file("y", "replaces link"),
				dir("d/"), file("d/child", ""), file("d", "file"),
				symlink("abs", filepath.Join(s.dir, "victim/hello")), file("abs", "file"),
			}}
		},
		check: func(t *testing.T, s *sandbox, root string) {
			wantFile(t, root, "etc/conf", "v3")
			wantMode(t, root, "etc/conf", 0o644)
			wantFile(t, root, "h", "v2")
			wantMode(t, root, "h", 0o600)
			wantOwner(t, root, "h", 7, 7)
			wantMode(t, root, "etc", 0o700)
			wantFile(t, root, "x", "now a file")
			wantFile(t, root, "y", "replaces link")
			wantFile(t, root, "d", "file")
			wantFile(t, root, "abs", "file")
		},
	}, {
		name: "implied parents",
		layers: layers(
			entries(dir("tmp/", mode(0o1777)), dir("opt/", mode(0o750), owner(5, 6),
				xattr("user.x", "1"))),
			entries(
				file("tmp/app/sock.conf", "c"), file("opt/tool/bin/t", "t", mode(0o755)),
				file("etc/ssl/certs/ca.crt", "pem"),
				hardlink("new/deep/alias", "tmp/app/sock.conf"),
				dir("other/noparent/leaf", mode(0o700)),
			),
		),
		check: func(t *testing.T, s *sandbox, root string) {
			wantMode(t, root, "tmp", 0o1777)
			wantMode(t, root, "opt", 0o750)
			wantOwner(t, root, "opt", 5, 6)
			wantXattr(t, root, "opt", "user.x", "1")
			for _, p := range []string{"tmp/app", "opt/tool", "opt/tool/bin", "etc", "etc/ssl",
				"etc/ssl/certs", "new", "new/deep", "other", "other/noparent"} {
				wantMode(t, root, p, 0o755)
				wantOwner(t, root, p, 0, 0)
			}
			wantMode(t, root, "other/noparent/leaf", 0o700)
			wantSameInode(t, root, "new/deep/alias", "tmp/app/sock.conf", 2)
		},
	}, {
		name: "usrmerge implied parent through lower symlink",
		layers: layers(
			entries(dir("usr/"), dir("usr/lib/"), file("usr/lib/libc.so", "C"),
				symlink("lib", "usr/lib")),
			entries(file("lib/systemd/system/container.service", "content")),
		),
		check: func(t *testing.T, s *sandbox, root string) {
			wantSymlink(t, root, "lib", "usr/lib")
			wantFile(t, root, "usr/lib/systemd/system/container.service", "content")
			wantFile(t, root, "usr/lib/libc.so", "C")
		},
	}, {
		name: "read-only dirs",
		layers: layers(
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
			),
		),
		check: func(t *testing.T, s *sandbox, root string) {
			wantMode(t, root, "usr/lib/modprobe.d", 0o555)
			wantNames(t, root, "usr/lib/modprobe.d", "b.conf")
			wantMode(t, root, "ro", 0o500)
			wantMode(t, root, "ro/sub", 0o500)
			wantFile(t, root, "ro/sub/new", "n")
			wantMode(t, root, "home/u/.ssh", 0o700)
			wantMode(t, root, "zero", 0)
			wantFile(t, root, "zero/f", "z")
		},
	}})
}

func TestApplySpecialFiles(t *testing.T) {
	runCases(t, []layerCase{{
		name: "devices and fifo",
		layers: layers(entries(
			tartest.Char("dev/null", 1, 3, mode(0o666)),
			tartest.Block("dev/loop0", 7, 0, mode(0o660), owner(0, 6)),
			tartest.Fifo("run/ctl", mode(0o600)),
			file("c7", "c", tartest.Typeflag('7')),
		)),
		check: func(t *testing.T, s *sandbox, root string) {
			st, _ := lstat(t, root, "dev/null")
			if st.Mode&0o170000 != 0o020000 || st.Rdev != 1<<8|3 {
				t.Errorf("dev/null: mode %o rdev %#x, want char 1:3", st.Mode, st.Rdev)
			}
			wantMode(t, root, "dev/null", 0o666)
			wantOwner(t, root, "dev/loop0", 0, 6)
			wantMode(t, root, "run/ctl", 0o600)
			wantFile(t, root, "c7", "c")
		},
	}, {
		name:    "unknown type",
		layers:  layers(entries(file("z", "", tartest.Typeflag('Z')))),
		wantErr: errdefs.ErrUnsupported,
	}, {
		name:    "device major out of range",
		layers:  layers(entries(tartest.Char("dev/bogus", 1<<32, 0))),
		wantErr: errdefs.ErrInvalidLayer,
	}, {
		name: "long names",
		layers: layers(entries(
			tartest.Entry{Header: tar.Header{
				Typeflag: tar.TypeXGlobalHeader, PAXRecords: map[string]string{"comment": "x"},
			}},
			file(strings.Repeat("a", 95)+"/foo", "ustar", tartest.Format(tar.FormatUSTAR)),
			file(strings.Repeat("b", 150), "pax150"),
			file(strings.Repeat("c/", 100)+"f", "pax300", tartest.Format(tar.FormatPAX)),
			file(strings.Repeat("d", 200), "gnu", gnu),
			symlink("gnulink", strings.Repeat("t", 180), gnu),
			hardlink("paxlink"+strings.Repeat("e", 120), strings.Repeat("b", 150)),
		)),
		check: func(t *testing.T, s *sandbox, root string) {
			wantFile(t, root, strings.Repeat("a", 95)+"/foo", "ustar")
			wantFile(t, root, strings.Repeat("b", 150), "pax150")
			wantFile(t, root, strings.Repeat("c/", 100)+"f", "pax300")
			wantFile(t, root, strings.Repeat("d", 200), "gnu")
			wantSymlink(t, root, "gnulink", strings.Repeat("t", 180))
			wantSameInode(t, root, "paxlink"+strings.Repeat("e", 120), strings.Repeat("b", 150), 2)
		},
	}, {
		name:    "component too long",
		layers:  layers(entries(file(strings.Repeat("g", 256), ""))),
		wantErr: errdefs.ErrInvalidLayer,
	}, {
		name: "non-UTF-8 names",
		layers: layers(
			entries(
				file("caf\xe9.txt", "l1", gnu), dir("dir\xff\xfe/", gnu),
				file("dir\xff\xfe/x", "", gnu), file("ok-é.txt", ""),
				symlink("lnk\xe9", "caf\xe9.txt", gnu),
			),
			entries(file(".wh.caf\xe9.txt", "", gnu),
				file("dir\xff\xfe/.wh.x", "", gnu)),
		),
		check: func(t *testing.T, s *sandbox, root string) {
			wantNames(t, root, "", "dir\xff\xfe", "lnk\xe9", "ok-é.txt")
			wantNames(t, root, "dir\xff\xfe")
			wantSymlink(t, root, "lnk\xe9", "caf\xe9.txt")
		},
	}})
}

package layercases

import (
	"archive/tar"
	"testing"
	"time"

	"github.com/strata-containers/strata/archive/tartest"
	"github.com/strata-containers/strata/errdefs"
)

// Case is a set of layers applied bottom first. Every layer below the last
// must apply. With WantErr nil the last layer must apply too, and Check
// runs on the resulting tree; the tree must be the same for every way of
// applying the layers. With WantErr set the last layer must fail with an
// error of that class, naming ErrPath when that is set, and Check runs on
// the tree the failure leaves: the partial root for archive.Apply, the
// unchanged parent for unpack.ApplyLayers.
type Case struct {
	Name    string
	Layers  func(t testing.TB, s *Sandbox) [][]tartest.Entry
	WantErr error
	// ErrPath is the tar entry name that the error must quote, for errors
	// caused by one entry.
	ErrPath string
	Check   func(t testing.TB, s *Sandbox, root string)
}

// Groups returns every group of cases by name.
func Groups() map[string][]Case {
	return map[string][]Case{
		"breakout":     Breakout(),
		"whiteout":     Whiteout(),
		"typechange":   TypeChange(),
		"hardlink":     HardlinkLower(),
		"metadata":     Metadata(),
		"tarformat":    TarFormat(),
		"specialfiles": SpecialFiles(),
	}
}

func layers(ls ...[]tartest.Entry) func(testing.TB, *Sandbox) [][]tartest.Entry {
	return func(testing.TB, *Sandbox) [][]tartest.Entry { return ls }
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

// Breakout returns the cases of path safety: entry names, hard link
// targets and symlinks in parent components that point outside the root,
// and resolution that must see a directory turned into a symlink.
func Breakout() []Case {
	return []Case{{
		Name: "absolute symlink then write",
		Layers: func(_ testing.TB, s *Sandbox) [][]tartest.Entry {
			host := s.Path("hostdir")
			return [][]tartest.Entry{{
				symlink("hostetc", host),
				file("hostetc/unbroken", "unbroken"),
				symlink("c1", "/c2"),
				symlink("c2", host),
				file("c1/two", "two"),
			}}
		},
		Check: func(t testing.TB, s *Sandbox, root string) {
			host := s.Path("hostdir")
			WantSymlink(t, root, "hostetc", host)
			WantFile(t, root, host+"/unbroken", "unbroken")
			WantFile(t, root, host+"/two", "two")
		},
	}, {
		Name: "absolute symlink in lower layer",
		Layers: layers(
			entries(dir("var/"), symlink("var/run", "/run")),
			entries(file("var/run/existing/non-existing/file", "content")),
		),
		Check: func(t testing.TB, s *Sandbox, root string) {
			WantSymlink(t, root, "var/run", "/run")
			WantFile(t, root, "run/existing/non-existing/file", "content")
		},
	}, {
		Name: "relative symlink escape clamps",
		Layers: layers(entries(
			dir("dir/"),
			symlink("dir/loophole", "../../victim"),
			file("dir/loophole/newdir/newfile", "x"),
		)),
		Check: func(t testing.TB, s *Sandbox, root string) {
			WantSymlink(t, root, "dir/loophole", "../../victim")
			WantFile(t, root, "victim/newdir/newfile", "x")
		},
	}, {
		Name: "two-hop symlink chain",
		Layers: layers(entries(
			dir("inner/"),
			symlink("inner/up", ".."),
			symlink("inner/up/escape", "../victim"),
			file("inner/up/escape/newfile", "x"),
		)),
		Check: func(t testing.TB, s *Sandbox, root string) {
			WantSymlink(t, root, "escape", "../victim")
			WantFile(t, root, "victim/newfile", "x")
		},
	}, {
		Name: "relative escape before absolute symlink",
		Layers: layers(
			entries(symlink("escape", ".."), symlink("absolute", "/target"), dir("target/")),
			entries(file("escape/absolute/file", "x")),
		),
		Check: func(t testing.TB, s *Sandbox, root string) {
			WantFile(t, root, "target/file", "x")
		},
	}, {
		Name: "escaping symlinks kept verbatim",
		Layers: layers(entries(
			symlink("home/derek/breakout", "../../../breakout"),
			symlink("b2", "../../breakout"),
			symlink("up", "etc/../../upandout"),
		)),
		Check: func(t testing.TB, s *Sandbox, root string) {
			WantSymlink(t, root, "home/derek/breakout", "../../../breakout")
			WantSymlink(t, root, "b2", "../../breakout")
			WantSymlink(t, root, "up", "etc/../../upandout")
		},
	}, {
		Name: "directory turned into symlink",
		Layers: layers(entries(
			dir("d/"), file("d/f1", "1"), symlink("d", "../victim"), file("d/f2", "x"),
		)),
		Check: func(t testing.TB, s *Sandbox, root string) {
			WantSymlink(t, root, "d", "../victim")
			WantFile(t, root, "victim/f2", "x")
			WantNames(t, root, "victim", "f2")
		},
	}, {
		Name: "lower directory turned into symlink",
		Layers: layers(
			entries(dir("d/"), file("d/f1", "1"), dir("etc/")),
			entries(symlink("d", "/etc"), file("d/passwd", "x")),
		),
		Check: func(t testing.TB, s *Sandbox, root string) {
			WantSymlink(t, root, "d", "/etc")
			WantNames(t, root, "etc", "passwd")
		},
	}, {
		Name:    "symlink loop",
		Layers:  layers(entries(symlink("a", "b"), symlink("b", "a"), file("a/x", ""))),
		WantErr: errdefs.ErrInvalidLayer,
		ErrPath: "a/x",
	}, {
		Name:    "entry under symlink to file",
		Layers:  layers(entries(file("f", "x"), symlink("l", "f"), file("l/child", ""))),
		WantErr: errdefs.ErrInvalidLayer,
		ErrPath: "l/child",
	}, {
		Name:    "hardlink to parent path",
		Layers:  layers(entries(hardlink("grab", "../victim/hello"))),
		WantErr: errdefs.ErrBreakout,
		ErrPath: "grab",
	}, {
		Name:    "hardlink to slash dotdot path",
		Layers:  layers(entries(hardlink("grab", "/../victim/hello"))),
		WantErr: errdefs.ErrBreakout,
		ErrPath: "grab",
	}, {
		Name:    "hardlink to sibling with root prefix",
		Layers:  layers(entries(hardlink("grab", "../root-evil/secret"))),
		WantErr: errdefs.ErrBreakout,
		ErrPath: "grab",
	}, {
		Name: "hardlink through escaping symlink",
		Layers: layers(entries(
			dir("d/"), symlink("d/up", "../../victim"), hardlink("grab", "d/up/hello"),
		)),
		WantErr: errdefs.ErrInvalidLayer,
		ErrPath: "grab",
	}, {
		Name: "hardlink through clamped symlink",
		Layers: layers(entries(
			dir("d/"), symlink("d/up", "../../.."), file("etc/passwd", "in"),
			hardlink("grab", "d/up/etc/passwd"),
		)),
		Check: func(t testing.TB, s *Sandbox, root string) {
			WantSameInode(t, root, "grab", "etc/passwd", 2)
			WantFile(t, root, "grab", "in")
		},
	}, {
		Name: "hardlink through lower symlink",
		Layers: layers(
			entries(dir("real/"), file("real/f", "f"), symlink("alias", "/real")),
			entries(hardlink("h", "alias/f")),
		),
		Check: func(t testing.TB, s *Sandbox, root string) {
			WantSameInode(t, root, "h", "real/f", 2)
			WantFile(t, root, "h", "f")
			WantSymlink(t, root, "alias", "/real")
		},
	}, {
		Name:    "hardlink to directory",
		Layers:  layers(entries(dir("a/"), hardlink("loop", "a"))),
		WantErr: errdefs.ErrInvalidLayer,
		ErrPath: "loop",
	}, {
		Name:    "hardlink to missing target",
		Layers:  layers(entries(hardlink("h", "nothing"))),
		WantErr: errdefs.ErrInvalidLayer,
		ErrPath: "h",
	}, {
		Name: "hardlink absolute name inside root",
		Layers: layers(entries(
			file("usr/bin/perlbug", "hello", mode(0o755)),
			hardlink("usr/bin/perlthanks", "/usr/bin/perlbug"),
			hardlink("usr/bin/dotted", "usr/../usr/bin/./perlbug"),
		)),
		Check: func(t testing.TB, s *Sandbox, root string) {
			WantFile(t, root, "usr/bin/perlthanks", "hello")
			WantSameInode(t, root, "usr/bin/perlbug", "usr/bin/perlthanks", 3)
			WantSameInode(t, root, "usr/bin/perlbug", "usr/bin/dotted", 3)
		},
	}, {
		Name: "hardlink to symlink",
		Layers: func(_ testing.TB, s *Sandbox) [][]tartest.Entry {
			return [][]tartest.Entry{{
				dir("etc/", mode(0o770)),
				file("etc/passwd", "inside"),
				symlink("passwdlink", "../../../../../etc/passwd"),
				hardlink("localpasswd", "passwdlink"),
				symlink("abslink", "/etc/passwd"),
				hardlink("abslink2", "abslink", mode(0o600), owner(1234, 1234)),
				symlink("sketch", s.Path("perm400")),
				hardlink("sketchylink", "sketch", mode(0o777)),
				symlink("fwd", "etc/late"),
				hardlink("fwd2", "fwd"),
				file("etc/late", "late"),
			}}
		},
		Check: func(t testing.TB, s *Sandbox, root string) {
			WantSymlink(t, root, "localpasswd", "../../../../../etc/passwd")
			WantSameInode(t, root, "passwdlink", "localpasswd", 2)
			WantSymlink(t, root, "abslink2", "/etc/passwd")
			WantSameInode(t, root, "abslink", "abslink2", 2)
			WantOwner(t, root, "abslink2", 0, 0)
			WantSameInode(t, root, "sketch", "sketchylink", 2)
			WantSameInode(t, root, "fwd", "fwd2", 2)
			WantFile(t, root, "etc/late", "late")
			WantFile(t, root, "etc/passwd", "inside")
			WantMode(t, root, "etc/passwd", 0o644)
		},
	}, {
		Name:    "dotdot name",
		Layers:  layers(entries(file("../victim/dotdot", "bad"))),
		WantErr: errdefs.ErrBreakout,
		ErrPath: "../victim/dotdot",
	}, {
		Name:    "slash dotdot name",
		Layers:  layers(entries(file("/../victim/slash-dotdot", "bad"))),
		WantErr: errdefs.ErrBreakout,
		ErrPath: "/../victim/slash-dotdot",
	}, {
		Name:    "bare dotdot",
		Layers:  layers(entries(file("..", "bad"))),
		WantErr: errdefs.ErrBreakout,
		ErrPath: "..",
	}, {
		Name:    "two dotdots",
		Layers:  layers(entries(file("../../pwned", "bad"))),
		WantErr: errdefs.ErrBreakout,
		ErrPath: "../../pwned",
	}, {
		Name:    "dotdot after component",
		Layers:  layers(entries(file("a/../../pwned", "bad"))),
		WantErr: errdefs.ErrBreakout,
		ErrPath: "a/../../pwned",
	}, {
		Name:    "dotdot directory",
		Layers:  layers(entries(dir("../victim/newdir/"))),
		WantErr: errdefs.ErrBreakout,
		ErrPath: "../victim/newdir/",
	}, {
		Name:    "dotdot symlink name",
		Layers:  layers(entries(symlink("x/../../victim/l", "/"))),
		WantErr: errdefs.ErrBreakout,
		ErrPath: "x/../../victim/l",
	}, {
		Name: "benign dot names",
		Layers: layers(entries(
			file("./x/../y", "ok"), file("/abs/file", "ok"), file("x//z", "ok"),
			file("..data", "d"), file("...", "t"),
		)),
		Check: func(t testing.TB, s *Sandbox, root string) {
			WantFile(t, root, "y", "ok")
			WantFile(t, root, "abs/file", "ok")
			WantFile(t, root, "x/z", "ok")
			WantFile(t, root, "..data", "d")
			WantFile(t, root, "...", "t")
		},
	}, {
		Name: "root entry symlink",
		Layers: func(_ testing.TB, s *Sandbox) [][]tartest.Entry {
			return [][]tartest.Entry{{symlink(".", s.Path("victim")), file("etc/x", "pwn")}}
		},
		WantErr: errdefs.ErrInvalidLayer,
		ErrPath: ".",
	}, {
		Name:    "root entry relative symlink",
		Layers:  layers(entries(symlink("./", "../victim"), file("y", ""))),
		WantErr: errdefs.ErrInvalidLayer,
		ErrPath: "./",
	}, {
		Name:    "root entry file",
		Layers:  layers(entries(file(".", ""))),
		WantErr: errdefs.ErrInvalidLayer,
		ErrPath: ".",
	}, {
		Name:    "root entry file spelled slash",
		Layers:  layers(entries(tartest.Raw(ustarHeader("/", tar.TypeReg, 0)))),
		WantErr: errdefs.ErrInvalidLayer,
		ErrPath: "/",
	}, {
		Name:    "root entry hardlink",
		Layers:  layers(entries(file("etc/passwd", ""), hardlink(".", "etc/passwd"))),
		WantErr: errdefs.ErrInvalidLayer,
		ErrPath: ".",
	}, {
		Name: "root entry symlink over lower",
		Layers: layers(
			entries(file("etc/passwd", "in")),
			entries(symlink("./", "/etc")),
		),
		WantErr: errdefs.ErrInvalidLayer,
		ErrPath: "./",
		Check: func(t testing.TB, s *Sandbox, root string) {
			WantFile(t, root, "etc/passwd", "in")
		},
	}}
}

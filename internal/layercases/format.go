package layercases

import (
	"archive/tar"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/strata-containers/strata/archive/tartest"
	"github.com/strata-containers/strata/errdefs"
)

// Sparse fixture digests: sp.img is "HEAD", zeros up to offset 1 MiB,
// then "TAIL"; tail-hole.img is "X" followed by a hole up to 3 MiB.
const (
	sparseSHA256   = "51e90d6e9fce753cc7784a411c9ce66f69a7df6f1dedac4917bd8990b528f470"
	tailHoleSHA256 = "950adef8e777ecf50a9daf21752ffc93acad3572ef8f1af957db233d69525cc1"
)

// TarFormat returns the cases of tar encodings: ustar prefixes, PAX and
// GNU long names, global headers, sparse files in every GNU encoding,
// non-UTF-8 names and name spellings.
func TarFormat() []Case {
	cases := []Case{{
		Name: "long names",
		Layers: layers(entries(
			tartest.Entry{Header: tar.Header{
				Typeflag: tar.TypeXGlobalHeader, PAXRecords: map[string]string{"comment": "x"},
			}},
			file(strings.Repeat("a", 95)+"/foo", "ustar", tartest.Format(tar.FormatUSTAR)),
			file(strings.Repeat("b", 150), "pax150"),
			file(strings.Repeat("c/", 100)+"f", "pax300", tartest.Format(tar.FormatPAX)),
			file(strings.Repeat("d", 200), "gnu", gnu),
			symlink("gnulink", strings.Repeat("t", 180), gnu),
			hardlink("gnuhard", strings.Repeat("d", 200), gnu),
			hardlink("paxlink"+strings.Repeat("e", 120), strings.Repeat("b", 150)),
		)),
		Check: func(t testing.TB, s *Sandbox, root string) {
			WantFile(t, root, strings.Repeat("a", 95)+"/foo", "ustar")
			WantFile(t, root, strings.Repeat("b", 150), "pax150")
			WantFile(t, root, strings.Repeat("c/", 100)+"f", "pax300")
			WantFile(t, root, strings.Repeat("d", 200), "gnu")
			WantSymlink(t, root, "gnulink", strings.Repeat("t", 180))
			WantSameInode(t, root, "gnuhard", strings.Repeat("d", 200), 2)
			WantSameInode(t, root, "paxlink"+strings.Repeat("e", 120), strings.Repeat("b", 150), 2)
		},
	}, {
		Name: "global header mid-layer",
		Layers: layers(entries(
			file("a", "a"),
			tartest.Entry{Header: tar.Header{
				Typeflag: tar.TypeXGlobalHeader, Name: "no/parent/global",
				PAXRecords: map[string]string{"comment": "y"},
			}},
			file("b", "b"),
		)),
		Check: func(t testing.TB, s *Sandbox, root string) {
			WantNames(t, root, "", "a", "b")
		},
	}, {
		Name:    "component too long",
		Layers:  layers(entries(file(strings.Repeat("g", 256), ""))),
		WantErr: errdefs.ErrInvalidLayer,
		ErrPath: strings.Repeat("g", 256),
	}, {
		Name: "PAX name differs from ustar name",
		Layers: layers(entries(tartest.Entry{Header: tar.Header{
			Typeflag: tar.TypeReg, Name: "../../escape", Mode: 0o644, Format: tar.FormatPAX,
			PAXRecords: map[string]string{"path": "../../escape"},
		}})),
		WantErr: errdefs.ErrBreakout,
		ErrPath: "../../escape",
	}, {
		// GNU keeps atime and ctime where ustar keeps its name prefix, so
		// a reader that takes a GNU header for ustar would read these
		// times as a directory "14000000000".
		Name: "GNU header times are no prefix",
		Layers: layers(entries(tartest.Raw(
			GNUHeader("f.txt", "14000000000\x0014000000001\x00", []byte("gnu"))))),
		Check: func(t testing.TB, s *Sandbox, root string) {
			WantNames(t, root, "", "f.txt")
			WantFile(t, root, "f.txt", "gnu")
		},
	}, {
		// Go writers before 1.8 put a ustar prefix into GNU headers, and
		// archive/tar reads one there when the times do not parse.
		Name: "GNU header with ustar prefix",
		Layers: layers(entries(tartest.Raw(
			GNUHeader("f.txt", "usr/share/doc/some-long-package-name", []byte("old"))))),
		Check: func(t testing.TB, s *Sandbox, root string) {
			WantNames(t, root, "", "usr")
			WantFile(t, root, "usr/share/doc/some-long-package-name/f.txt", "old")
		},
	}, {
		Name:    "GNU header prefix climbing above root",
		Layers:  layers(entries(tartest.Raw(GNUHeader("f.txt", "../../victim", []byte("x"))))),
		WantErr: errdefs.ErrBreakout,
		ErrPath: "../../victim/f.txt",
	}, {
		Name: "non-UTF-8 names",
		Layers: layers(
			entries(
				file("caf\xe9.txt", "l1", gnu), dir("dir\xff\xfe/", gnu),
				file("dir\xff\xfe/x", "", gnu), file("ok-é.txt", ""),
				symlink("lnk\xe9", "caf\xe9.txt", gnu),
				file("pax-"+strings.Repeat("\xc3(", 60), "p", tartest.Format(tar.FormatPAX)),
			),
			entries(file(".wh.caf\xe9.txt", "", gnu),
				file("dir\xff\xfe/.wh.x", "", gnu)),
		),
		Check: func(t testing.TB, s *Sandbox, root string) {
			WantNames(t, root, "", "dir\xff\xfe", "lnk\xe9", "ok-é.txt",
				"pax-"+strings.Repeat("\xc3(", 60))
			WantNames(t, root, "dir\xff\xfe")
			WantSymlink(t, root, "lnk\xe9", "caf\xe9.txt")
		},
	}, {
		Name: "name spellings",
		Layers: layers(entries(
			file("./a/./b", "1"), file("/c//d", "2"), dir("./e/"), file("e/f", "3"),
			file("./e//f", "4"),
		)),
		Check: func(t testing.TB, s *Sandbox, root string) {
			WantFile(t, root, "a/b", "1")
			WantFile(t, root, "c/d", "2")
			WantFile(t, root, "e/f", "4")
		},
	}}

	for _, golden := range []string{
		"sparse-gnu.tar", "sparse-pax-0.0.tar", "sparse-pax-0.1.tar", "sparse-pax-1.0.tar",
	} {
		cases = append(cases, Case{
			Name: "sparse " + strings.TrimSuffix(golden, ".tar"),
			Layers: func(t testing.TB, _ *Sandbox) [][]tartest.Entry {
				return [][]tartest.Entry{{Golden(t, golden)}}
			},
			Check: checkSparse,
		})
	}
	return append(cases, sparseRejects()...)
}

func checkSparse(t testing.TB, s *Sandbox, root string) {
	WantNames(t, root, "", "sp.img", "tail-hole.img")
	for _, f := range []struct {
		name   string
		size   int64
		sha256 string
	}{
		{"sp.img", 1048580, sparseSHA256},
		{"tail-hole.img", 3 << 20, tailHoleSHA256},
	} {
		st, _ := Lstat(t, root, f.name)
		if st.Size != f.size {
			t.Errorf("%s: size %d, want %d", f.name, st.Size, f.size)
		}
		if got := fileSHA256(t, root, f.name); got != f.sha256 {
			t.Errorf("%s: sha256 %s, want %s", f.name, got, f.sha256)
		}
	}
}

// sparseRejects returns malformed GNU sparse 0.1 and 1.0 entries, which
// only a hand-written header can hold.
func sparseRejects() []Case {
	// A 1.0 map lists its region count first, then one offset and one
	// length per line, in the data before the file's content.
	hugeMap := "10000000\n" + strings.Repeat("0\n", 600<<10)
	sparse10 := func(realsize string) []string {
		return []string{"GNU.sparse.major=1", "GNU.sparse.minor=0",
			"GNU.sparse.name=sp.img", "GNU.sparse.realsize=" + realsize}
	}
	sparse01 := func(sparseMap string) []string {
		return []string{"GNU.sparse.major=0", "GNU.sparse.minor=1", "GNU.sparse.name=sp.img",
			"GNU.sparse.size=20", "GNU.sparse.numblocks=2", "GNU.sparse.map=" + sparseMap}
	}
	mapBlock := string(padBlock([]byte("1\n0\n4\n")))
	raw := func(b []byte) func(testing.TB, *Sandbox) [][]tartest.Entry {
		return layers(entries(tartest.Raw(b)))
	}
	return []Case{{
		Name: "sparse map over 1 MiB",
		Layers: raw(RawPAX("GNUSparseFile.0/sp.img", sparse10("20"),
			int64(len(hugeMap)), []byte(hugeMap))),
		WantErr: errdefs.ErrLimit,
	}, {
		Name:    "sparse regions overlap",
		Layers:  raw(RawPAX("sp.img", sparse01("0,10,5,10"), 15, make([]byte, 15))),
		WantErr: errdefs.ErrInvalidLayer,
	}, {
		Name:    "sparse region past real size",
		Layers:  raw(RawPAX("sp.img", sparse01("0,4,30,4"), 8, make([]byte, 8))),
		WantErr: errdefs.ErrInvalidLayer,
	}, {
		// The header size is the file's logical size, as some producers
		// write it, instead of the bytes stored for it.
		Name: "sparse size is logical size",
		Layers: raw(RawPAX("GNUSparseFile.0/sp.img", sparse10("20"),
			512+20, []byte(mapBlock+"HEAD"+strings.Repeat("\x00", 16)))),
		WantErr: errdefs.ErrInvalidLayer,
		ErrPath: "sp.img",
	}}
}

// SpecialFiles returns the cases of devices, fifos, entry types archive/tar
// reads but image layers rarely carry, and device numbers out of range.
func SpecialFiles() []Case {
	return []Case{{
		Name: "devices and fifo",
		Layers: layers(entries(
			tartest.Char("dev/null", 1, 3, mode(0o666)),
			tartest.Block("dev/loop0", 7, 0, mode(0o660), owner(0, 6)),
			tartest.Fifo("run/ctl", mode(0o600)),
			tartest.Char("dev/big", 4095, 1<<20-1, mode(0o600)),
			file("c7", "c", tartest.Typeflag('7')),
		)),
		Check: func(t testing.TB, s *Sandbox, root string) {
			WantDevice(t, root, "dev/null", unix.S_IFCHR, 1, 3)
			WantMode(t, root, "dev/null", 0o666)
			WantDevice(t, root, "dev/loop0", unix.S_IFBLK, 7, 0)
			WantOwner(t, root, "dev/loop0", 0, 6)
			WantMode(t, root, "dev/loop0", 0o660)
			WantMode(t, root, "run/ctl", 0o600)
			WantDevice(t, root, "dev/big", unix.S_IFCHR, 4095, 1<<20-1)
			WantFile(t, root, "c7", "c")
		},
	}, {
		Name:    "unknown type",
		Layers:  layers(entries(file("z", "", tartest.Typeflag('Z')))),
		WantErr: errdefs.ErrUnsupported,
		ErrPath: "z",
	}, {
		Name:    "device major out of range",
		Layers:  layers(entries(tartest.Char("dev/bogus", 1<<32, 0))),
		WantErr: errdefs.ErrInvalidLayer,
		ErrPath: "dev/bogus",
	}, {
		Name:    "device major negative",
		Layers:  layers(entries(tartest.Block("dev/neg", -1, 0, gnu))),
		WantErr: errdefs.ErrInvalidLayer,
		ErrPath: "dev/neg",
	}, {
		Name:    "device minor out of range",
		Layers:  layers(entries(tartest.Char("dev/minor", 1, 1<<20))),
		WantErr: errdefs.ErrInvalidLayer,
		ErrPath: "dev/minor",
	}, {
		Name:    "char device 0:0",
		Layers:  layers(entries(file("x", "x")), entries(tartest.Char("realdev0", 0, 0))),
		WantErr: errdefs.ErrUnsupported,
		ErrPath: "realdev0",
		Check: func(t testing.TB, s *Sandbox, root string) {
			WantNames(t, root, "", "x")
		},
	}, {
		Name:    "char device 0:0 over lower file",
		Layers:  layers(entries(file("x", "x")), entries(tartest.Char("x", 0, 0))),
		WantErr: errdefs.ErrUnsupported,
		ErrPath: "x",
		Check: func(t testing.TB, s *Sandbox, root string) {
			WantFile(t, root, "x", "x")
		},
	}}
}

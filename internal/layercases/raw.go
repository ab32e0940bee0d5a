package layercases

import (
	"archive/tar"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"

	"github.com/strata-containers/strata/archive/tartest"
)

// Golden returns an entry holding the bytes of archive/testdata/name, a
// whole tar stream written by another tool. archive/testdata/README.md
// records how each file was made.
func Golden(t testing.TB, name string) tartest.Entry {
	t.Helper()
	_, self, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("find the source directory of layercases")
	}
	p := filepath.Join(filepath.Dir(self), "..", "..", "archive", "testdata", name)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("read golden layer: %v", err)
	}
	return tartest.Raw(b)
}

// RawPAX returns a PAX entry as raw bytes: an extended header holding
// records, each "key=value" in the order given, then a regular file header
// named name that claims size bytes, then data padded to a block. Go's tar
// writer drops GNU.sparse.* records, so sparse entries are written this way.
func RawPAX(name string, records []string, size int64, data []byte) []byte {
	var ext []byte
	for _, r := range records {
		ext = append(ext, paxRecord(r)...)
	}
	b := ustarHeader("PaxHeaders/"+name, 'x', int64(len(ext)))
	b = append(b, padBlock(ext)...)
	b = append(b, ustarHeader(name, '0', size)...)
	return append(b, padBlock(data)...)
}

// paxRecord formats "key=value" as a PAX record, "LEN key=value\n", where
// LEN counts the whole record including its own digits.
func paxRecord(kv string) string {
	n := len(kv) + 2
	for {
		rec := strconv.Itoa(n) + " " + kv + "\n"
		if len(rec) == n {
			return rec
		}
		n = len(rec)
	}
}

// ustarHeader returns a 512-byte ustar header block with mode 0644, owner
// 0:0 and the default mtime of tartest.
func ustarHeader(name string, typeflag byte, size int64) []byte {
	b := make([]byte, 512)
	copy(b[0:100], name)
	copy(b[100:], "0000644\x00")
	copy(b[108:], "0000000\x00")
	copy(b[116:], "0000000\x00")
	copy(b[124:], fmt.Sprintf("%011o\x00", size))
	copy(b[136:], fmt.Sprintf("%011o\x00", tartest.DefaultModTime.Unix()))
	b[156] = typeflag
	copy(b[257:], "ustar\x0000")
	setChecksum(b)
	return b
}

// GNUHeader returns a regular file entry named name holding data, as raw
// bytes, whose header has the GNU magic "ustar  \x00" and the bytes field
// at offset 345. There GNU keeps the atime and ctime, 12 octal bytes each,
// then the offset and sparse fields, and ustar keeps its 155-byte name
// prefix. archive/tar reads the field as times when they parse as numbers.
// Otherwise it reads an ASCII string there as the prefix of the name,
// because Go writers before 1.8 put one there.
func GNUHeader(name, field string, data []byte) []byte {
	b := ustarHeader(name, tar.TypeReg, int64(len(data)))
	copy(b[257:265], "ustar  \x00")
	copy(b[345:500], field)
	setChecksum(b)
	return append(b, padBlock(data)...)
}

// setChecksum writes the checksum of the header block b: the byte sum of
// the block with the checksum field itself read as spaces.
func setChecksum(b []byte) {
	copy(b[148:156], "        ")
	sum := 0
	for _, c := range b[:512] {
		sum += int(c)
	}
	copy(b[148:], fmt.Sprintf("%06o\x00 ", sum))
}

func padBlock(b []byte) []byte {
	if r := len(b) % 512; r != 0 {
		b = append(b, make([]byte, 512-r)...)
	}
	return b
}

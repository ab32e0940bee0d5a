package layercases

import (
	"fmt"
	"strings"

	"github.com/strata-containers/strata/archive/tartest"
)

// fuzzLower is the first layer of every fuzzed set: directories, files and
// symlinks that point inside, outside and nowhere.
var fuzzLower = entries(
	dir("a/"), file("a/f", "lower"), dir("a/b/"), file("a/b/g", "g"),
	symlink("l", "a"), symlink("up", "../.."), symlink("abs", "/a/b"), symlink("dead", "nowhere"),
	file("x", "x"),
)

var fuzzParts = []string{"a", "b", "f", "g", "l", "up", "abs", "dead", "x", "n", "..", "."}

// Fuzz limits keep one input fast to apply.
const (
	maxFuzzLayers  = 5
	maxFuzzEntries = 32
)

// FuzzLayers turns fuzz data into a set of layers over a fixed first layer.
// Each entry takes three bytes: the type, then two path components picked
// from a small set that names the first layer's paths and symlinks. A type
// byte of 0xff starts a new layer, so the fuzzer builds random lower
// layers as well as the top one.
func FuzzLayers(data []byte) [][]tartest.Entry {
	ls := [][]tartest.Entry{fuzzLower, nil}
	for i := 0; i+3 <= len(data); i += 3 {
		if data[i] == 0xff {
			if len(ls) < maxFuzzLayers {
				ls = append(ls, nil)
			}
			continue
		}
		top := len(ls) - 1
		if len(ls[top]) < maxFuzzEntries {
			ls[top] = append(ls[top], fuzzEntry(data[i:i+3], i))
		}
	}
	return ls
}

func fuzzEntry(b []byte, i int) tartest.Entry {
	name := fuzzParts[int(b[1])%len(fuzzParts)] + "/" + fuzzParts[int(b[2])%len(fuzzParts)]
	if b[1]&0x80 != 0 {
		name = fuzzParts[int(b[2])%len(fuzzParts)]
	}
	target := fuzzParts[int(b[0])%len(fuzzParts)]
	switch b[0] % 16 {
	case 2:
		return dir(name)
	case 3:
		return symlink(name, strings.Repeat("../", int(b[0])%3)+target)
	case 4:
		return hardlink(name, target)
	case 5:
		return whiteout(name)
	case 6:
		return opaque(name)
	case 7:
		return symlink(name, "/"+target)
	case 8:
		return dir(name, mode(0o500), mtime(int64(i)))
	case 9:
		return file(name, "x", xattr("user.f", fmt.Sprint(i)))
	case 10:
		return tartest.Fifo(name)
	case 11:
		return dir("./", mode(0o750), mtime(int64(i)))
	case 12:
		return file(name, "s", mode(0o4755), owner(1, 1))
	case 13:
		return hardlink(name, target+"/"+fuzzParts[int(b[2])%len(fuzzParts)])
	}
	return file(name, fmt.Sprint(i))
}

// FuzzSeeds are inputs that reach whiteouts, opaque directories, hard
// links to lower files and symlinked parents, for fuzz targets to start
// from.
var FuzzSeeds = [][]byte{
	{0, 1, 2, 5, 0, 3},
	{3, 0x84, 5, 0, 4, 2},
	{7, 0x80, 0, 0, 4, 0, 6, 0x80, 0},
	{4, 0x82, 0, 5, 0, 2, 0, 4, 5},
	{5, 0x80, 4, 2, 0x80, 4, 0, 4, 1},
	{6, 0x80, 10, 1, 5, 11, 3, 0x80, 9},
	{2, 0x89, 0, 0xff, 0, 0, 5, 0x80, 9, 0, 9, 1},
	{8, 0x80, 0, 0xff, 0, 0, 9, 0, 2, 13, 0x80, 0, 0xff, 0, 0, 6, 0x80, 0},
	{11, 0, 0, 0xff, 0, 0, 12, 0x89, 0, 0xff, 0, 0, 4, 0x80, 9},
}

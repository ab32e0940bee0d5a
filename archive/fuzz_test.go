package archive

import (
	"fmt"
	"strings"
	"testing"

	"github.com/strata-containers/strata/archive/tartest"
)

// fuzzLower is the layer under every fuzzed layer: directories, files and
// symlinks that point inside, outside and nowhere.
var fuzzLower = entries(
	dir("a/"), file("a/f", "lower"), dir("a/b/"), file("a/b/g", "g"),
	symlink("l", "a"), symlink("up", "../.."), symlink("abs", "/a/b"), symlink("dead", "nowhere"),
	file("x", "x"),
)

var fuzzParts = []string{"a", "b", "f", "g", "l", "up", "abs", "dead", "x", "n", "..", "."}

// fuzzEntries turns data into tar entries, three bytes an entry: the type,
// then two path components picked from fuzzParts.
func fuzzEntries(data []byte) []tartest.Entry {
	var es []tartest.Entry
	for i := 0; i+3 <= len(data) && len(es) < 32; i += 3 {
		name := fuzzParts[int(data[i+1])%len(fuzzParts)] + "/" +
			fuzzParts[int(data[i+2])%len(fuzzParts)]
		if data[i+1]&0x80 != 0 {
			name = fuzzParts[int(data[i+2])%len(fuzzParts)]
		}
		target := fuzzParts[int(data[i])%len(fuzzParts)]
		switch data[i] % 8 {
		case 0, 1:
			es = append(es, file(name, fmt.Sprint(i)))
		case 2:
			es = append(es, dir(name))
		case 3:
			es = append(es, symlink(name, strings.Repeat("../", int(data[i])%3)+target))
		case 4:
			es = append(es, hardlink(name, target))
		case 5:
			es = append(es, whiteout(name))
		case 6:
			es = append(es, opaque(name))
		case 7:
			es = append(es, symlink(name, "/"+target))
		}
	}
	return es
}

// FuzzApply applies a random layer over fuzzLower in both modes. Nothing may
// change outside the root, both modes must agree on success, and on
// success the merged overlay must equal the native tree.
func FuzzApply(f *testing.F) {
	for _, seed := range [][]byte{
		{0, 1, 2, 5, 0, 3},
		{3, 0x84, 5, 0, 4, 2},
		{7, 0x80, 0, 0, 4, 0, 6, 0x80, 0},
		{4, 0x82, 0, 5, 0, 2, 0, 4, 5},
		{5, 0x80, 4, 2, 0x80, 4, 0, 4, 1},
		{6, 0x80, 10, 1, 5, 11, 3, 0x80, 9},
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		requireRoot(t)
		s := newSandbox(t)
		defer s.check(t)
		ls := [][]byte{tartest.Tar(t, fuzzLower...), tartest.Tar(t, fuzzEntries(data)...)}
		native, nerr := applyNative(t, s, ls)
		uppers, oerr := applyOverlay(t, s, ls)
		if (nerr == nil) != (oerr == nil) {
			t.Fatalf("modes disagree: native error %v, overlay error %v", nerr, oerr)
		}
		if nerr != nil {
			return
		}
		compareTrees(t, native, mountLayers(t, s, uppers))
	})
}

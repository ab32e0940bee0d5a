package archive

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/strata-containers/strata/archive/tartest"
	"github.com/strata-containers/strata/internal/fstree"
	"github.com/strata-containers/strata/internal/layercases"
)

var (
	lstat         = layercases.Lstat
	wantFile      = layercases.WantFile
	wantMissing   = layercases.WantMissing
	wantMode      = layercases.WantMode
	wantOwner     = layercases.WantOwner
	wantMtime     = layercases.WantMtime
	wantXattr     = layercases.WantXattr
	wantNames     = layercases.WantNames
	wantSameInode = layercases.WantSameInode
)

// walkTree records the tree under root with internal/fstree, directory
// mtimes included.
func walkTree(t *testing.T, root string, opts ...fstree.Opt) []fstree.Entry {
	t.Helper()
	entries, err := fstree.Walk(root, opts...)
	if err != nil {
		t.Fatalf("walk %s: %v", root, err)
	}
	return entries
}

// compareTrees fails t when the trees under want and got differ in any
// field that internal/fstree records.
func compareTrees(t *testing.T, want, got string) {
	t.Helper()
	if diff := fstree.Diff(walkTree(t, want), walkTree(t, got)); diff != "" {
		t.Errorf("tree %s differs from %s (-want +got):\n%s", got, want, diff)
	}
}

// compareUpper fails t when the upper directory's tree, overlay xattrs
// included, changed from before.
func compareUpper(t *testing.T, i, j int, before []fstree.Entry, upper string) {
	t.Helper()
	after := walkTree(t, upper, fstree.WithOverlayXattrs())
	if diff := cmp.Diff(before, after); diff != "" {
		t.Errorf("layer %d changed lower %d (-before +after):\n%s", i, j, diff)
	}
}

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

func entries(es ...tartest.Entry) []tartest.Entry { return es }

func mtime(sec int64) tartest.Opt { return tartest.ModTime(time.Unix(sec, 0)) }

package native

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/strata-containers/strata/snapshot"
	"github.com/strata-containers/strata/snapshot/snapshottest"
)

func TestNative(t *testing.T) {
	snapshottest.Run(t, func(t *testing.T, root string) snapshot.Snapshotter {
		t.Helper()
		sn, err := New(root)
		if err != nil {
			t.Fatalf("new native snapshotter: %v", err)
		}
		return sn
	})
}

// TestCommitReusesOnlyUnchangedCopies checks that the manifest of a
// snapshot lists what is on disk for every file copied from the parent:
// one left alone, one rewritten in place with the same size, one chmod-ed,
// one replaced by a new file of the same size, and one linked to a second
// name, whatever digests Commit took from the parent's manifest.
func TestCommitReusesOnlyUnchangedCopies(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("copying owners needs root")
	}
	ctx := context.Background()
	sn, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"same", "rewritten", "chmod", "replaced", "linked"}
	mounts, err := sn.Prepare(ctx, "base-active", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		writeFile(t, filepath.Join(mounts[0].Source, n), "parent "+n)
	}
	if err := sn.Commit(ctx, "base", "base-active"); err != nil {
		t.Fatal(err)
	}

	mounts, err = sn.Prepare(ctx, "child-active", "base")
	if err != nil {
		t.Fatal(err)
	}
	tree := mounts[0].Source
	f, err := os.OpenFile(filepath.Join(tree, "rewritten"), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("CHILD"), 0); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(tree, "chmod"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(tree, "replaced")); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(tree, "replaced"), "CHILD replaced")
	if err := os.Link(filepath.Join(tree, "linked"), filepath.Join(tree, "linked2")); err != nil {
		t.Fatal(err)
	}
	if err := sn.Commit(ctx, "child", "child-active"); err != nil {
		t.Fatal(err)
	}

	res, err := sn.Check(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range res.Problems {
		t.Errorf("%s %s: %s", p.Kind, p.Path, p.Detail)
	}
	if res.Snapshots != 2 {
		t.Errorf("checked %d snapshots, want 2", res.Snapshots)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

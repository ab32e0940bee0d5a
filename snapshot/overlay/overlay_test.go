package overlay

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/strata-containers/strata/internal/testutil"
	"github.com/strata-containers/strata/mount"
	"github.com/strata-containers/strata/snapshot"
	"github.com/strata-containers/strata/snapshot/snapshottest"
)

func newTestSnapshotter(t *testing.T, root string) snapshot.Snapshotter {
	t.Helper()
	sn, err := New(root)
	if err != nil {
		t.Fatalf("new overlay snapshotter: %v", err)
	}
	return sn
}

func TestOverlay(t *testing.T) {
	testutil.RequiresOverlay(t)
	snapshottest.Run(t, newTestSnapshotter)
}

func TestMountsLayout(t *testing.T) {
	testutil.RequiresOverlay(t)
	ctx := context.Background()
	root := testutil.TempDir(t)
	sn, err := New(root, WithMountOptions("userxattr"))
	if err != nil {
		t.Fatal(err)
	}
	fs := func(id string) string { return filepath.Join(root, "snapshots", id, "fs") }

	prepare := func(key, parent string) []mount.Mount {
		t.Helper()
		m, err := sn.Prepare(ctx, key, parent)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	view := func(key, parent string) []mount.Mount {
		t.Helper()
		m, err := sn.View(ctx, key, parent)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	commit := func(name, key string) {
		t.Helper()
		if err := sn.Commit(ctx, name, key); err != nil {
			t.Fatal(err)
		}
	}

	got := prepare("a", "")
	want := []mount.Mount{{Type: "bind", Source: fs("1"), Options: []string{"rbind", "rw"}}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("mounts of first active (-want +got):\n%s", diff)
	}
	commit("base", "a")
	got = prepare("b", "base")
	want = []mount.Mount{{Type: "overlay", Source: "overlay", Options: []string{
		"index=off",
		"upperdir=" + fs("2"),
		"workdir=" + filepath.Join(root, "snapshots", "2", "work"),
		"lowerdir=" + fs("1"),
		"userxattr",
	}}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("mounts of active child (-want +got):\n%s", diff)
	}
	upper, lowers, err := Layers(got)
	if err != nil {
		t.Fatal(err)
	}
	if upper != fs("2") || !cmp.Equal(lowers, []string{fs("1")}) {
		t.Errorf("Layers = %q, %q; want %q, [%q]", upper, lowers, fs("2"), fs("1"))
	}
	commit("mid", "b")

	got = view("v1", "base")
	want = []mount.Mount{{Type: "bind", Source: fs("1"), Options: []string{"rbind", "ro"}}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("mounts of one-parent view (-want +got):\n%s", diff)
	}
	got = view("v2", "mid")
	want = []mount.Mount{{Type: "overlay", Source: "overlay", Options: []string{
		"index=off", "lowerdir=" + fs("2") + ":" + fs("1"), "userxattr",
	}}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("mounts of two-parent view (-want +got):\n%s", diff)
	}
	if _, err := os.Stat(filepath.Join(root, "metadata.db")); err != nil {
		t.Errorf("metadata file: %v", err)
	}
}

func TestRecoverLeftovers(t *testing.T) {
	testutil.RequiresOverlay(t)
	ctx := context.Background()
	root := testutil.TempDir(t)
	sn, err := New(root)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sn.Prepare(ctx, "kept", ""); err != nil {
		t.Fatal(err)
	}

	snapshots := filepath.Join(root, "snapshots")
	leftovers := []string{"new-123", "rm-7", "99"}
	for _, name := range leftovers {
		dir := filepath.Join(snapshots, name, "fs", "locked")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, 0); err != nil {
			t.Fatal(err)
		}
	}

	if _, err := New(root); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(snapshots)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if diff := cmp.Diff([]string{"1"}, names); diff != "" {
		t.Errorf("snapshot directories after recovery (-want +got):\n%s", diff)
	}
	if _, err := sn.Mounts(ctx, "kept"); err != nil {
		t.Errorf("mounts of kept snapshot: %v", err)
	}
}

func TestNewRejectsMissingDType(t *testing.T) {
	testutil.RequiresRoot(t)
	// NOTE: every file system a test can mount here (tmpfs, ext4, xfs)
	// reports d_type, so this checks only that a supported root passes.
	dir := testutil.TempDir(t)
	if err := checkDType(dir); err != nil {
		t.Errorf("check d_type on %s: %v", dir, err)
	}
}

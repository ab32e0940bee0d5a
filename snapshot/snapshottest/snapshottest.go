// Package snapshottest is a conformance suite for [snapshot.Snapshotter]
// implementations.
//
// [Run] mounts snapshots for real with the mount package, so it needs root
// and skips otherwise. Each subtest gets a fresh root directory and a fresh
// Snapshotter on it.
package snapshottest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/strata-containers/strata/errdefs"
	"github.com/strata-containers/strata/internal/testutil"
	"github.com/strata-containers/strata/mount"
	"github.com/strata-containers/strata/snapshot"
)

// NewFunc returns a Snapshotter on root. It may be called more than once
// with the same root, to check that several instances share it.
type NewFunc func(t *testing.T, root string) snapshot.Snapshotter

// Run runs the conformance suite against the snapshotters newSnapshotter
// returns.
func Run(t *testing.T, newSnapshotter NewFunc) {
	testutil.RequiresRoot(t)
	tests := []struct {
		name string
		fn   func(t *testing.T, s *suite)
	}{
		{"Lifecycle", testLifecycle},
		{"ErrorClasses", testErrorClasses},
		{"RemoveWithChildren", testRemoveWithChildren},
		{"RemoveActiveAndView", testRemoveActiveAndView},
		{"RemoveUnwritableDirs", testRemoveUnwritableDirs},
		{"Labels", testLabels},
		{"StatAndWalk", testStatAndWalk},
		{"Usage", testUsage},
		{"RootAttributes", testRootAttributes},
		{"DeepChain", testDeepChain},
		{"ParallelPrepare", testParallelPrepare},
		{"SharedRoot", testSharedRoot},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := testutil.TempDir(t)
			s := &suite{root: root, newSnapshotter: newSnapshotter}
			s.sn = s.open(t)
			tc.fn(t, s)
		})
	}
}

type suite struct {
	root           string
	newSnapshotter NewFunc
	sn             snapshot.Snapshotter
}

// open returns another Snapshotter on the suite's root, closed on cleanup.
func (s *suite) open(t *testing.T) snapshot.Snapshotter {
	t.Helper()
	sn := s.newSnapshotter(t, s.root)
	t.Cleanup(func() {
		if err := sn.Close(); err != nil {
			t.Errorf("close snapshotter: %v", err)
		}
	})
	return sn
}

// mountAt mounts mounts on a new directory and returns it. The mounts are
// removed on cleanup unless the caller's unmount ran first.
func mountAt(t *testing.T, mounts []mount.Mount) (target string, unmount func()) {
	t.Helper()
	target = testutil.TempDir(t)
	if err := mount.All(mounts, target); err != nil {
		t.Fatalf("mount %+v: %v", mounts, err)
	}
	var once sync.Once
	unmount = func() {
		once.Do(func() {
			if err := mount.UnmountAll(target); err != nil {
				t.Errorf("unmount %s: %v", target, err)
			}
		})
	}
	t.Cleanup(unmount)
	return target, unmount
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func checkFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, want := range files {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Errorf("read %s: %v", name, err)
			continue
		}
		if string(got) != want {
			t.Errorf("%s contains %q, want %q", name, got, want)
		}
	}
}

// commitLayer prepares an active snapshot on parent, writes files into it
// through its mounts and commits it as name.
func commitLayer(t *testing.T, sn snapshot.Snapshotter, name, parent string,
	files map[string]string, opts ...snapshot.Opt,
) {
	t.Helper()
	ctx := context.Background()
	key := "prepare-" + name
	mounts, err := sn.Prepare(ctx, key, parent)
	if err != nil {
		t.Fatalf("prepare %s on %q: %v", key, parent, err)
	}
	target, unmount := mountAt(t, mounts)
	writeFiles(t, target, files)
	unmount()
	if err := sn.Commit(ctx, name, key, opts...); err != nil {
		t.Fatalf("commit %s as %s: %v", key, name, err)
	}
}

func checkError(t *testing.T, what string, err, class error) {
	t.Helper()
	if !errors.Is(err, class) {
		t.Errorf("%s returned %v, want class %v", what, err, class)
	}
}

func testLifecycle(t *testing.T, s *suite) {
	ctx := context.Background()
	commitLayer(t, s.sn, "base", "", map[string]string{
		"a.txt":     "base a",
		"dir/b.txt": "base b",
	})
	commitLayer(t, s.sn, "top", "base", map[string]string{
		"a.txt": "top a",
		"c.txt": "top c",
	})

	mounts, err := s.sn.Prepare(ctx, "work", "top")
	if err != nil {
		t.Fatalf("prepare work: %v", err)
	}
	target, unmount := mountAt(t, mounts)
	checkFiles(t, target, map[string]string{"a.txt": "top a", "dir/b.txt": "base b", "c.txt": "top c"})
	writeFiles(t, target, map[string]string{"dir/d.txt": "work d"})
	unmount()

	again, err := s.sn.Mounts(ctx, "work")
	if err != nil {
		t.Fatalf("get mounts of work: %v", err)
	}
	if diff := cmp.Diff(mounts, again); diff != "" {
		t.Errorf("Mounts differs from Prepare (-prepare +mounts):\n%s", diff)
	}
	target, unmount = mountAt(t, again)
	checkFiles(t, target, map[string]string{"dir/d.txt": "work d", "dir/b.txt": "base b"})
	unmount()

	for _, parent := range []string{"base", "top"} {
		key := "view-" + parent
		mounts, err := s.sn.View(ctx, key, parent)
		if err != nil {
			t.Fatalf("view %s: %v", parent, err)
		}
		target, _ := mountAt(t, mounts)
		checkFiles(t, target, map[string]string{"dir/b.txt": "base b"})
		err = os.WriteFile(filepath.Join(target, "new.txt"), nil, 0o644)
		if !errors.Is(err, syscall.EROFS) {
			t.Errorf("write into view of %s returned %v, want EROFS", parent, err)
		}
	}
	if _, err := os.Stat(filepath.Join(target, "c.txt")); err == nil {
		t.Errorf("work snapshot shows c.txt after unmount")
	}

	info, err := s.sn.Stat(ctx, "top")
	if err != nil {
		t.Fatalf("stat top: %v", err)
	}
	if info.Kind != snapshot.KindCommitted || info.Parent != "base" || info.Name != "top" {
		t.Errorf("stat top = %+v, want committed child of base", info)
	}
	if _, err := s.sn.Stat(ctx, "prepare-top"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("stat of committed key returned %v, want ErrNotFound", err)
	}
}

func testErrorClasses(t *testing.T, s *suite) {
	ctx := context.Background()
	commitLayer(t, s.sn, "base", "", map[string]string{"a": "a"})
	if _, err := s.sn.Prepare(ctx, "active", "base"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.sn.View(ctx, "view", "base"); err != nil {
		t.Fatal(err)
	}

	type check struct {
		name  string
		err   error
		class error
	}
	var checks []check
	add := func(name string, err error, class error) {
		checks = append(checks, check{name, err, class})
	}
	_, err := s.sn.Stat(ctx, "missing")
	add("stat missing", err, errdefs.ErrNotFound)
	_, err = s.sn.Mounts(ctx, "missing")
	add("mounts of missing", err, errdefs.ErrNotFound)
	_, err = s.sn.Usage(ctx, "missing")
	add("usage of missing", err, errdefs.ErrNotFound)
	_, err = s.sn.Prepare(ctx, "child", "missing")
	add("prepare on missing parent", err, errdefs.ErrNotFound)
	_, err = s.sn.View(ctx, "child", "missing")
	add("view of missing parent", err, errdefs.ErrNotFound)
	add("commit missing", s.sn.Commit(ctx, "x", "missing"), errdefs.ErrNotFound)
	add("remove missing", s.sn.Remove(ctx, "missing"), errdefs.ErrNotFound)

	_, err = s.sn.Prepare(ctx, "active", "")
	add("prepare existing active key", err, errdefs.ErrAlreadyExists)
	_, err = s.sn.Prepare(ctx, "base", "")
	add("prepare existing committed name", err, errdefs.ErrAlreadyExists)
	_, err = s.sn.View(ctx, "view", "base")
	add("view existing key", err, errdefs.ErrAlreadyExists)
	add("commit onto existing name", s.sn.Commit(ctx, "base", "active"), errdefs.ErrAlreadyExists)

	_, err = s.sn.Prepare(ctx, "child", "active")
	add("prepare on active parent", err, errdefs.ErrFailedPrecondition)
	_, err = s.sn.Prepare(ctx, "child", "view")
	add("prepare on view parent", err, errdefs.ErrFailedPrecondition)
	add("commit view", s.sn.Commit(ctx, "x", "view"), errdefs.ErrFailedPrecondition)
	add("commit committed", s.sn.Commit(ctx, "x", "base"), errdefs.ErrFailedPrecondition)
	add("remove parent", s.sn.Remove(ctx, "base"), errdefs.ErrFailedPrecondition)

	_, err = s.sn.Prepare(ctx, "", "")
	add("prepare empty key", err, errdefs.ErrInvalidArgument)
	_, err = s.sn.Stat(ctx, "")
	add("stat empty key", err, errdefs.ErrInvalidArgument)
	add("commit to empty name", s.sn.Commit(ctx, "", "active"), errdefs.ErrInvalidArgument)

	for _, c := range checks {
		checkError(t, c.name, c.err, c.class)
	}

	// Failed calls must leave no trace.
	var names []string
	err = s.sn.Walk(ctx, func(_ context.Context, info snapshot.Info) error {
		names = append(names, info.Name)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"active", "base", "view"}, names); diff != "" {
		t.Errorf("snapshots after failed calls (-want +got):\n%s", diff)
	}
	mounts, err := s.sn.Mounts(ctx, "active")
	if err != nil {
		t.Fatal(err)
	}
	target, _ := mountAt(t, mounts)
	checkFiles(t, target, map[string]string{"a": "a"})
}

func testRemoveWithChildren(t *testing.T, s *suite) {
	ctx := context.Background()
	commitLayer(t, s.sn, "base", "", map[string]string{"a": "a"})
	commitLayer(t, s.sn, "mid", "base", map[string]string{"b": "b"})
	if _, err := s.sn.Prepare(ctx, "active", "mid"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.sn.View(ctx, "view", "base"); err != nil {
		t.Fatal(err)
	}

	checkError(t, "remove base", s.sn.Remove(ctx, "base"), errdefs.ErrFailedPrecondition)
	checkError(t, "remove mid", s.sn.Remove(ctx, "mid"), errdefs.ErrFailedPrecondition)
	for _, key := range []string{"active", "mid", "view", "base"} {
		if err := s.sn.Remove(ctx, key); err != nil {
			t.Fatalf("remove %s: %v", key, err)
		}
		_, err := s.sn.Stat(ctx, key)
		checkError(t, "stat removed "+key, err, errdefs.ErrNotFound)
	}
}

func testRemoveActiveAndView(t *testing.T, s *suite) {
	ctx := context.Background()
	commitLayer(t, s.sn, "base", "", map[string]string{"a": "a"})
	if _, err := s.sn.Prepare(ctx, "active", "base"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.sn.View(ctx, "view", "base"); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"active", "view"} {
		if err := s.sn.Remove(ctx, key); err != nil {
			t.Fatalf("remove %s: %v", key, err)
		}
		_, err := s.sn.Mounts(ctx, key)
		checkError(t, "mounts of removed "+key, err, errdefs.ErrNotFound)
		// The key is free again.
		if _, err := s.sn.Prepare(ctx, key, "base"); err != nil {
			t.Errorf("prepare removed key %s again: %v", key, err)
		}
	}
}

func testRemoveUnwritableDirs(t *testing.T, s *suite) {
	ctx := context.Background()
	for _, committed := range []bool{false, true} {
		key := fmt.Sprintf("locked-%t", committed)
		mounts, err := s.sn.Prepare(ctx, key, "")
		if err != nil {
			t.Fatal(err)
		}
		target, unmount := mountAt(t, mounts)
		writeFiles(t, target, map[string]string{"d/x/marker-file": "x", "d/y/marker-file": "y"})
		for path, mode := range map[string]os.FileMode{"d/x": 0, "d/y": 0o500, "d": 0o500} {
			if err := os.Chmod(filepath.Join(target, path), mode); err != nil {
				t.Fatal(err)
			}
		}
		unmount()
		if committed {
			name := key + "-committed"
			if err := s.sn.Commit(ctx, name, key); err != nil {
				t.Fatal(err)
			}
			key = name
		}
		if err := s.sn.Remove(ctx, key); err != nil {
			t.Fatalf("remove %s: %v", key, err)
		}
	}

	err := filepath.WalkDir(s.root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Name() == "marker-file" {
			t.Errorf("file of a removed snapshot is left: %s", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func testLabels(t *testing.T, s *suite) {
	ctx := context.Background()
	labels := map[string]string{"a": "1", "strata/b": "two"}
	if _, err := s.sn.Prepare(ctx, "active", "", snapshot.WithLabels(labels)); err != nil {
		t.Fatal(err)
	}
	info, err := s.sn.Stat(ctx, "active")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(labels, info.Labels); diff != "" {
		t.Errorf("labels of active (-want +got):\n%s", diff)
	}

	committed := map[string]string{"c": "3"}
	if err := s.sn.Commit(ctx, "done", "active", snapshot.WithLabels(committed)); err != nil {
		t.Fatal(err)
	}
	info, err = s.sn.Stat(ctx, "done")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(committed, info.Labels); diff != "" {
		t.Errorf("labels of committed (-want +got):\n%s", diff)
	}

	failing := func(*snapshot.Info) error { return errors.New("option failed") }
	if _, err := s.sn.Prepare(ctx, "bad", "", failing); err == nil {
		t.Errorf("prepare with failing option succeeded")
	}
	_, err = s.sn.Stat(ctx, "bad")
	checkError(t, "stat after failing option", err, errdefs.ErrNotFound)
}

func testStatAndWalk(t *testing.T, s *suite) {
	ctx := context.Background()
	before := time.Now().Add(-time.Second)
	commitLayer(t, s.sn, "base", "", nil)
	if _, err := s.sn.Prepare(ctx, "active", "base"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.sn.View(ctx, "view", "base"); err != nil {
		t.Fatal(err)
	}

	got := map[string]snapshot.Info{}
	err := s.sn.Walk(ctx, func(_ context.Context, info snapshot.Info) error {
		got[info.Name] = info
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]snapshot.Info{
		"base":   {Kind: snapshot.KindCommitted, Name: "base"},
		"active": {Kind: snapshot.KindActive, Name: "active", Parent: "base"},
		"view":   {Kind: snapshot.KindView, Name: "view", Parent: "base"},
	}
	ignoreTimes := cmp.FilterPath(func(p cmp.Path) bool {
		f := p.Last().String()
		return f == ".Created" || f == ".Updated"
	}, cmp.Ignore())
	if diff := cmp.Diff(want, got, ignoreTimes); diff != "" {
		t.Errorf("walk (-want +got):\n%s", diff)
	}
	for name, info := range got {
		if info.Created.Before(before) || info.Updated.Before(info.Created) {
			t.Errorf("%s: created %v, updated %v, want both after %v", name,
				info.Created, info.Updated, before)
		}
		stat, err := s.sn.Stat(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(info, stat); diff != "" {
			t.Errorf("stat %s differs from walk (-walk +stat):\n%s", name, diff)
		}
	}

	stop := errors.New("stop")
	calls := 0
	err = s.sn.Walk(ctx, func(context.Context, snapshot.Info) error {
		calls++
		return stop
	})
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("walk with failing function: %d calls, error %v; want 1 call, %v", calls, err, stop)
	}
}

func testUsage(t *testing.T, s *suite) {
	ctx := context.Background()
	mounts, err := s.sn.Prepare(ctx, "active", "")
	if err != nil {
		t.Fatal(err)
	}
	empty, err := s.sn.Usage(ctx, "active")
	if err != nil {
		t.Fatal(err)
	}

	target, unmount := mountAt(t, mounts)
	const size = 1 << 20
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i)
	}
	if err := os.WriteFile(filepath.Join(target, "big"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(target, "big"), filepath.Join(target, "link")); err != nil {
		t.Fatal(err)
	}
	unmount()

	active, err := s.sn.Usage(ctx, "active")
	if err != nil {
		t.Fatal(err)
	}
	if got := active.Inodes - empty.Inodes; got != 1 {
		t.Errorf("usage grew by %d inodes after one file with two links, want 1", got)
	}
	if got := active.Size - empty.Size; got < size || got >= 2*size {
		t.Errorf("usage grew by %d bytes after a %d-byte file with two links", got, size)
	}

	if err := s.sn.Commit(ctx, "done", "active"); err != nil {
		t.Fatal(err)
	}
	committed, err := s.sn.Usage(ctx, "done")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(active, committed); diff != "" {
		t.Errorf("usage changed on commit (-active +committed):\n%s", diff)
	}
}

// testRootAttributes checks that a child shows the owner and mode that its
// parent gave the root directory.
func testRootAttributes(t *testing.T, s *suite) {
	ctx := context.Background()
	mounts, err := s.sn.Prepare(ctx, "active", "")
	if err != nil {
		t.Fatal(err)
	}
	target, unmount := mountAt(t, mounts)
	if err := os.Chown(target, 1000, 1001); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(target, 0o750); err != nil {
		t.Fatal(err)
	}
	unmount()
	if err := s.sn.Commit(ctx, "base", "active"); err != nil {
		t.Fatal(err)
	}

	mounts, err = s.sn.Prepare(ctx, "child", "base")
	if err != nil {
		t.Fatal(err)
	}
	target, _ = mountAt(t, mounts)
	fi, err := os.Stat(target)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if fi.Mode().Perm() != 0o750 || st.Uid != 1000 || st.Gid != 1001 {
		t.Errorf("child root is %v %d:%d, want -rwxr-x--- 1000:1001", fi.Mode(), st.Uid, st.Gid)
	}
}

// chainDepth is deep enough that the overlay lowerdir option of a chain
// exceeds one page with any root path.
const chainDepth = 130

func testDeepChain(t *testing.T, s *suite) {
	ctx := context.Background()
	parent := ""
	want := map[string]string{}
	for i := range chainDepth {
		name := fmt.Sprintf("layer-%03d", i)
		file := fmt.Sprintf("files/%03d", i)
		commitLayer(t, s.sn, name, parent, map[string]string{file: name})
		want[file] = name
		parent = name
	}

	mounts, err := s.sn.View(ctx, "view", parent)
	if err != nil {
		t.Fatal(err)
	}
	target, unmount := mountAt(t, mounts)
	checkFiles(t, target, want)
	entries, err := os.ReadDir(filepath.Join(target, "files"))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != chainDepth {
		t.Errorf("view shows %d files, want %d", len(entries), chainDepth)
	}
	unmount()

	mounts, err = s.sn.Prepare(ctx, "top", parent)
	if err != nil {
		t.Fatal(err)
	}
	target, _ = mountAt(t, mounts)
	checkFiles(t, target, want)
	writeFiles(t, target, map[string]string{"files/top": "top"})
}

func testParallelPrepare(t *testing.T, s *suite) {
	ctx := context.Background()
	commitLayer(t, s.sn, "base", "", map[string]string{"a": "a"})

	const workers = 8
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for i := range workers {
		wg.Go(func() {
			key := fmt.Sprintf("active-%d", i)
			if _, err := s.sn.Prepare(ctx, key, "base"); err != nil {
				errs[i] = err
				return
			}
			errs[i] = s.sn.Commit(ctx, fmt.Sprintf("committed-%d", i), key)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("worker %d: %v", i, err)
		}
	}

	for i := range workers {
		wg.Go(func() { errs[i] = s.sn.Remove(ctx, fmt.Sprintf("committed-%d", i)) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("remove of worker %d: %v", i, err)
		}
	}
	if err := s.sn.Remove(ctx, "base"); err != nil {
		t.Errorf("remove base after its children: %v", err)
	}
}

// testSharedRoot uses two Snapshotters on one root, as two processes would.
func testSharedRoot(t *testing.T, s *suite) {
	ctx := context.Background()
	other := s.open(t)
	commitLayer(t, s.sn, "base", "", map[string]string{"a": "from first"})

	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, sn := range []snapshot.Snapshotter{s.sn, other} {
		wg.Go(func() {
			for j := range 5 {
				key := fmt.Sprintf("active-%d-%d", i, j)
				if _, err := sn.Prepare(ctx, key, "base"); err != nil {
					errs[i] = err
					return
				}
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("snapshotter %d: %v", i, err)
		}
	}

	mounts, err := other.Mounts(ctx, "active-0-0")
	if err != nil {
		t.Fatalf("get mounts from the other snapshotter: %v", err)
	}
	target, _ := mountAt(t, mounts)
	checkFiles(t, target, map[string]string{"a": "from first"})
	checkError(t, "remove shared parent", other.Remove(ctx, "base"), errdefs.ErrFailedPrecondition)

	// A snapshotter opened while the others are idle must keep every
	// snapshot: recovery may only remove leftovers.
	third := s.open(t)
	count := 0
	err = third.Walk(ctx, func(context.Context, snapshot.Info) error {
		count++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if count != 11 {
		t.Errorf("third snapshotter sees %d snapshots, want 11", count)
	}
}

package fscopy

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/strata-containers/strata/internal/testutil"
)

// entry is what Copy must keep about one file.
type entry struct {
	Mode         uint32
	Uid, Gid     uint32
	Rdev         uint64
	Size         int64
	Atime, Mtime unix.Timespec
	Link         string
	Data         string
	Xattrs       map[string]string
	// LinkGroup names the first path that shares the file's inode.
	LinkGroup string
}

func snapshotTree(t *testing.T, root string) map[string]entry {
	t.Helper()
	tree := map[string]entry{}
	first := map[uint64]string{}
	// Stat everything before reading anything, because reading a file or
	// directory can move its access time (relatime), and hard links
	// share one. WalkDir calls the function before it reads a directory.
	err := filepath.WalkDir(root, func(p string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		e := entry{Mode: st.Mode, Uid: st.Uid, Gid: st.Gid, Rdev: st.Rdev,
			Atime: st.Atim, Mtime: st.Mtim}
		// A directory's size is up to its file system.
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			e.Size = st.Size
			if _, ok := first[st.Ino]; !ok {
				first[st.Ino] = rel
			}
			e.LinkGroup = first[st.Ino]
		}
		tree[rel] = e
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	for rel, e := range tree {
		p := filepath.Join(root, rel)
		switch e.Mode & unix.S_IFMT {
		case unix.S_IFLNK:
			e.Link, _ = os.Readlink(p)
		case unix.S_IFREG:
			data, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			e.Data = string(data)
		}
		names, err := listXattrs(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			v, err := getXattr(p, n)
			if err != nil {
				t.Fatal(err)
			}
			if e.Xattrs == nil {
				e.Xattrs = map[string]string{}
			}
			e.Xattrs[n] = string(v)
		}
		tree[rel] = e
	}
	return tree
}

// capability returns a version 2 security.capability value that grants
// CAP_NET_BIND_SERVICE as effective and permitted.
func capability() []byte {
	v := binary.LittleEndian.AppendUint32(nil, 0x02000000|1)
	v = binary.LittleEndian.AppendUint32(v, 1<<unix.CAP_NET_BIND_SERVICE)
	v = binary.LittleEndian.AppendUint32(v, 0)
	return append(v, make([]byte, 8)...)
}

func buildTree(t *testing.T, root string) {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	p := func(name string) string { return filepath.Join(root, name) }

	must(os.MkdirAll(p("dir/sub"), 0o755))
	must(os.WriteFile(p("dir/file"), []byte("hello"), 0o644))
	must(os.WriteFile(p("setuid"), []byte("#!/bin/sh\n"), 0o755))
	must(os.Chown(p("setuid"), 1000, 1000))
	must(unix.Chmod(p("setuid"), 0o6755))
	must(os.WriteFile(p("cap"), []byte("bin"), 0o755))
	must(unix.Lsetxattr(p("cap"), "security.capability", capability(), 0))
	must(unix.Lsetxattr(p("dir/file"), "user.note", []byte("value"), 0))
	must(unix.Lsetxattr(p("dir"), "trusted.overlay.opaque", []byte("y"), 0))
	must(os.Link(p("dir/file"), p("hardlink")))
	must(os.Symlink("dir/file", p("symlink")))
	must(unix.Lsetxattr(p("symlink"), "trusted.mark", []byte("link"), 0))
	must(unix.Lchown(p("symlink"), 1001, 1002))
	must(unix.Mknod(p("null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	must(unix.Mknod(p("whiteout"), unix.S_IFCHR, 0))
	must(unix.Mkfifo(p("fifo"), 0o640))
	must(unix.Mknod(p("socket"), unix.S_IFSOCK|0o755, 0))
	must(os.Mkdir(p("sticky"), 0o755))
	must(os.Chmod(p("sticky"), 0o777|os.ModeSticky))

	// A sparse file: 1 MiB hole, 4 KiB of data, 1 MiB hole.
	f, err := os.Create(p("sparse"))
	must(err)
	_, err = f.WriteAt(make([]byte, 4096), 1<<20)
	must(err)
	must(f.Truncate(2<<20 + 4096))
	must(f.Close())

	must(os.MkdirAll(p("locked/inner"), 0o755))
	must(os.WriteFile(p("locked/inner/file"), []byte("locked"), 0o600))
	must(os.Chmod(p("locked/inner"), 0))
	must(os.Chmod(p("locked"), 0o500))
	must(os.Chmod(root, 0o750))

	// Times last, deepest first, so that nothing touches them afterwards.
	for i, name := range []string{"dir/sub", "dir/file", "symlink", "locked/inner", "locked", "dir", "."} {
		ts := []unix.Timespec{{Sec: 1000 + int64(i), Nsec: 123}, {Sec: 2000 + int64(i), Nsec: 456}}
		must(unix.UtimesNanoAt(unix.AT_FDCWD, p(name), ts, unix.AT_SYMLINK_NOFOLLOW))
	}
}

func TestCopy(t *testing.T) {
	testutil.RequiresRoot(t)
	for _, tc := range []struct {
		name    string
		tmpfs   bool
		workers int
	}{
		{"SameFileSystem", false, 0},
		{"ToTmpfs", true, 0},
		{"SameFileSystemWorkers", false, 4},
		{"ToTmpfsWorkers", true, 4},
	} {
		tmpfs := tc.tmpfs
		t.Run(tc.name, func(t *testing.T) {
			src := filepath.Join(testutil.TempDir(t), "src")
			if err := os.Mkdir(src, 0o755); err != nil {
				t.Fatal(err)
			}
			buildTree(t, src)

			dst := testutil.TempDir(t)
			if tmpfs {
				if err := unix.Mount("tmpfs", dst, "tmpfs", 0, "size=64m"); err != nil {
					t.Fatalf("mount tmpfs: %v", err)
				}
			}
			// Reading a file moves its access time forward once under
			// relatime, so read the tree once before the copy, and the
			// second reading is then stable.
			snapshotTree(t, src)
			want := snapshotTree(t, src)
			if err := Copy(context.Background(), dst, src, WithWorkers(tc.workers)); err != nil {
				t.Fatalf("copy: %v", err)
			}

			got := snapshotTree(t, dst)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("copied tree (-src +dst):\n%s", diff)
			}

			var st unix.Stat_t
			if err := unix.Lstat(filepath.Join(dst, "sparse"), &st); err != nil {
				t.Fatal(err)
			}
			if st.Blocks*512 > 64<<10 {
				t.Errorf("sparse copy allocates %d bytes for 4 KiB of data", st.Blocks*512)
			}
		})
	}
}

func TestCopyRejectsFile(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "file")
	if err := os.WriteFile(src, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Copy(context.Background(), filepath.Join(dir, "dst"), src); err == nil {
		t.Errorf("copy of a regular file as a tree succeeded")
	}
}

func TestCopyCanceled(t *testing.T) {
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "file"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Copy(ctx, t.TempDir(), src); err == nil {
		t.Errorf("copy with a canceled context succeeded")
	}
}

// buildWideTree writes dirs directories of files files each, every file
// and directory with its own content, mode and times.
func buildWideTree(t *testing.T, root string, dirs, files int) {
	t.Helper()
	for d := range dirs {
		dir := filepath.Join(root, fmt.Sprintf("d%03d", d), "sub")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for f := range files {
			p := filepath.Join(dir, fmt.Sprintf("f%03d", f))
			if err := os.WriteFile(p, bytes.Repeat([]byte{byte(d), byte(f)}, 100*f), 0o600+os.FileMode(f%0o100)); err != nil {
				t.Fatal(err)
			}
			ts := []unix.Timespec{{Sec: int64(d*files + f)}, {Sec: int64(1e6 + d*files + f)}}
			if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, 0); err != nil {
				t.Fatal(err)
			}
		}
		for i, p := range []string{dir, filepath.Dir(dir)} {
			ts := []unix.Timespec{{Sec: int64(2e6 + d)}, {Sec: int64(3e6 + 2*d + i)}}
			if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, 0); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestCopyWorkersWideTree checks that copying many files in workers gives
// the same tree as the source, directory times included, and calls the
// FileFunc once for each file.
func TestCopyWorkersWideTree(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	buildWideTree(t, src, 20, 50)
	snapshotTree(t, src)
	want := snapshotTree(t, src)

	dst := t.TempDir()
	calls := map[string]int{}
	err := Copy(context.Background(), dst, src, WithWorkers(3),
		WithFileFunc(func(rel string, _, _ *unix.Stat_t) { calls[rel]++ }))
	if err != nil {
		t.Fatalf("copy: %v", err)
	}
	if diff := cmp.Diff(want, snapshotTree(t, dst)); diff != "" {
		t.Errorf("copied tree (-src +dst):\n%s", diff)
	}
	if len(calls) != 20*50 {
		t.Errorf("FileFunc called for %d files, want %d", len(calls), 20*50)
	}
	for rel, n := range calls {
		if n != 1 {
			t.Errorf("FileFunc called %d times for %s", n, rel)
		}
	}
}

// TestCopyWorkersReportsError checks that a file that a worker cannot
// copy fails the whole copy.
func TestCopyWorkersReportsError(t *testing.T) {
	testutil.RequiresRoot(t)
	src := filepath.Join(t.TempDir(), "src")
	buildWideTree(t, src, 4, 20)
	if err := os.WriteFile(filepath.Join(src, "d002", "big"), bytes.Repeat([]byte("x"), 2<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	dst := testutil.TempDir(t)
	if err := unix.Mount("tmpfs", dst, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatalf("mount tmpfs: %v", err)
	}
	err := Copy(context.Background(), dst, src, WithWorkers(3))
	if !errors.Is(err, unix.ENOSPC) {
		t.Fatalf("error %v, want %v", err, unix.ENOSPC)
	}
}

// TestCopyWorkersCanceled checks that a context cancelled while workers
// still have files queued fails the copy.
func TestCopyWorkersCanceled(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	buildWideTree(t, src, 2, 100)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var once sync.Once
	err := Copy(ctx, t.TempDir(), src, WithWorkers(2),
		WithFileFunc(func(string, *unix.Stat_t, *unix.Stat_t) { once.Do(cancel) }))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want %v", err, context.Canceled)
	}
}

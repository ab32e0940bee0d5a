package storage

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// testDigests is a snapshot.FileDigests over a fixed map. With a
// non-nil hook, it calls hook for every file it is asked about, first.
type testDigests struct {
	sums map[inode]string
	hook func(ino uint64)
}

func (d *testDigests) FileDigest(dev, ino uint64, size int64) (string, bool) {
	if d.hook != nil {
		d.hook(ino)
	}
	sum, ok := d.sums[inode{dev: dev, ino: ino}]
	return sum, ok
}

// treeBuilder makes a test tree and tracks what its manifest must list.
type treeBuilder struct {
	t     *testing.T
	root  string
	files int // regular file names
	// plain maps every regular file's inode to whether its checksum is
	// left out of digests, so that the walk reads the file.
	plain   map[inode]bool
	digests *testDigests
}

func newTreeBuilder(t *testing.T, root string) *treeBuilder {
	t.Helper()
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	return &treeBuilder{
		t: t, root: root, plain: map[inode]bool{},
		digests: &testDigests{sums: map[inode]string{}},
	}
}

// file writes the file rel with size bytes. Unless plain, its checksum
// goes into the builder's digests.
func (b *treeBuilder) file(rel string, size int, plain bool) {
	b.t.Helper()
	p := filepath.Join(b.root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		b.t.Fatal(err)
	}
	data := []byte(strings.Repeat(rel+"\n", size/(len(rel)+1)+1)[:size])
	if err := os.WriteFile(p, data, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.record(p, plain)
}

func (b *treeBuilder) record(p string, plain bool) {
	b.t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		b.t.Fatal(err)
	}
	k := inode{dev: st.Dev, ino: st.Ino}
	b.plain[k] = plain
	b.files++
	if plain {
		return
	}
	sum, err := checksumFile(p, make([]byte, 4096), "")
	if err != nil {
		b.t.Fatal(err)
	}
	b.digests.sums[k] = sum
}

// link adds the hard link rel of the existing file or other object old.
func (b *treeBuilder) link(old, rel string, regular bool) {
	b.t.Helper()
	p := filepath.Join(b.root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		b.t.Fatal(err)
	}
	if err := os.Link(filepath.Join(b.root, old), p); err != nil {
		b.t.Fatal(err)
	}
	if regular {
		b.files++
	}
}

func (b *treeBuilder) dir(rel string) {
	b.t.Helper()
	if err := os.MkdirAll(filepath.Join(b.root, rel), 0o755); err != nil {
		b.t.Fatal(err)
	}
}

func (b *treeBuilder) symlink(target, rel string) {
	b.t.Helper()
	if err := os.Symlink(target, filepath.Join(b.root, rel)); err != nil {
		b.t.Fatal(err)
	}
}

// hashed returns the number of inodes whose checksum the walk computes.
func (b *treeBuilder) hashed() int {
	n := 0
	for _, plain := range b.plain {
		if plain {
			n++
		}
	}
	return n
}

// buildMixedTree fills root with many directories of uneven size, hard
// links across directories, symbolic links, a FIFO, empty directories,
// odd names, a deep chain of directories and one path longer than
// PATH_MAX. About a third of the files have no checksum in digests.
func buildMixedTree(t *testing.T, root string) *treeBuilder {
	t.Helper()
	b := newTreeBuilder(t, root)
	for i := range 40 {
		for j := range i % 7 {
			for k := range 3 + (i*j)%11 {
				rel := fmt.Sprintf("d%02d/s%d/f%03d", i, j, k)
				b.file(rel, (i*131+j*17+k*7)%9000, (i+j+k)%3 == 0)
			}
		}
		if i%5 == 0 {
			b.dir(fmt.Sprintf("d%02d/empty", i))
		}
		b.file(fmt.Sprintf("d%02d/top", i), i*100, i%2 == 0)
	}
	for k := range 300 {
		b.file(fmt.Sprintf("wide/%04d", k), k, k%4 == 0)
	}

	// Hard links whose names sit in directories that different workers
	// walk, with and without a checksum in digests.
	b.link("d03/s1/f000", "d39/s2/link-a", true)
	b.link("d03/s1/f000", "wide/link-a", true)
	b.link("d04/s1/f001", "d38/s3/link-b", true)
	b.link("d04/s1/f001", "d00/link-b", true)
	b.link("d10/top", "d11/s0/link-c", true)

	b.symlink("../d01/top", "d02/to-top")
	b.symlink("/nonexistent", "d05/dangling")
	b.symlink("../wide", "d06/to-dir")
	b.link("d05/dangling", "d35/dangling-link", false)
	if err := unix.Mkfifo(filepath.Join(root, "d07/fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	b.link("d07/fifo", "d33/fifo-link", false)

	// Names that sort apart from their directories: the walk visits "a"
	// and all below it before "a-b", although "a-b" < "a/b" as strings.
	b.file("odd/a/b", 10, true)
	b.file("odd/a-b", 11, false)
	b.file("odd/a.b/c", 12, true)
	b.file("odd/line\nbreak", 13, true)
	b.file("odd/quote\"and\\slash", 14, false)
	b.file("odd/ünïcode", 15, true)

	deep := "deep"
	for i := range 40 {
		deep = filepath.Join(deep, fmt.Sprintf("l%02d", i))
		if i%10 == 9 {
			b.file(filepath.Join(deep, "f"), i, i%20 == 9)
		}
	}
	b.dir(deep)
	buildLongPath(b, "long")
	return b
}

// buildLongPath makes a chain of directories under rel whose full path is
// longer than PATH_MAX, with a file at the end, through file descriptors.
func buildLongPath(b *treeBuilder, rel string) {
	b.t.Helper()
	b.dir(rel)
	fd, err := unix.Open(filepath.Join(b.root, rel), dirFlags, 0)
	if err != nil {
		b.t.Fatal(err)
	}

	name := strings.Repeat("n", 200)
	for range 25 {
		if err := unix.Mkdirat(fd, name, 0o755); err != nil {
			b.t.Fatal(err)
		}
		next, err := unix.Openat(fd, name, dirFlags, 0)
		unix.Close(fd)
		if err != nil {
			b.t.Fatal(err)
		}
		fd = next
	}
	defer unix.Close(fd)

	ffd, err := unix.Openat(fd, "f", unix.O_WRONLY|unix.O_CREAT|unix.O_CLOEXEC, 0o644)
	if err != nil {
		b.t.Fatal(err)
	}
	if _, err := unix.Write(ffd, []byte("beyond PATH_MAX")); err != nil {
		b.t.Fatal(err)
	}
	unix.Close(ffd)

	var st unix.Stat_t
	if err := unix.Fstatat(fd, "f", &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		b.t.Fatal(err)
	}
	b.plain[inode{dev: st.Dev, ino: st.Ino}] = true
	b.files++
}

// manifestResult is what a walk produced, for comparison.
type manifestResult struct {
	manifest string
	inodes   int64
	size     int64
	files    int
	hashed   int
}

func runWriteManifest(t *testing.T, tree string, digests *testDigests, workers int,
) manifestResult {
	t.Helper()
	path := filepath.Join(t.TempDir(), ManifestName)
	m, err := writeManifest(context.Background(), tree, path, digests, workers)
	if err != nil {
		t.Fatalf("write manifest with %d workers: %v", workers, err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return manifestResult{
		manifest: string(data), inodes: m.usage.Inodes, size: m.usage.Size,
		files: m.files, hashed: m.hashed,
	}
}

func TestParallelManifestMatchesSequential(t *testing.T) {
	tree := filepath.Join(t.TempDir(), "fs")
	b := buildMixedTree(t, tree)
	want := runWriteManifest(t, tree, b.digests, 1)
	if want.files != b.files {
		t.Errorf("sequential walk listed %d files, want %d", want.files, b.files)
	}
	if want.hashed != b.hashed() {
		t.Errorf("sequential walk hashed %d files, want %d", want.hashed, b.hashed())
	}
	if n := strings.Count(want.manifest, "\n"); n != b.files+1 {
		t.Errorf("sequential manifest has %d lines, want %d", n, b.files+1)
	}

	for _, workers := range []int{2, 3, 4, 8} {
		for round := range 3 {
			got := runWriteManifest(t, tree, b.digests, workers)
			if got.manifest != want.manifest {
				t.Errorf("%d workers, round %d: manifest differs from the sequential one:\n%s",
					workers, round, firstDifference(want.manifest, got.manifest))
			}
			if g, w := withoutManifest(got), withoutManifest(want); g != w {
				t.Errorf("%d workers, round %d: got %+v, want %+v", workers, round, g, w)
			}
		}
	}
}

func withoutManifest(r manifestResult) manifestResult {
	r.manifest = ""
	return r
}

// firstDifference returns the first line at which want and got differ.
func firstDifference(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := range min(len(w), len(g)) {
		if w[i] != g[i] {
			return fmt.Sprintf("line %d: want %q, got %q", i+1, w[i], g[i])
		}
	}
	return fmt.Sprintf("want %d lines, got %d", len(w), len(g))
}

// TestParallelManifestFirstError checks that the parallel walk returns
// the error that the sequential walk meets first, though a worker may
// meet a later one sooner. A digests hook removes two files just before
// the walk would read them, one at the end of "a" and one at the start of
// "b".
func TestParallelManifestFirstError(t *testing.T) {
	for _, workers := range []int{1, 2, 4} {
		tree := filepath.Join(t.TempDir(), "fs")
		b := newTreeBuilder(t, tree)
		for i := range 200 {
			b.file(fmt.Sprintf("a/s%03d/f", i), 10, false)
		}
		b.file("a/z/gone", 10, true)
		b.file("b/gone", 10, true)
		var mu sync.Mutex
		var st unix.Stat_t
		victims := map[uint64]string{}
		for _, rel := range []string{"a/z/gone", "b/gone"} {
			if err := unix.Lstat(filepath.Join(tree, rel), &st); err != nil {
				t.Fatal(err)
			}
			victims[st.Ino] = filepath.Join(tree, rel)
		}
		b.digests.hook = func(ino uint64) {
			mu.Lock()
			defer mu.Unlock()
			if p, ok := victims[ino]; ok {
				if err := os.Remove(p); err != nil {
					t.Error(err)
				}
			}
		}

		dir := t.TempDir()
		path := filepath.Join(dir, ManifestName)
		_, err := writeManifest(context.Background(), tree, path, b.digests, workers)
		want := fmt.Sprintf("write manifest of %s: openat %s: no such file or directory",
			tree, filepath.Join(tree, "a/z/gone"))
		if err == nil || err.Error() != want {
			t.Errorf("%d workers: error %v, want %s", workers, err, want)
		}
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%d workers: error %v does not wrap fs.ErrNotExist", workers, err)
		}
		if names := dirNames(t, dir); len(names) != 0 {
			t.Errorf("%d workers: failed walk left %q", workers, names)
		}
	}
}

// TestParallelManifestCancel checks that a walk stops with the context's
// error when the context is cancelled halfway, and leaves no file and no
// open directory behind.
func TestParallelManifestCancel(t *testing.T) {
	tree := filepath.Join(t.TempDir(), "fs")
	b := buildMixedTree(t, tree)
	for _, workers := range []int{1, 2, 4} {
		// A first walk opens whatever file descriptors the runtime keeps,
		// so that the count below includes only the walk's own.
		runWriteManifest(t, tree, b.digests, workers)
		before := len(dirNames(t, "/proc/self/fd"))

		ctx, cancel := context.WithCancel(context.Background())
		var calls sync.Mutex
		n := 0
		digests := &testDigests{sums: b.digests.sums, hook: func(uint64) {
			calls.Lock()
			defer calls.Unlock()
			if n++; n == 100 {
				cancel()
			}
		}}
		dir := t.TempDir()
		_, err := writeManifest(ctx, tree, filepath.Join(dir, ManifestName), digests, workers)
		cancel()
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%d workers: error %v, want context.Canceled", workers, err)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "write manifest of "+tree+": ") {
			t.Errorf("%d workers: error %q does not name the tree", workers, err)
		}
		if names := dirNames(t, dir); len(names) != 0 {
			t.Errorf("%d workers: cancelled walk left %q", workers, names)
		}
		if after := len(dirNames(t, "/proc/self/fd")); after != before {
			t.Errorf("%d workers: %d file descriptors open after the walk, %d before",
				workers, after, before)
		}
	}
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// BenchmarkWriteManifest walks a tree of 10,000 small files in 500
// directories, with every checksum in digests as after an unpack, and
// with none so that every file is read.
func BenchmarkWriteManifest(b *testing.B) {
	tree := filepath.Join(b.TempDir(), "fs")
	sums := map[inode]string{}
	for d := range 500 {
		for f := range 20 {
			p := filepath.Join(tree, fmt.Sprintf("d%02d/s%02d/f%02d", d/20, d%20, f))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				b.Fatal(err)
			}
			data := []byte(strings.Repeat("x", (d*37+f*101)%4000))
			if err := os.WriteFile(p, data, 0o644); err != nil {
				b.Fatal(err)
			}
			var st unix.Stat_t
			if err := unix.Lstat(p, &st); err != nil {
				b.Fatal(err)
			}
			sums[inode{dev: st.Dev, ino: st.Ino}] = "crc32c:00000000"
		}
	}
	out := filepath.Join(b.TempDir(), ManifestName)
	for _, c := range []struct {
		name    string
		digests *testDigests
	}{
		{"digests", &testDigests{sums: sums}},
		{"hash", &testDigests{}},
	} {
		for _, workers := range []int{1, 2, 4} {
			b.Run(fmt.Sprintf("%s/workers=%d", c.name, workers), func(b *testing.B) {
				for b.Loop() {
					_, err := writeManifest(context.Background(), tree, out, c.digests, workers)
					if err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

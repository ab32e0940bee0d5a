package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/strata-containers/strata/archive/tartest"
	"github.com/strata-containers/strata/snapshot"
)

// TestFileWorkersWriteQueuedFiles applies a layer of small files with
// file workers and checks that the workers wrote them, with their content,
// owners, modes and times, and that Result.Files holds their digests.
func TestFileWorkersWriteQueuedFiles(t *testing.T) {
	requireRoot(t)
	mtime := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	entries := []tartest.Entry{dir("d/")}
	for i := range 300 {
		entries = append(entries, file(fmt.Sprintf("d/f%03d", i), fmt.Sprintf("content %d", i),
			tartest.Owner(1000+i, 2000), tartest.Mode(0o4640), tartest.ModTime(mtime)))
	}
	layer := tartest.Tar(t, entries...)

	root := t.TempDir()
	cfg := applyConfig{fileWorkers: 2, limits: DefaultLimits()}
	a, err := newApplier(context.Background(), root, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer a.close()
	if _, err := a.applyStream(context.Background(), tar.NewReader(bytes.NewReader(layer))); err != nil {
		t.Fatal(err)
	}
	if err := a.finish(); err != nil {
		t.Fatal(err)
	}
	if a.writer.count != 300 {
		t.Errorf("the workers wrote %d files, want 300", a.writer.count)
	}
	for i := range 300 {
		p := filepath.Join(root, fmt.Sprintf("d/f%03d", i))
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("content %d", i); string(data) != want {
			t.Errorf("%s holds %q, want %q", p, data, want)
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			t.Fatal(err)
		}
		if st.Uid != uint32(1000+i) || st.Gid != 2000 || st.Mode&0o7777 != 0o4640 ||
			st.Mtim.Sec != mtime.Unix() {
			t.Errorf("%s: uid %d gid %d mode %o mtime %d", p, st.Uid, st.Gid, st.Mode&0o7777, st.Mtim.Sec)
		}
		sum, ok := a.files.FileDigest(st.Dev, st.Ino, st.Size)
		if !ok || sum != snapshot.CRC32C(crc32.Checksum(data, castagnoli)) {
			t.Errorf("%s: recorded digest %x (%v), want the content's", p, sum, ok)
		}
	}
}

// TestFileWorkersReplacedFiles writes every name twice in one layer, with
// content of the same size, while workers may still be writing the first
// file, and then more files that may reuse the freed inode numbers. Every
// file's recorded checksum must be its own.
func TestFileWorkersReplacedFiles(t *testing.T) {
	requireRoot(t)
	var entries []tartest.Entry
	for i := range 500 {
		entries = append(entries, file(fmt.Sprintf("f%03d", i), fmt.Sprintf("first %03d", i)))
		entries = append(entries, file(fmt.Sprintf("f%03d", i), fmt.Sprintf("again %03d", i)))
	}
	for i := range 100 {
		entries = append(entries, file(fmt.Sprintf("new%03d", i), fmt.Sprintf("after %03d", i)))
	}
	root, res, err := applyBytes(t, tartest.Tar(t, entries...), WithFileWorkers(4))
	if err != nil {
		t.Fatal(err)
	}
	names, err := filepath.Glob(filepath.Join(root, "*"))
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 600 {
		t.Fatalf("%d names in the root, want 600", len(names))
	}
	for _, p := range names {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			t.Fatal(err)
		}
		sum, ok := res.Files.FileDigest(st.Dev, st.Ino, st.Size)
		if !ok || sum != snapshot.CRC32C(crc32.Checksum(data, castagnoli)) {
			t.Errorf("%s holds %q, and its recorded digest is not its content's (%v)", p, data, ok)
		}
	}
}

// TestFileWorkersReportErrors checks that a file that a worker fails to
// write fails the apply with an error naming the entry.
func TestFileWorkersReportErrors(t *testing.T) {
	requireRoot(t)
	// The xattr name is too long for setxattr(2), which fails with ERANGE
	// on the worker.
	bad := file("d/bad", "x", tartest.Xattr("user."+string(bytes.Repeat([]byte("n"), 300)), "v"))
	layer := tartest.Tar(t, dir("d/"), file("d/a", "a"), bad, file("d/b", "b"))
	for _, workers := range []int{0, 2} {
		_, _, err := applyBytes(t, layer, WithFileWorkers(workers))
		if err == nil || !bytes.Contains([]byte(err.Error()), []byte(`"d/bad"`)) {
			t.Errorf("%d workers: error %v, want one naming d/bad", workers, err)
		}
	}
}

// slowReader returns its bytes a few at a time with a pause before each
// read, so that an apply lasts long enough for a writeback tick.
type slowReader struct {
	r io.Reader
}

func (s slowReader) Read(p []byte) (int, error) {
	time.Sleep(2 * time.Millisecond)
	return s.r.Read(p[:min(len(p), 4096)])
}

// TestWritebackFlushesDuringApply checks that WithWriteback calls syncfs
// while a layer is applied and stops with the apply.
func TestWritebackFlushesDuringApply(t *testing.T) {
	requireRoot(t)
	var entries []tartest.Entry
	for i := range 50 {
		entries = append(entries, file(fmt.Sprintf("f%02d", i), string(bytes.Repeat([]byte{'x'}, 8192))))
	}
	layer := tartest.Tar(t, entries...)
	root := t.TempDir()
	cfg := applyConfig{writeback: time.Millisecond, limits: DefaultLimits()}
	a, err := newApplier(context.Background(), root, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.applyStream(context.Background(), tar.NewReader(slowReader{bytes.NewReader(layer)})); err != nil {
		t.Fatal(err)
	}
	flusher := a.flusher
	a.close()
	n := flusher.syncs.Load()
	if n == 0 {
		t.Fatal("no syncfs during the apply")
	}
	time.Sleep(10 * time.Millisecond)
	if after := flusher.syncs.Load(); after != n {
		t.Errorf("%d syncfs calls after close", after-n)
	}
}

package fscopy

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/strata-containers/strata/internal/testutil"
)

// TestCopyClonesOnXFS copies a tree on an xfs file system made with
// reflink=1 on a loop device, and checks that the copy shares the
// source's extents instead of taking new space, and still reads the same.
func TestCopyClonesOnXFS(t *testing.T) {
	testutil.RequiresRoot(t)
	if _, err := exec.LookPath("mkfs.xfs"); err != nil {
		t.Skip("mkfs.xfs not found: install xfsprogs to test FICLONE")
	}
	dir := mountXFS(t)

	src, dst := filepath.Join(dir, "src"), filepath.Join(dir, "dst")
	for _, d := range []string{src, dst} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	data := bytes.Repeat([]byte("reflinked data\n"), 32<<20/15)
	if err := os.WriteFile(filepath.Join(src, "big"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	before := freeBytes(t, dir)

	var seen []string
	err := Copy(context.Background(), dst, src, WithFileFunc(func(rel string, _, _ *unix.Stat_t) {
		seen = append(seen, rel)
	}))
	if err != nil {
		t.Fatalf("copy: %v", err)
	}
	after := freeBytes(t, dir)

	got, err := os.ReadFile(filepath.Join(dst, "big"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Errorf("copied file differs from the source")
	}
	if used := before - after; used > int64(len(data))/4 {
		t.Errorf("copy took %d bytes of space for a %d byte file, want it to share extents",
			used, len(data))
	}
	if strings.Join(seen, ",") != "big" {
		t.Errorf("file function saw %q, want [big]", seen)
	}
}

// mountXFS makes a 512 MiB xfs file system with reflinks in a file,
// mounts it on a loop device and returns the mount point. Cleanup
// unmounts it and detaches the loop device.
func mountXFS(t *testing.T) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "xfs.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 512<<20); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mkfs.xfs", "-q", "-m", "reflink=1", img).CombinedOutput(); err != nil {
		t.Skipf("mkfs.xfs -m reflink=1: %v: %s", err, out)
	}
	out, err := exec.Command("losetup", "--find", "--show", img).Output()
	if err != nil {
		t.Skipf("losetup: %v", err)
	}
	loop := strings.TrimSpace(string(out))
	t.Cleanup(func() {
		if out, err := exec.Command("losetup", "--detach", loop).CombinedOutput(); err != nil {
			t.Errorf("detach %s: %v: %s", loop, err, out)
		}
	})
	mnt := t.TempDir()
	if err := unix.Mount(loop, mnt, "xfs", 0, ""); err != nil {
		t.Skipf("mount xfs on %s: %v", loop, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(mnt, 0); err != nil {
			t.Errorf("unmount %s: %v", mnt, err)
		}
	})
	return mnt
}

func freeBytes(t *testing.T, dir string) int64 {
	t.Helper()
	if err := exec.Command("sync", "-f", dir).Run(); err != nil {
		t.Fatal(err)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Bavail) * st.Bsize
}

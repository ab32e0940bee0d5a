package mount

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/strata-containers/strata/internal/testutil"
)

func TestLowerDirsRoundTrip(t *testing.T) {
	dirs := []string{"/a", `/with:colon`, `/back\slash`, "/c"}
	m := Mount{Type: "overlay", Options: []string{"index=off", "lowerdir=" + JoinLowerDirs(dirs),
		"upperdir=/u", "workdir=/w"}}
	if diff := cmp.Diff(dirs, m.LowerDirs()); diff != "" {
		t.Errorf("LowerDirs (-want +got):\n%s", diff)
	}
	if m.UpperDir() != "/u" || m.WorkDir() != "/w" {
		t.Errorf("UpperDir, WorkDir = %q, %q; want /u, /w", m.UpperDir(), m.WorkDir())
	}
	if (Mount{}).LowerDirs() != nil {
		t.Errorf("LowerDirs of a mount without lowerdir is not nil")
	}
}

func TestReadOnly(t *testing.T) {
	for _, tc := range []struct {
		options []string
		want    bool
	}{
		{nil, false},
		{[]string{"rbind", "ro"}, true},
		{[]string{"ro", "rw"}, false},
	} {
		if got := (Mount{Options: tc.options}).ReadOnly(); got != tc.want {
			t.Errorf("ReadOnly of %q = %t, want %t", tc.options, got, tc.want)
		}
	}
}

func TestParseOptions(t *testing.T) {
	p := parseOptions([]string{"ro", "nosuid", "rw", "rprivate", "lowerdir=/a", "userxattr"})
	if p.flags != unix.MS_NOSUID {
		t.Errorf("flags = %#x, want MS_NOSUID", p.flags)
	}
	if diff := cmp.Diff([]uintptr{unix.MS_PRIVATE | unix.MS_REC}, p.propagation); diff != "" {
		t.Errorf("propagation (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"lowerdir=/a", "userxattr"}, p.data); diff != "" {
		t.Errorf("data (-want +got):\n%s", diff)
	}
}

func TestBindReadOnly(t *testing.T) {
	testutil.RequiresRoot(t)
	src, target := testutil.TempDir(t), testutil.TempDir(t)
	if err := os.WriteFile(filepath.Join(src, "file"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	m := Mount{Type: "bind", Source: src, Options: []string{"rbind", "ro"}}
	if err := All([]Mount{m}, target); err != nil {
		t.Fatal(err)
	}
	defer UnmountAll(target)

	if _, err := os.Stat(filepath.Join(target, "file")); err != nil {
		t.Errorf("file not visible through bind: %v", err)
	}
	err := os.WriteFile(filepath.Join(target, "new"), nil, 0o644)
	if !errors.Is(err, syscall.EROFS) {
		t.Errorf("write into read-only bind returned %v, want EROFS", err)
	}
	if err := UnmountAll(target); err != nil {
		t.Fatal(err)
	}
	if err := UnmountAll(target); err != nil {
		t.Errorf("unmount of a directory that is no mount point: %v", err)
	}
}

func TestUnmountAllStacked(t *testing.T) {
	testutil.RequiresRoot(t)
	src, target := testutil.TempDir(t), testutil.TempDir(t)
	m := Mount{Type: "bind", Source: src, Options: []string{"bind"}}
	for range 3 {
		if err := m.Mount(target); err != nil {
			t.Fatal(err)
		}
	}
	if err := UnmountAll(target); err != nil {
		t.Fatal(err)
	}
	if err := unix.Unmount(target, 0); !errors.Is(err, unix.EINVAL) {
		t.Errorf("target still mounted after UnmountAll: unmount returned %v", err)
	}
	if err := UnmountAll(filepath.Join(target, "missing")); err != nil {
		t.Errorf("unmount of a missing path: %v", err)
	}
}

func TestAllRollsBack(t *testing.T) {
	testutil.RequiresRoot(t)
	src, target := testutil.TempDir(t), testutil.TempDir(t)
	mounts := []Mount{
		{Type: "bind", Source: src, Options: []string{"rbind"}},
		{Type: "bind", Source: filepath.Join(src, "missing"), Options: []string{"rbind"}},
	}
	err := All(mounts, target)
	var merr *Error
	if !errors.As(err, &merr) || !errors.Is(err, unix.ENOENT) {
		t.Fatalf("All with a missing source returned %v, want *Error wrapping ENOENT", err)
	}
	if err := unix.Unmount(target, 0); !errors.Is(err, unix.EINVAL) {
		t.Errorf("first mount left behind: unmount returned %v", err)
	}
}

// overlayLayers makes n lower directories, each holding one file, with
// long names so that their lowerdir option exceeds a page when n is large.
func overlayLayers(t *testing.T, root string, n int) []string {
	t.Helper()
	pad := strings.Repeat("x", 60)
	var lowers []string
	for i := range n {
		dir := filepath.Join(root, fmt.Sprintf("%s-%03d", pad, i))
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%03d", i)), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		lowers = append([]string{dir}, lowers...)
	}
	return lowers
}

func TestOverlayManyLayers(t *testing.T) {
	testutil.RequiresOverlay(t)
	root := testutil.TempDir(t)
	const n = 200
	lowers := overlayLayers(t, root, n)
	upper, work, target := filepath.Join(root, "upper"), filepath.Join(root, "work"),
		filepath.Join(root, "merged")
	for _, d := range []string{upper, work, target} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	m := Mount{Type: "overlay", Source: "overlay", Options: []string{
		"index=off", "lowerdir=" + JoinLowerDirs(lowers), "upperdir=" + upper, "workdir=" + work,
	}}
	if l := len(strings.Join(m.Options, ",")); l < unix.Getpagesize() {
		t.Fatalf("options are %d bytes, want more than a page", l)
	}
	if err := m.Mount(target); err != nil {
		t.Fatal(err)
	}
	defer UnmountAll(target)

	entries, err := os.ReadDir(target)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != n {
		t.Errorf("overlay shows %d files, want %d", len(entries), n)
	}
	if err := os.WriteFile(filepath.Join(target, "new"), nil, 0o644); err != nil {
		t.Errorf("write into overlay: %v", err)
	}
	if _, err := os.Stat(filepath.Join(upper, "new")); err != nil {
		t.Errorf("write did not reach the upper directory: %v", err)
	}
}

func TestOverlayFSReadOnlyAndErrors(t *testing.T) {
	testutil.RequiresOverlay(t)
	root := testutil.TempDir(t)
	lowers := overlayLayers(t, root, 2)
	target := filepath.Join(root, "merged")
	if err := os.Mkdir(target, 0o755); err != nil {
		t.Fatal(err)
	}

	// Short options take the fsopen path only when called directly.
	p := parseOptions([]string{"ro", "lowerdir=" + JoinLowerDirs(lowers)})
	if err := mountOverlayFS(target, p); err != nil {
		t.Fatal(err)
	}
	err := os.WriteFile(filepath.Join(target, "new"), nil, 0o644)
	if !errors.Is(err, syscall.EROFS) {
		t.Errorf("write into read-only overlay returned %v, want EROFS", err)
	}
	if err := UnmountAll(target); err != nil {
		t.Fatal(err)
	}

	p = parseOptions([]string{"lowerdir=" + filepath.Join(root, "missing") + ":" + lowers[0]})
	err = mountOverlayFS(target, p)
	if err == nil {
		UnmountAll(target)
		t.Fatal("overlay on a missing lower directory mounted")
	}
	if !strings.Contains(err.Error(), "missing") {
		t.Errorf("error %q does not name the missing directory", err)
	}
}

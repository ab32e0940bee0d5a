package archive

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/strata-containers/strata/archive/tartest"
	"github.com/strata-containers/strata/errdefs"
	"github.com/strata-containers/strata/internal/layercases"
)

// deepHost creates, below the sandbox, a directory whose absolute path is
// at least n bytes long, one mkdirat at a time from the parent's
// descriptor, and returns that path. It leaves the process's working
// directory there, so that tests can reach what lies below with relative
// paths under PATH_MAX.
func deepHost(t *testing.T, s *sandbox, n int) string {
	t.Helper()
	p := s.Path("snap-deep")
	if err := os.Mkdir(p, 0o755); err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Open(p, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	component := strings.Repeat("h", 250)
	for len(p) < n {
		if err := unix.Mkdirat(fd, component, 0o755); err != nil {
			t.Fatalf("mkdirat at depth %d: %v", len(p), err)
		}
		child, err := unix.Openat(fd, component, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		unix.Close(fd)
		if err != nil {
			t.Fatalf("openat at depth %d: %v", len(p), err)
		}
		fd, p = child, p+"/"+component
	}
	defer unix.Close(fd)
	if err := unix.Fchdir(fd); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestApplyDeepRoot applies a file 1,000 components deep into snapshot
// roots under a host path of over 3,000 bytes, so that no full path of the
// file fits in PATH_MAX, and then a layer whose whiteout removes the whole
// tree. Both modes must agree, the overlay upper must hold one whiteout,
// and the sandbox's removal at cleanup must remove the deep tree.
func TestApplyDeepRoot(t *testing.T) {
	requireRoot(t)
	s := newSandbox(t)
	defer s.Check(t)
	// t.Chdir restores the working directory when the test ends, before
	// the sandbox is removed.
	t.Chdir(s.Dir)
	host := deepHost(t, s, 3000)
	deep := layercases.DeepName
	layers := [][]byte{
		tartest.Tar(t, file(deep, "deep"), file("keep", "k")),
		tartest.Tar(t, whiteout("d")),
	}
	roots := map[string]string{}
	for _, name := range []string{"snap-native", "snap-upper0", "snap-upper1"} {
		// newRoot would make the root at the top of the sandbox.
		if err := os.Mkdir(name, 0o755); err != nil {
			t.Fatal(err)
		}
		setRootTimes(t, name)
		roots[name] = filepath.Join(host, name)
	}
	if n := len(roots["snap-native"]) + 1 + len(deep); n <= unix.PathMax {
		t.Fatalf("full path of the deep file is %d bytes, want more than PATH_MAX", n)
	}

	ctx := context.Background()
	apply := func(root string, layer []byte, opts ...ApplyOpt) {
		t.Helper()
		if _, err := Apply(ctx, root, bytes.NewReader(layer), opts...); err != nil {
			t.Fatalf("apply onto the deep root %s: %v", filepath.Base(root), err)
		}
	}
	apply(roots["snap-native"], layers[0])
	wantFile(t, "snap-native", deep, "deep")
	apply(roots["snap-upper0"], layers[0])
	wantFile(t, "snap-upper0", deep, "deep")

	apply(roots["snap-native"], layers[1])
	apply(roots["snap-upper1"], layers[1], WithOverlay([]string{roots["snap-upper0"]}))
	layercases.WantNames(t, "snap-native", "", "keep")
	layercases.WantNames(t, "snap-upper1", "", "d")
	if st, ok := lstat(t, "snap-upper1", "d"); !ok || !isWhiteout(&st) {
		t.Errorf("upper d: mode %o rdev %d, want a whiteout", st.Mode, st.Rdev)
	}
	// The lowers are relative to the deep working directory: their
	// absolute paths would not fit in the mount options.
	compareTrees(t, "snap-native", mountLayers(t, s, []string{"snap-upper0", "snap-upper1"}))
}

func setRootTimes(t *testing.T, p string) {
	t.Helper()
	ts := unix.NsecToTimespec(tartest.DefaultModTime.UnixNano())
	if err := unix.UtimesNano(p, []unix.Timespec{ts, ts}); err != nil {
		t.Fatal(err)
	}
}

// TestApplyLowerNearPathMax applies layers over a lower directory whose
// in-root path is 4,080 bytes: short enough for fstatat, too long to reach
// through a /proc/self/fd link in one path, as the xattr calls need. The
// middle layer makes the directory opaque, so overlay mode must copy it
// up with its xattrs and then read its opaque xattr to agree with native
// mode.
func TestApplyLowerNearPathMax(t *testing.T) {
	requireRoot(t)
	d := strings.Repeat(strings.Repeat("a", 200)+"/", 20) + strings.Repeat("b", 60)
	lowers := [][]byte{
		tartest.Tar(t, file(d+"/f", "f", xattr("user.lower", "1"))),
		tartest.Tar(t, opaque(d), file(d+"/g", "g")),
	}
	t.Run("hard link to hidden file", func(t *testing.T) {
		s := newSandbox(t)
		defer s.Check(t)
		ls := append(lowers, tartest.Tar(t, hardlink("h", d+"/f")))
		_, nerr := applyNative(t, s, ls, "snap-native")
		_, oerr := applyOverlay(t, s, ls)
		if !errors.Is(nerr, errdefs.ErrInvalidLayer) {
			t.Errorf("native apply: error %v, want %v", nerr, errdefs.ErrInvalidLayer)
		}
		if !errors.Is(oerr, errdefs.ErrInvalidLayer) {
			t.Errorf("overlay apply: error %v, want %v", oerr, errdefs.ErrInvalidLayer)
		}
	})
	t.Run("file in opaque dir", func(t *testing.T) {
		s := newSandbox(t)
		defer s.Check(t)
		// Relative to the sandbox, the paths in the tree fit in PATH_MAX.
		t.Chdir(s.Dir)
		ls := append(lowers, tartest.Tar(t, file(d+"/h", "h")))
		_, nerr := applyNative(t, s, ls, "snap-native")
		if nerr != nil {
			t.Fatalf("native apply: %v", nerr)
		}
		uppers, oerr := applyOverlay(t, s, ls)
		if oerr != nil {
			t.Fatalf("overlay apply: %v", oerr)
		}
		merged := filepath.Base(mountLayers(t, s, uppers))
		layercases.WantNames(t, "snap-native", d, "g", "h")
		layercases.WantNames(t, merged, d, "g", "h")
		compareTrees(t, "snap-native", merged)
	})
}

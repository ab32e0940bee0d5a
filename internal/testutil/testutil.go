// Package testutil holds helpers for tests that need root, real mounts or
// kernel features.
//
// Helpers skip the test with a reason when the machine cannot run it, so
// that `go test ./...` passes as an unprivileged user and runs everything
// as root.
package testutil

import (
	"bufio"
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// RequiresRoot skips the test unless it runs as root.
func RequiresRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("test needs root: mount(2) needs CAP_SYS_ADMIN")
	}
}

// RequiresOverlay skips the test unless it runs as root and the kernel lists
// overlay in /proc/filesystems.
func RequiresOverlay(t testing.TB) {
	t.Helper()
	RequiresRoot(t)
	data, err := os.ReadFile("/proc/filesystems")
	if err != nil {
		t.Skipf("test needs overlayfs: %v", err)
	}
	s := bufio.NewScanner(bytes.NewReader(data))
	for s.Scan() {
		if f := strings.Fields(s.Text()); len(f) > 0 && f[len(f)-1] == "overlay" {
			return
		}
	}
	t.Skip("test needs overlayfs, which /proc/filesystems does not list")
}

// TempDir returns a new directory for the test. On cleanup it unmounts
// everything mounted under the directory, deepest first, and then removes
// it, making directories of mode 0000 or 0500 writable on the way.
func TempDir(t testing.TB) string {
	t.Helper()
	// A short name keeps snapshot paths under the 255-byte limit that
	// fsconfig(2) puts on each overlay lower directory.
	dir, err := os.MkdirTemp("", "strata-"+sanitize(t.Name())+"-")
	if err != nil {
		t.Fatalf("create temp dir: %v", err)
	}
	t.Cleanup(func() {
		for _, m := range mountsUnder(t, dir) {
			if err := unix.Unmount(m, unix.MNT_DETACH); err != nil {
				t.Errorf("unmount leftover %s: %v", m, err)
			}
		}
		if err := RemoveAll(dir); err != nil {
			t.Errorf("remove temp dir: %v", err)
		}
	})
	return dir
}

// RemoveAll removes path and everything under it, adding owner permissions
// to directories that lack them.
func RemoveAll(path string) error {
	if err := os.RemoveAll(path); err == nil {
		return nil
	}
	_ = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if d != nil && d.IsDir() {
			_ = os.Chmod(p, 0o700)
		}
		if err != nil && d != nil && d.IsDir() {
			// The directory could not be read before the chmod, so walk
			// it again now.
			return RemoveAll(p)
		}
		return nil
	})
	return os.RemoveAll(path)
}

// mountsUnder returns the mount points at or under dir, deepest first.
func mountsUnder(t testing.TB, dir string) []string {
	t.Helper()
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Errorf("read mountinfo: %v", err)
		return nil
	}
	var points []string
	for line := range strings.SplitSeq(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		p := unescapeMountinfo(f[4])
		if p == dir || strings.HasPrefix(p, dir+"/") {
			points = append(points, p)
		}
	}
	// Later lines are mounted later, and may be stacked on earlier ones.
	slices.Reverse(points)
	return points
}

// unescapeMountinfo decodes the octal escapes (\040 for a space) that
// /proc/self/mountinfo uses in paths.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func sanitize(name string) string {
	if len(name) > 40 {
		name = name[len(name)-40:]
	}
	return strings.Map(func(r rune) rune {
		if r == '/' || r == ' ' || r == ':' {
			return '_'
		}
		return r
	}, name)
}

// RequiresProgram returns the path of the program name on PATH. It skips
// the test when the program is missing, or fails it when
// STRATA_REQUIRE_IMAGES=1, which CI sets after installing every test
// package.
func RequiresProgram(t testing.TB, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	if os.Getenv("STRATA_REQUIRE_IMAGES") == "1" {
		t.Fatalf("%s is not installed and STRATA_REQUIRE_IMAGES=1: %v", name, err)
	}
	t.Skipf("%s is not installed: %v", name, err)
	return ""
}

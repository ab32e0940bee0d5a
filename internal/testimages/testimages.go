// Package testimages gives tests the container images that
// scripts/build-images.sh builds with mmdebstrap, umoci, buildah and skopeo.
//
// Each function returns the path of one output under [Dir], running the
// script's stage for it first. The script skips a stage whose output is up to
// date, so only the first test run on a machine pays for a build. Builds need
// root: a test run by another user gets the images already built, and is
// skipped when they are missing. With STRATA_REQUIRE_IMAGES=1 (CI sets it) a
// missing image fails the test instead.
//
// The images:
//
//	busybox      one layer: busybox-static and its --install hard links
//	debian       four layers of Debian bookworm: mmdebstrap, apt-get install,
//	             umoci whiteouts and edge cases, buildah opaque directory
//	debian-zstd  debian with zstd-compressed layers
package testimages

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// Environment variables shared with scripts/build-images.sh and CI.
const (
	imagesEnv  = "STRATA_IMAGES"
	requireEnv = "STRATA_REQUIRE_IMAGES"
	defaultDir = "/var/tmp/strata-images"
	scriptPath = "scripts/build-images.sh"
)

// names are the images that scripts/build-images.sh builds.
var names = map[string]bool{"busybox": true, "debian": true, "debian-zstd": true}

// geteuid is replaced in tests to act as a user other than root.
var geteuid = os.Geteuid

var (
	mu     sync.Mutex
	builds = make(map[string]*build) // by output path
)

type build struct {
	once sync.Once
	// reason is empty when the output is ready, else why it is not.
	reason string
}

// Dir returns the directory that holds the images: $STRATA_IMAGES, or
// /var/tmp/strata-images when that is unset.
func Dir() string {
	if d := os.Getenv(imagesEnv); d != "" {
		return d
	}
	return defaultDir
}

// Path returns the OCI image layout of the named image, whose one tag is
// "latest".
func Path(t testing.TB, name string) string {
	t.Helper()
	checkName(t, name)
	return ensure(t, name, filepath.Join(Dir(), name))
}

// OCIArchive returns the named image as an oci-archive tar written by skopeo.
func OCIArchive(t testing.TB, name string) string {
	t.Helper()
	checkName(t, name)
	return ensure(t, "archive-"+name, filepath.Join(Dir(), name+".oci.tar"))
}

// DockerArchive returns the named image as a docker-archive tar written by
// skopeo, whose layers are uncompressed. debian-zstd has none, because a
// docker-archive cannot hold zstd layers and would repeat debian's.
func DockerArchive(t testing.TB, name string) string {
	t.Helper()
	checkName(t, name)
	if name == "debian-zstd" {
		t.Fatalf("testimages: no docker archive of debian-zstd; use DockerArchive(t, %q)", "debian")
	}
	return ensure(t, "archive-"+name, filepath.Join(Dir(), name+".docker.tar"))
}

func checkName(t testing.TB, name string) {
	t.Helper()
	if !names[name] {
		t.Fatalf("testimages: unknown image %q (want busybox, debian or debian-zstd)", name)
	}
}

// ensure runs the script's stage once per process for each output, then
// returns the output or ends the test with the reason it is missing.
func ensure(t testing.TB, stage, output string) string {
	t.Helper()
	mu.Lock()
	b, ok := builds[output]
	if !ok {
		b = &build{}
		builds[output] = b
	}
	mu.Unlock()

	b.once.Do(func() { b.reason = prepare(t, stage, output) })
	if b.reason == "" {
		return output
	}
	if os.Getenv(requireEnv) == "1" {
		t.Fatalf("testimages: %s (%s=1 makes this an error)", b.reason, requireEnv)
	}
	t.Skipf("testimages: %s", b.reason)
	return ""
}

// prepare returns why output is unavailable, or "" when it is ready.
func prepare(t testing.TB, stage, output string) string {
	if geteuid() != 0 {
		if _, err := os.Stat(output); err == nil {
			return ""
		}
		return fmt.Sprintf("%s is missing and building it needs root: run sudo %s %s",
			output, scriptPath, stage)
	}

	if err := runScript(t, stage); err != nil {
		return err.Error()
	}
	if _, err := os.Stat(output); err != nil {
		return fmt.Sprintf("%s %s finished without writing %s", scriptPath, stage, output)
	}
	return ""
}

// runScript runs the build script's stage while holding a lock on the
// images directory, so that parallel test binaries do not build at once.
func runScript(t testing.TB, stage string) error {
	root, err := repoRoot()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(Dir(), 0o755); err != nil {
		return fmt.Errorf("create images directory: %w", err)
	}
	unlock, err := lockFile(filepath.Join(Dir(), ".testimages.lock"))
	if err != nil {
		return err
	}
	defer unlock()

	t.Logf("testimages: running %s %s (the first build takes a minute or more)", scriptPath, stage)
	cmd := exec.Command("bash", filepath.Join(root, scriptPath), stage)
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("run %s %s: %w\n%s", scriptPath, stage, err, tail(out, 40))
	}
	return nil
}

// repoRoot walks up from the working directory, which go test sets to the
// package under test, to the directory with go.mod and the build script.
// A test binary run from elsewhere falls back to this file's source path.
func repoRoot() (string, error) {
	var starts []string
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if _, file, _, ok := runtime.Caller(0); ok {
		starts = append(starts, filepath.Dir(file))
	}
	for _, dir := range starts {
		for {
			_, errMod := os.Stat(filepath.Join(dir, "go.mod"))
			_, errScript := os.Stat(filepath.Join(dir, scriptPath))
			if errMod == nil && errScript == nil {
				return dir, nil
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	return "", errors.New("find repository root: no go.mod next to " + scriptPath +
		" above the working directory; run the tests inside the repository")
}

// tail returns the last n lines of out.
func tail(out []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

package testimages

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// recorder is a testing.TB that records Fatalf and Skipf instead of ending
// the real test, so that the skip and fail paths can be checked.
type recorder struct {
	testing.TB
	fatal, skip string
}

func (r *recorder) Helper() {}

func (r *recorder) Logf(string, ...any) {}

func (r *recorder) Fatalf(format string, args ...any) {
	r.fatal = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func (r *recorder) Skipf(format string, args ...any) {
	r.skip = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// record runs f with a recorder in its own goroutine, because Fatalf and
// Skipf end the goroutine that calls them.
func record(t *testing.T, f func(tb testing.TB)) *recorder {
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(r)
	}()
	<-done
	return r
}

func actAsUser(t *testing.T) {
	old := geteuid
	geteuid = func() int { return 1000 }
	t.Cleanup(func() { geteuid = old })
}

func TestPathBusybox(t *testing.T) {
	dir := Path(t, "busybox")
	for _, name := range []string{"oci-layout", "index.json"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("busybox layout: %v", err)
		}
	}
}

func TestArchivesBusybox(t *testing.T) {
	for _, path := range []string{OCIArchive(t, "busybox"), DockerArchive(t, "busybox")} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() == 0 {
			t.Errorf("%s is empty", path)
		}
	}
}

func TestUnknownNameFails(t *testing.T) {
	r := record(t, func(tb testing.TB) { Path(tb, "alpine") })
	if !strings.Contains(r.fatal, `unknown image "alpine"`) {
		t.Errorf("Fatalf message %q, want one naming the unknown image", r.fatal)
	}
}

func TestDockerArchiveZstdFails(t *testing.T) {
	r := record(t, func(tb testing.TB) { DockerArchive(tb, "debian-zstd") })
	if !strings.Contains(r.fatal, "no docker archive of debian-zstd") {
		t.Errorf("Fatalf message %q, want one saying there is no docker archive", r.fatal)
	}
}

func TestMissingImageAsUser(t *testing.T) {
	actAsUser(t)
	t.Setenv(imagesEnv, t.TempDir())

	t.Setenv(requireEnv, "")
	r := record(t, func(tb testing.TB) { Path(tb, "busybox") })
	if !strings.Contains(r.skip, "needs root") || r.fatal != "" {
		t.Errorf("without %s: skip %q, fatal %q; want a skip that says root is needed",
			requireEnv, r.skip, r.fatal)
	}

	t.Setenv(requireEnv, "1")
	r = record(t, func(tb testing.TB) { Path(tb, "busybox") })
	if !strings.Contains(r.fatal, "needs root") || r.skip != "" {
		t.Errorf("with %s=1: skip %q, fatal %q; want a failure that says root is needed",
			requireEnv, r.skip, r.fatal)
	}
}

func TestExistingImageAsUser(t *testing.T) {
	actAsUser(t)
	dir := t.TempDir()
	t.Setenv(imagesEnv, dir)
	if err := os.Mkdir(filepath.Join(dir, "debian"), 0o755); err != nil {
		t.Fatal(err)
	}

	r := record(t, func(tb testing.TB) {
		if got, want := Path(tb, "debian"), filepath.Join(dir, "debian"); got != want {
			t.Errorf("Path = %q, want %q", got, want)
		}
	})
	if r.skip != "" || r.fatal != "" {
		t.Errorf("skip %q, fatal %q; want the existing layout", r.skip, r.fatal)
	}
}

package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/strata-containers/strata/internal/fstree"
	"github.com/strata-containers/strata/internal/testimages"
	"github.com/strata-containers/strata/internal/testutil"
)

var strataBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "strata-e2e-bin-")
	if err != nil {
		panic(err)
	}
	strataBin = filepath.Join(dir, "strata")
	build := exec.Command("go", "build", "-o", strataBin, "../cmd/strata")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		panic("build strata: " + err.Error())
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// result is the outcome of one strata run.
type result struct {
	stdout, stderr string
	code           int
}

// strata runs the binary with args and returns what it printed.
func strata(t *testing.T, args ...string) result {
	t.Helper()
	cmd := exec.Command(strataBin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	res := result{stdout: out.String(), stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		res.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run strata %v: %v", args, err)
	}
	return res
}

// mustStrata runs strata and fails the test unless it exits 0.
func mustStrata(t *testing.T, args ...string) string {
	t.Helper()
	res := strata(t, args...)
	if res.code != 0 {
		t.Fatalf("strata %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), res.code, res.stdout, res.stderr)
	}
	return res.stdout
}

var chainIDLine = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// lastLine returns the last non-empty line of s.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// unpackAndMount imports src into a fresh store with the snapshotter,
// unpacks it, mounts it read-only and returns the mount point and the chain
// ID. The mount is removed when the test ends.
func unpackAndMount(t *testing.T, root, snapshotter, src, name string) (string, string) {
	t.Helper()
	global := []string{"--root", root, "--snapshotter", snapshotter}
	out := mustStrata(t, append(global, "import", "--name", name, src)...)
	if !strings.HasPrefix(out, name+" sha256:") {
		t.Fatalf("import printed %q, want a line starting %q", out, name+" sha256:")
	}
	chainID := lastLine(mustStrata(t, append(global, "unpack", name)...))
	if !chainIDLine.MatchString(chainID) {
		t.Fatalf("unpack printed %q as its last line, want a chain ID", chainID)
	}
	mnt := t.TempDir()
	mustStrata(t, append(global, "mount", name, mnt)...)
	t.Cleanup(func() {
		if res := strata(t, append(global, "umount", mnt)...); res.code != 0 {
			t.Errorf("umount %s: exit %d: %s", mnt, res.code, res.stderr)
		}
	})
	return mnt, chainID
}

// chrootRun runs argv inside root with chroot and returns its output.
func chrootRun(t *testing.T, root string, argv ...string) string {
	t.Helper()
	cmd := exec.Command("chroot", append([]string{root}, argv...)...)
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("chroot %s %v: %v\n%s", root, argv, err, out)
	}
	return string(out)
}

// walkTree returns the tree digest entries of root.
func walkTree(t *testing.T, root string) []fstree.Entry {
	t.Helper()
	entries, err := fstree.Walk(root)
	if err != nil {
		t.Fatalf("walk %s: %v", root, err)
	}
	return entries
}

// source is one form of a test image.
type source struct {
	name string
	path func(testing.TB, string) string
}

var sources = []source{
	{"layout", testimages.Path},
	{"oci-archive", testimages.OCIArchive},
	{"docker-archive", testimages.DockerArchive},
}

// TestUnpackRealImages unpacks each real image in each form with both
// snapshotters, and checks that the two trees are identical and that a
// shell runs inside.
func TestUnpackRealImages(t *testing.T) {
	testutil.RequiresRoot(t)
	cases := []struct {
		image   string
		sources []source
		check   func(t *testing.T, mnt string)
	}{
		{image: "busybox", sources: sources},
		{image: "debian", sources: sources, check: checkDebian},
		// skopeo writes docker archives uncompressed, so a zstd docker
		// archive would repeat the gzip one.
		{image: "debian-zstd", sources: sources[:2], check: checkDebian},
	}
	for _, tc := range cases {
		for _, src := range tc.sources {
			t.Run(tc.image+"/"+src.name, func(t *testing.T) {
				path := src.path(t, tc.image)
				trees := map[string][]fstree.Entry{}
				chains := map[string]string{}
				for _, sn := range []string{"overlayfs", "native"} {
					mnt, chainID := unpackAndMount(t, t.TempDir(), sn, path, "test/"+tc.image)
					if got := chrootRun(t, mnt, "/bin/sh", "-c", "echo ok"); got != "ok\n" {
						t.Errorf("%s: sh -c 'echo ok' printed %q, want %q", sn, got, "ok\n")
					}
					if tc.check != nil {
						tc.check(t, mnt)
					}
					trees[sn] = walkTree(t, mnt)
					chains[sn] = chainID
				}
				if chains["overlayfs"] != chains["native"] {
					t.Errorf("chain IDs differ: overlayfs %s, native %s", chains["overlayfs"], chains["native"])
				}
				if d := fstree.Diff(trees["native"], trees["overlayfs"]); d != "" {
					t.Errorf("overlayfs tree differs from native tree (-native +overlayfs):\n%s", d)
				}
			})
		}
	}
}

func checkDebian(t *testing.T, mnt string) {
	t.Helper()
	out := chrootRun(t, mnt, "dpkg", "-s", "base-files")
	if !strings.Contains(out, "Status: install ok installed") {
		t.Errorf("dpkg -s base-files printed no installed status:\n%s", out)
	}
}

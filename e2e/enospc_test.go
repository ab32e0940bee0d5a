package e2e

import (
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/strata-containers/strata/internal/testimages"
	"github.com/strata-containers/strata/internal/testutil"
)

var layerDigest = regexp.MustCompile(`layer sha256:[0-9a-f]{64}`)

// TestDiskFull runs import and unpack of debian on a tmpfs too small for
// them. Each must fail saying the disk is full, the unpack naming the
// layer, leave only committed snapshots and a healthy store, and succeed
// once the tmpfs is grown.
func TestDiskFull(t *testing.T) {
	testutil.RequiresRoot(t)
	src := testimages.Path(t, "debian")
	// The debian blobs take 66 MB; unpacked, overlayfs needs about 190 MB
	// and native about 700 MB.
	cases := []struct {
		snapshotter                string
		importSize, unpackSize, ok string
	}{
		{"overlayfs", "40m", "120m", "600m"},
		{"native", "40m", "300m", "1200m"},
	}
	for _, tc := range cases {
		t.Run(tc.snapshotter, func(t *testing.T) {
			root := t.TempDir()
			mountTmpfs(t, root, tc.importSize)
			g := []string{"--root", root, "--snapshotter", tc.snapshotter}

			res := strata(t, append(g, "import", "--name", "deb", src)...)
			if res.code != 1 {
				t.Fatalf("import on a %s tmpfs: exit %d, want 1: %s", tc.importSize, res.code, res.stderr)
			}
			wantDiskFull(t, "import", res.stderr)
			mustHealthy(t, g, "after the failed import")

			remountTmpfs(t, root, tc.unpackSize)
			mustStrata(t, append(g, "import", "--name", "deb", src)...)
			res = strata(t, append(g, "unpack", "deb")...)
			if res.code != 1 {
				t.Fatalf("unpack on a %s tmpfs: exit %d, want 1: %s", tc.unpackSize, res.code, res.stderr)
			}
			wantDiskFull(t, "unpack", res.stderr)
			if !layerDigest.MatchString(res.stderr) {
				t.Errorf("unpack error names no layer: %s", res.stderr)
			}
			snaps := listSnapshots(t, root, tc.snapshotter)
			if len(snaps) >= 4 {
				t.Errorf("%d snapshots after the failed unpack, want fewer than 4", len(snaps))
			}
			for _, s := range snaps {
				if s.Kind != "committed" {
					t.Errorf("snapshot %s is %s after the failed unpack, want committed only", s.Name, s.Kind)
				}
			}
			mustHealthy(t, g, "after the failed unpack")

			remountTmpfs(t, root, tc.ok)
			mustStrata(t, append(g, "unpack", "deb")...)
			checkTree(t, g, "deb", src)
		})
	}
}

func wantDiskFull(t *testing.T, verb, stderr string) {
	t.Helper()
	for _, want := range []string{"no space left on device", "the disk is full", "free space"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("%s error does not say %q: %s", verb, want, stderr)
		}
	}
	if n := strings.Count(strings.TrimSpace(stderr), "\n"); n != 0 {
		t.Errorf("%s error is %d lines, want one: %s", verb, n+1, stderr)
	}
}

func mountTmpfs(t *testing.T, dir, size string) {
	t.Helper()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs on %s: %v\n%s", dir, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("unmount tmpfs %s: %v\n%s", dir, err, out)
		}
	})
}

func remountTmpfs(t *testing.T, dir, size string) {
	t.Helper()
	if out, err := exec.Command("mount", "-o", "remount,size="+size, dir).CombinedOutput(); err != nil {
		t.Fatalf("grow tmpfs %s to %s: %v\n%s", dir, size, err, out)
	}
}

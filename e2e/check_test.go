package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strata-containers/strata/internal/testimages"
	"github.com/strata-containers/strata/internal/testutil"
)

// TestCheckFindsTruncatedFile truncates a file inside a committed snapshot,
// as a power loss leaves it, and expects check to report it, --repair to
// remove the damaged snapshots and the next unpack to restore the tree.
func TestCheckFindsTruncatedFile(t *testing.T) {
	testutil.RequiresRoot(t)
	src := testimages.Path(t, "debian")
	for _, sn := range []string{"overlayfs", "native"} {
		t.Run(sn, func(t *testing.T) {
			root := t.TempDir()
			g := []string{"--root", root, "--snapshotter", sn}
			mustStrata(t, append(g, "import", "--name", "deb", src)...)
			mustStrata(t, append(g, "unpack", "deb")...)
			mustHealthy(t, g, "after the unpack")

			// Snapshot 1 is the bottom layer, which holds /bin/bash in
			// both snapshotters.
			rel := filepath.Join("usr", "bin", "bash")
			victim := filepath.Join(root, "snapshots", sn, "snapshots", "1", "fs", rel)
			if err := os.Truncate(victim, 100); err != nil {
				t.Fatal(err)
			}

			rep, code := runCheck(t, g)
			if code != 1 {
				t.Errorf("check of a truncated file: exit %d, want 1", code)
			}
			found := false
			for _, p := range rep.Problems {
				if p.Kind == "corrupt-file" && p.Path == victim && strings.Contains(p.Detail, "size 100") {
					found = true
				}
			}
			if !found {
				t.Fatalf("check did not report %s as truncated: %+v", victim, rep.Problems)
			}

			rep, code = runCheck(t, g, "--repair")
			if code != 0 {
				t.Errorf("check --repair: exit %d, want 0: %+v", code, rep.Problems)
			}
			for _, p := range rep.Problems {
				if !p.Repaired {
					t.Errorf("problem not repaired: %+v", p)
				}
			}
			if snaps := listSnapshots(t, root, sn); len(snaps) != 0 {
				t.Errorf("after --repair: %d snapshots, want the damaged one and all above it gone", len(snaps))
			}
			mustHealthy(t, g, "after --repair")

			mustStrata(t, append(g, "unpack", "deb")...)
			checkTree(t, g, "deb", src)
			mustHealthy(t, g, "after the unpack that restored the tree")
		})
	}
}

// TestCheckKeepsMountedDamage damages the snapshot under a mount: --repair
// cannot remove it, labels it broken and exits 1, and once the mount is
// gone the next unpack extracts it again.
func TestCheckKeepsMountedDamage(t *testing.T) {
	testutil.RequiresRoot(t)
	src := testimages.Path(t, "busybox")
	root := t.TempDir()
	g := []string{"--root", root}
	mustStrata(t, append(g, "import", "--name", "bb", src)...)
	mnt := t.TempDir()
	mustStrata(t, append(g, "mount", "bb", mnt)...)

	victim := filepath.Join(root, "snapshots", "overlayfs", "snapshots", "1", "fs", "bin", "busybox")
	if err := os.Truncate(victim, 0); err != nil {
		t.Fatal(err)
	}
	rep, code := runCheck(t, g, "--repair")
	if code != 1 {
		t.Errorf("check --repair under a mount: exit %d, want 1: %+v", code, rep.Problems)
	}
	for _, p := range rep.Problems {
		if p.Repaired || !strings.Contains(p.Detail, "in use by mount:") {
			t.Errorf("problem %+v: want it unrepaired, naming the mount", p)
		}
	}
	mustStrata(t, append(g, "umount", mnt)...)
	mustStrata(t, append(g, "unpack", "bb")...)
	mustHealthy(t, g, "after the unpack that replaced the broken snapshot")
	checkTree(t, g, "bb", src)
}

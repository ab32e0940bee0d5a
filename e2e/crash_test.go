package e2e

import (
	"errors"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/strata-containers/strata/internal/testimages"
	"github.com/strata-containers/strata/internal/testutil"
)

var (
	hookBinOnce sync.Once
	hookBin     string
	hookBinErr  error
)

// hookBinary builds strata with the strata_testhooks tag, whose unpacker
// SIGKILLs itself at the point STRATA_TEST_KILL_AT names.
func hookBinary(t *testing.T) string {
	t.Helper()
	hookBinOnce.Do(func() {
		hookBin = filepath.Join(filepath.Dir(strataBin), "strata-testhooks")
		out, err := exec.Command("go", "build", "-tags", "strata_testhooks", "-o", hookBin,
			"../cmd/strata").CombinedOutput()
		if err != nil {
			hookBinErr = errors.New("build strata with test hooks: " + err.Error() + "\n" + string(out))
		}
	})
	if hookBinErr != nil {
		t.Fatal(hookBinErr)
	}
	return hookBin
}

// killedBySIGKILL reports whether err is the exit of a process that SIGKILL
// ended.
func killedBySIGKILL(err error) bool {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return false
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
}

// TestCrashAtHookPoints kills an unpack of debian at points inside the
// layer protocol. Each time, check (which does not recover) must report the
// leftovers, the next command must remove them, and the next unpack must
// produce the reference tree.
func TestCrashAtHookPoints(t *testing.T) {
	testutil.RequiresRoot(t)
	src := testimages.Path(t, "debian")
	bin := hookBinary(t)
	cases := []struct {
		snapshotter, at string
		// leftover is set when the kill leaves an extraction snapshot,
		// and maybe when it may or may not leave one.
		leftover, maybe bool
	}{
		// apply:N is the Nth progress report. With igzip there is one
		// each time igzip has read further into the blob, which it
		// reads 1 MiB at a time, so about 60 in Debian's 63 MB first
		// layer. The in-process decoder reports each 64 KiB read. Either
		// way 20 and 40 fall inside that layer.
		{"overlayfs", "prepared:1", true, false},
		{"overlayfs", "apply:20", true, false},
		{"overlayfs", "applied:4", true, false},
		// On overlayfs a layer's commit runs while the layer above is
		// prepared and applied, so the kill may leave that extraction.
		{"overlayfs", "committed:2", false, true},
		// The second layer is prepared, usually on the first layer's
		// extraction snapshot while it is committed: recovery removes
		// the child before its parent.
		{"overlayfs", "prepared:2", true, false},
		{"native", "apply:40", true, false},
		{"native", "applied:3", true, false},
		{"native", "committed:2", false, false},
	}
	for _, tc := range cases {
		t.Run(tc.snapshotter+"/"+tc.at, func(t *testing.T) {
			root := t.TempDir()
			g := []string{"--root", root, "--snapshotter", tc.snapshotter}
			mustStrata(t, append(g, "import", "--name", "deb", src)...)

			cmd := exec.Command(bin, append(g, "unpack", "deb")...)
			cmd.Env = append(os.Environ(), "STRATA_TEST_KILL_AT="+tc.at)
			out, err := cmd.CombinedOutput()
			if !killedBySIGKILL(err) {
				t.Fatalf("unpack with STRATA_TEST_KILL_AT=%s: %v, want SIGKILL\n%s", tc.at, err, out)
			}

			rep, code := runCheck(t, g)
			found := false
			for _, p := range rep.Problems {
				found = found || p.Kind == "leftover-extraction"
			}
			if found != tc.leftover && !tc.maybe {
				t.Errorf("check after the kill: leftover extraction reported %v, want %v: %+v",
					found, tc.leftover, rep.Problems)
			}
			if tc.leftover && code != 1 {
				t.Errorf("check with leftovers: exit %d, want 1", code)
			}

			// Any command recovers the root.
			mustStrata(t, append(g, "images")...)
			mustHealthy(t, g, "after the next command")

			res := strata(t, append(g, "unpack", "deb")...)
			if res.code != 0 {
				t.Fatalf("unpack after the kill: exit %d: %s", res.code, res.stderr)
			}
			checkTree(t, g, "deb", src)
		})
	}
}

// TestCrashAtRandomTimes kills imports and unpacks after a random delay,
// many times on one root, and checks after each that the next command
// leaves a healthy store, and at the end that the tree is right.
func TestCrashAtRandomTimes(t *testing.T) {
	testutil.RequiresRoot(t)
	src := testimages.Path(t, "debian")
	for _, sn := range []string{"overlayfs", "native"} {
		t.Run(sn, func(t *testing.T) {
			root := t.TempDir()
			g := []string{"--root", root, "--snapshotter", sn}
			rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
			imported := false
			for i := range 6 {
				verb := []string{"unpack", "deb"}
				if !imported {
					verb = []string{"import", "--name", "deb", src}
				}
				// An import of debian takes about half a second here, an
				// unpack a few seconds.
				delay := time.Duration(rng.IntN(1500)) * time.Millisecond
				if !imported {
					delay = time.Duration(rng.IntN(400)) * time.Millisecond
				}
				cmd := exec.Command(strataBin, append(g, verb...)...)
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				timer := time.AfterFunc(delay, func() { _ = cmd.Process.Signal(syscall.SIGKILL) })
				err := cmd.Wait()
				timer.Stop()
				killed := killedBySIGKILL(err)
				if err != nil && !killed {
					t.Fatalf("iteration %d: %s: %v", i, verb[0], err)
				}
				if verb[0] == "import" && !killed {
					imported = true
				}
				t.Logf("iteration %d: %s after %v: killed %v", i, verb[0], delay, killed)
				mustStrata(t, append(g, "images")...)
				mustHealthy(t, g, "after a killed "+verb[0])
			}
			if !imported {
				mustStrata(t, append(g, "import", "--name", "deb", src)...)
			}
			mustStrata(t, append(g, "unpack", "deb")...)
			checkTree(t, g, "deb", src)
			mustHealthy(t, g, "at the end")
		})
	}
}

package e2e

import (
	"bytes"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/strata-containers/strata/internal/testutil"
)

var appliedLine = regexp.MustCompile(`msg="layer applied" chainid=(sha256:[0-9a-f]{64})`)

// TestConcurrentUnpacks starts six strata processes at once on one root:
// three unpack debian, two an image of its bottom three layers and one an
// image of its bottom two layers. All must succeed, every chain must be
// extracted by exactly one of them, and every tree must be right.
func TestConcurrentUnpacks(t *testing.T) {
	testutil.RequiresRoot(t)
	full, three, two := debianImages(t)
	images := map[string]string{"deb4": full, "deb3": three, "deb2": two}
	runs := []string{"deb4", "deb3", "deb2", "deb4", "deb3", "deb4"}

	for _, sn := range []string{"overlayfs", "native"} {
		t.Run(sn, func(t *testing.T) {
			root := t.TempDir()
			g := []string{"--root", root, "--snapshotter", sn}
			for name, src := range images {
				mustStrata(t, append(g, "import", "--name", name, src)...)
			}

			type proc struct {
				cmd            *exec.Cmd
				stdout, stderr bytes.Buffer
			}
			procs := make([]*proc, len(runs))
			for i, name := range runs {
				p := &proc{cmd: exec.Command(strataBin, append(g, "--log-level", "debug", "unpack", name)...)}
				p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
				if err := p.cmd.Start(); err != nil {
					t.Fatal(err)
				}
				procs[i] = p
			}
			applied := map[string]int{}
			tops := map[string]string{}
			for i, p := range procs {
				err := p.cmd.Wait()
				if err != nil {
					t.Errorf("unpack %s (process %d): %v\n%s", runs[i], i, err, p.stderr.String())
					continue
				}
				noRaceErrors(t, p.stderr.String())
				for _, m := range appliedLine.FindAllStringSubmatch(p.stderr.String(), -1) {
					applied[m[1]]++
				}
				top := lastLine(p.stdout.String())
				if prev, ok := tops[runs[i]]; ok && prev != top {
					t.Errorf("unpacks of %s printed %s and %s", runs[i], prev, top)
				}
				tops[runs[i]] = top
			}
			if len(applied) != 4 {
				t.Errorf("%d chains applied, want 4: %v", len(applied), applied)
			}
			for chain, n := range applied {
				if n != 1 {
					t.Errorf("chain %s applied %d times, want once", chain, n)
				}
			}
			snaps := listSnapshots(t, root, sn)
			if len(snaps) != 4 {
				t.Errorf("%d snapshots after the unpacks, want 4: %+v", len(snaps), snaps)
			}
			for _, s := range snaps {
				if s.Kind != "committed" {
					t.Errorf("snapshot %s is %s, want committed", s.Name, s.Kind)
				}
			}
			for name, src := range images {
				checkTree(t, g, name, src)
			}
			mustHealthy(t, g, "after concurrent unpacks")
			if t.Failed() {
				t.Log(fmt.Sprint("chains applied: ", applied, "; tops: ", strings.Join(mapValues(tops), " ")))
			}
		})
	}
}

func mapValues(m map[string]string) []string {
	var out []string
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	return out
}

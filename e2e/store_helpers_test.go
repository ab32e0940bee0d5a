package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/strata-containers/strata/internal/fstree"
	"github.com/strata-containers/strata/internal/testimages"
)

// prefixImage writes an OCI layout holding the image of the layout src cut
// down to its bottom n layers, so that it shares those chains with src.
func prefixImage(t *testing.T, src string, n int) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), filepath.Base(src)+"-"+string(rune('0'+n)))
	if out, err := exec.Command("cp", "-a", src, dir).CombinedOutput(); err != nil {
		t.Fatalf("copy layout: %v\n%s", err, out)
	}
	var index struct {
		SchemaVersion int              `json:"schemaVersion"`
		MediaType     string           `json:"mediaType,omitempty"`
		Manifests     []map[string]any `json:"manifests"`
	}
	readJSON(t, filepath.Join(dir, "index.json"), &index)
	mdesc := index.Manifests[0]
	var manifest map[string]any
	readJSON(t, blobPath(dir, mdesc["digest"].(string)), &manifest)
	manifest["layers"] = manifest["layers"].([]any)[:n]
	cdesc := manifest["config"].(map[string]any)
	var config map[string]any
	readJSON(t, blobPath(dir, cdesc["digest"].(string)), &config)
	rootfs := config["rootfs"].(map[string]any)
	rootfs["diff_ids"] = rootfs["diff_ids"].([]any)[:n]
	delete(config, "history")

	cdesc["digest"], cdesc["size"] = writeBlob(t, dir, config)
	mdesc["digest"], mdesc["size"] = writeBlob(t, dir, manifest)
	raw, err := json.Marshal(index)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "index.json"), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

var (
	refMu    sync.Mutex
	refTrees = map[string][]fstree.Entry{}
)

// referenceTree returns the tree of the image at the layout src, unpacked
// once per test binary by overlayfs into a root of its own.
// TestUnpackRealImages checks that native makes the same tree.
func referenceTree(t *testing.T, src string) []fstree.Entry {
	t.Helper()
	refMu.Lock()
	defer refMu.Unlock()
	if tree, ok := refTrees[src]; ok {
		return tree
	}
	root, err := os.MkdirTemp("", "strata-ref-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(root)
	g := []string{"--root", root}
	mustStrata(t, append(g, "import", "--name", "ref", src)...)
	mnt := filepath.Join(root, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	mustStrata(t, append(g, "mount", "ref", mnt)...)
	tree, werr := fstree.Walk(mnt)
	mustStrata(t, append(g, "umount", mnt)...)
	if werr != nil {
		t.Fatalf("walk reference tree: %v", werr)
	}
	refTrees[src] = tree
	return tree
}

// checkTree mounts the image name of the store at root and compares its
// tree with the reference tree of src.
func checkTree(t *testing.T, g []string, name, src string) {
	t.Helper()
	want := referenceTree(t, src)
	mnt := t.TempDir()
	mustStrata(t, append(g, "mount", name, mnt)...)
	got, err := fstree.Walk(mnt)
	mustStrata(t, append(g, "umount", mnt)...)
	if err != nil {
		t.Fatalf("walk %s: %v", name, err)
	}
	if d := fstree.Diff(want, got); d != "" {
		t.Errorf("tree of %s differs from the reference (-want +got):\n%s", name, d)
	}
}

// checkReport is the part of 'strata check --json' the tests read.
type checkReport struct {
	Healthy  bool `json:"healthy"`
	Files    int  `json:"files"`
	Problems []struct {
		Kind     string `json:"kind"`
		Snapshot string `json:"snapshot"`
		Path     string `json:"path"`
		Detail   string `json:"detail"`
		Repaired bool   `json:"repaired"`
	} `json:"problems"`
}

// runCheck runs 'strata check --json' with extra arguments and returns its
// report and exit status.
func runCheck(t *testing.T, g []string, extra ...string) (checkReport, int) {
	t.Helper()
	res := strata(t, append(append(g, "check", "--json"), extra...)...)
	var rep checkReport
	if err := json.Unmarshal([]byte(res.stdout), &rep); err != nil {
		t.Fatalf("decode check --json: %v\nstdout: %s\nstderr: %s", err, res.stdout, res.stderr)
	}
	if rep.Healthy != (res.code == 0) {
		t.Errorf("check: healthy %v but exit %d", rep.Healthy, res.code)
	}
	return rep, res.code
}

// mustHealthy fails the test unless 'strata check' finds no problem.
func mustHealthy(t *testing.T, g []string, when string) {
	t.Helper()
	rep, _ := runCheck(t, g)
	if !rep.Healthy || len(rep.Problems) > 0 {
		t.Errorf("check %s: healthy %v, problems %+v", when, rep.Healthy, rep.Problems)
	}
}

// debianImages returns the debian layout and two layouts cut down to its
// bottom three and two layers.
func debianImages(t *testing.T) (full, three, two string) {
	t.Helper()
	full = testimages.Path(t, "debian")
	return full, prefixImage(t, full, 3), prefixImage(t, full, 2)
}

// noRaceErrors fails the test when stderr shows a race surfacing to users.
func noRaceErrors(t *testing.T, stderr string) {
	t.Helper()
	for _, bad := range []string{"already exists", "does not exist", "not found"} {
		if strings.Contains(stderr, bad) {
			t.Errorf("stderr contains %q:\n%s", bad, stderr)
		}
	}
}

package e2e

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/strata-containers/strata/archive/compression"
	"github.com/strata-containers/strata/internal/testimages"
	"github.com/strata-containers/strata/internal/testutil"
)

// snapshotJSON is the part of 'strata snapshots --json' these tests read.
type snapshotJSON struct {
	Kind    string `json:"kind"`
	Name    string `json:"name"`
	Parent  string `json:"parent"`
	Created string `json:"created"`
	Updated string `json:"updated"`
}

func listSnapshots(t *testing.T, root, sn string) []snapshotJSON {
	t.Helper()
	var out []snapshotJSON
	raw := mustStrata(t, "--root", root, "--snapshotter", sn, "snapshots", "--json")
	if err := json.Unmarshal([]byte(raw), &out); err != nil {
		t.Fatalf("decode snapshots --json: %v\n%s", err, raw)
	}
	return out
}

// TestUnpackTwiceAppliesNothing checks that a second unpack finds every
// chain committed, prints the same chain ID and creates no snapshot.
func TestUnpackTwiceAppliesNothing(t *testing.T) {
	testutil.RequiresRoot(t)
	src := testimages.Path(t, "debian")
	for _, sn := range []string{"overlayfs", "native"} {
		t.Run(sn, func(t *testing.T) {
			root := t.TempDir()
			mustStrata(t, "--root", root, "--snapshotter", sn, "import", "--name", "deb", src)
			first := lastLine(mustStrata(t, "--root", root, "--snapshotter", sn, "unpack", "deb"))
			before := listSnapshots(t, root, sn)
			if len(before) != 4 {
				t.Fatalf("after the first unpack: %d snapshots, want 4 (one per layer): %+v", len(before), before)
			}

			res := strata(t, "--root", root, "--snapshotter", sn, "--log-level", "debug", "unpack", "deb")
			if res.code != 0 {
				t.Fatalf("second unpack: exit %d: %s", res.code, res.stderr)
			}
			if got := lastLine(res.stdout); got != first {
				t.Errorf("second unpack printed %s, want %s", got, first)
			}
			if n := strings.Count(res.stderr, "layer already unpacked"); n != 4 {
				t.Errorf("second unpack logged %d layers as already unpacked, want 4:\n%s", n, res.stderr)
			}
			if strings.Contains(res.stderr, "layer applied") {
				t.Errorf("second unpack applied a layer:\n%s", res.stderr)
			}
			if d := cmp.Diff(before, listSnapshots(t, root, sn)); d != "" {
				t.Errorf("second unpack changed the snapshots (-before +after):\n%s", d)
			}
		})
	}
}

// TestDiffIDMismatch corrupts the diff ID of the top Debian layer in its
// config. The unpack must fail naming the layer and both digests, commit
// the three good layers and nothing for the bad one, and leave the store
// able to unpack the correct image.
func TestDiffIDMismatch(t *testing.T) {
	testutil.RequiresRoot(t)
	good := testimages.Path(t, "debian")
	bad := filepath.Join(t.TempDir(), "bad")
	if out, err := exec.Command("cp", "-a", good, bad).CombinedOutput(); err != nil {
		t.Fatalf("copy layout: %v\n%s", err, out)
	}
	wrong := "sha256:" + strings.Repeat("ab", 32)
	layer, right := setDiffID(t, bad, 3, wrong)

	for _, sn := range []string{"overlayfs", "native"} {
		t.Run(sn, func(t *testing.T) {
			root := t.TempDir()
			g := []string{"--root", root, "--snapshotter", sn}
			mustStrata(t, append(g, "import", "--name", "bad", bad)...)
			res := strata(t, append(g, "unpack", "bad")...)
			if res.code == 0 {
				t.Fatalf("unpack of a corrupt image succeeded: %s", res.stdout)
			}
			for _, want := range []string{layer, right, wrong} {
				if !strings.Contains(res.stderr, want) {
					t.Errorf("error does not name %s:\n%s", want, res.stderr)
				}
			}
			if n := strings.Count(strings.TrimSpace(res.stderr), "\n"); n != 0 {
				t.Errorf("error is %d lines, want one:\n%s", n+1, res.stderr)
			}
			snaps := listSnapshots(t, root, sn)
			if len(snaps) != 3 {
				t.Errorf("after the failed unpack: %d snapshots, want the 3 good layers: %+v", len(snaps), snaps)
			}
			for _, s := range snaps {
				if s.Kind != "committed" {
					t.Errorf("snapshot %q is %s, want only committed snapshots left", s.Name, s.Kind)
				}
			}

			mnt, _ := unpackAndMount(t, root, sn, good, "good")
			if got := chrootRun(t, mnt, "/bin/sh", "-c", "echo ok"); got != "ok\n" {
				t.Errorf("good image after the failure: sh printed %q", got)
			}
		})
	}
}

// setDiffID rewrites the config of the single image in the OCI layout dir
// so that diff ID i is diffID, and returns the layer's blob digest and the
// diff ID it replaced.
func setDiffID(t *testing.T, dir string, i int, diffID string) (layer, old string) {
	t.Helper()
	var index struct {
		SchemaVersion int              `json:"schemaVersion"`
		MediaType     string           `json:"mediaType,omitempty"`
		Manifests     []map[string]any `json:"manifests"`
	}
	readJSON(t, filepath.Join(dir, "index.json"), &index)
	mdesc := index.Manifests[0]

	var manifest map[string]any
	readJSON(t, blobPath(dir, mdesc["digest"].(string)), &manifest)
	cdesc := manifest["config"].(map[string]any)
	layers := manifest["layers"].([]any)
	layer = layers[i].(map[string]any)["digest"].(string)

	var config map[string]any
	readJSON(t, blobPath(dir, cdesc["digest"].(string)), &config)
	diffIDs := config["rootfs"].(map[string]any)["diff_ids"].([]any)
	old = diffIDs[i].(string)
	diffIDs[i] = diffID

	cdig, csize := writeBlob(t, dir, config)
	cdesc["digest"], cdesc["size"] = cdig, csize
	mdig, msize := writeBlob(t, dir, manifest)
	mdesc["digest"], mdesc["size"] = mdig, msize

	raw, err := json.Marshal(index)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "index.json"), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	return layer, old
}

func blobPath(dir, dgst string) string {
	alg, hex, _ := strings.Cut(dgst, ":")
	return filepath.Join(dir, "blobs", alg, hex)
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("decode %s: %v", path, err)
	}
}

func writeBlob(t *testing.T, dir string, v any) (string, int64) {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	dgst := fmt.Sprintf("sha256:%x", sha256.Sum256(raw))
	if err := os.WriteFile(blobPath(dir, dgst), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	return dgst, int64(len(raw))
}

// TestCLIContract checks the parts of the command line that scripts rely
// on: global flags after the verb, STRATA_ROOT, JSON listings, a writable
// mount whose changes umount discards, and one-line errors.
func TestCLIContract(t *testing.T) {
	testutil.RequiresRoot(t)
	src := testimages.Path(t, "busybox")
	root := t.TempDir()

	// Global flags after the verb.
	out := mustStrata(t, "import", "--name", "bb:1", src, "--root", root)
	if !strings.HasPrefix(out, "bb:1 sha256:") {
		t.Errorf("import printed %q", out)
	}

	// STRATA_ROOT sets the root.
	cmd := exec.Command(strataBin, "images", "--json")
	cmd.Env = append(os.Environ(), "STRATA_ROOT="+root)
	raw, err := cmd.Output()
	if err != nil {
		t.Fatalf("images with STRATA_ROOT: %v", err)
	}
	var imgs []struct {
		Name     string `json:"name"`
		Digest   string `json:"digest"`
		Unpacked bool   `json:"unpacked"`
	}
	if err := json.Unmarshal(raw, &imgs); err != nil {
		t.Fatalf("decode images --json: %v\n%s", err, raw)
	}
	if len(imgs) != 1 || imgs[0].Name != "bb:1" || imgs[0].Unpacked {
		t.Errorf("images --json = %+v, want one image bb:1, not unpacked", imgs)
	}

	table := mustStrata(t, "--root", root, "images")
	if !strings.HasPrefix(table, "NAME") || !strings.Contains(table, "bb:1") {
		t.Errorf("images table:\n%s", table)
	}

	// A writable mount: a file written there is gone after umount.
	mnt := t.TempDir()
	mustStrata(t, "--root", root, "mount", "--rw", "bb:1", mnt)
	if err := os.WriteFile(filepath.Join(mnt, "scratch"), []byte("x"), 0o644); err != nil {
		t.Fatalf("write into --rw mount: %v", err)
	}
	mustStrata(t, "--root", root, "umount", mnt)
	if _, err := os.Stat(filepath.Join(mnt, "scratch")); !os.IsNotExist(err) {
		t.Errorf("after umount, scratch file: %v, want it gone", err)
	}
	// A read-only mount rejects writes.
	mustStrata(t, "--root", root, "mount", "bb:1", mnt)
	if err := os.WriteFile(filepath.Join(mnt, "scratch"), []byte("x"), 0o644); err == nil {
		t.Errorf("write into a read-only mount succeeded")
	}
	mustStrata(t, "--root", root, "umount", mnt)
	if snaps := listSnapshots(t, root, "overlayfs"); len(snaps) != 1 {
		t.Errorf("after umount: snapshots %+v, want only the committed layer", snaps)
	}

	// Errors: non-zero exit, one line naming the image and what to do.
	res := strata(t, "--root", root, "unpack", "no-such-image")
	if res.code == 0 {
		t.Fatalf("unpack of a missing image succeeded")
	}
	if !strings.Contains(res.stderr, "no-such-image") || !strings.Contains(res.stderr, "strata images") {
		t.Errorf("error for a missing image: %q", res.stderr)
	}
	if n := strings.Count(strings.TrimSpace(res.stderr), "\n"); n != 0 {
		t.Errorf("error is %d lines, want one: %q", n+1, res.stderr)
	}
	if res := strata(t, "--root", root, "frobnicate"); res.code != 2 {
		t.Errorf("unknown verb: exit %d, want 2", res.code)
	}
}

// TestUmountLeavesOtherMounts checks that umount undoes only what mount
// did: a tmpfs under the strata mount makes it fail as busy and survives,
// and a tmpfs that was at the target before survives the umount.
func TestUmountLeavesOtherMounts(t *testing.T) {
	testutil.RequiresRoot(t)
	src := testimages.Path(t, "busybox")
	root := t.TempDir()
	mustStrata(t, "--root", root, "import", "--name", "bb", src)

	target := testutil.TempDir(t)
	tmpfs := func(dir string) {
		t.Helper()
		if out, err := exec.Command("mount", "-t", "tmpfs", "strata-e2e", dir).CombinedOutput(); err != nil {
			t.Fatalf("mount tmpfs on %s: %v\n%s", dir, err, out)
		}
	}
	tmpfs(target)
	if err := os.WriteFile(filepath.Join(target, "mine"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}

	mustStrata(t, "--root", root, "mount", "bb", target)
	tmpfs(filepath.Join(target, "tmp"))
	res := strata(t, "--root", root, "umount", target)
	if res.code != 1 || !strings.Contains(res.stderr, "busy") {
		t.Errorf("umount with a file system below: exit %d, %q; want exit 1 saying busy", res.code, res.stderr)
	}
	if out, err := exec.Command("umount", filepath.Join(target, "tmp")).CombinedOutput(); err != nil {
		t.Fatalf("umount the tmpfs below the strata mount: %v\n%s", err, out)
	}

	mustStrata(t, "--root", root, "umount", target)
	if got, err := os.ReadFile(filepath.Join(target, "mine")); err != nil || string(got) != "mine" {
		t.Errorf("after umount, the tmpfs that was there first: read mine = %q, %v", got, err)
	}
	if out, err := exec.Command("umount", target).CombinedOutput(); err != nil {
		t.Errorf("unmount the first tmpfs: %v\n%s", err, out)
	}
}

// TestShortNames checks that an imported busybox:latest is found as
// busybox, and that a wrong --snapshotter is a usage error.
func TestShortNames(t *testing.T) {
	testutil.RequiresRoot(t)
	src := testimages.Path(t, "busybox")
	root := t.TempDir()
	mustStrata(t, "--root", root, "import", "--name", "busybox:latest", src)
	full := lastLine(mustStrata(t, "--root", root, "unpack", "busybox:latest"))
	if short := lastLine(mustStrata(t, "--root", root, "unpack", "busybox")); short != full {
		t.Errorf("unpack busybox printed %s, want %s as for busybox:latest", short, full)
	}
	if res := strata(t, "--root", root, "unpack", "busybox:1"); res.code != 1 ||
		!strings.Contains(res.stderr, "strata images") {
		t.Errorf("unpack of a missing tag: exit %d, %q", res.code, res.stderr)
	}
	if res := strata(t, "--root", root, "--snapshotter", "foo", "images"); res.code != 2 {
		t.Errorf("--snapshotter foo: exit %d, want 2: %s", res.code, res.stderr)
	}
}

// TestReadVerbsNeedStore checks that verbs that only read the store fail
// on a root that does not exist, instead of creating an empty store there.
func TestReadVerbsNeedStore(t *testing.T) {
	root := filepath.Join(t.TempDir(), "no", "such", "root")
	for _, verb := range [][]string{{"images"}, {"snapshots"}, {"check"}, {"unpack", "x"}} {
		res := strata(t, append([]string{"--root", root}, verb...)...)
		if res.code != 1 || !strings.Contains(res.stderr, "no strata store there") {
			t.Errorf("%v on a missing root: exit %d, %q", verb, res.code, res.stderr)
		}
	}
	if _, err := os.Stat(root); !os.IsNotExist(err) {
		t.Errorf("a read verb created the missing root: stat %v", err)
	}
}

// TestGzipDecoders unpacks the gzip Debian image with each decoder: in
// process with libisal, the default when it loads; igzip in a child
// process; and Go's with --gzip=internal. It checks from the debug log
// which decoder each used, and compares each tree with the reference
// tree. A --gzip that names no program is a usage error.
func TestGzipDecoders(t *testing.T) {
	testutil.RequiresRoot(t)
	igzip := testutil.RequiresProgram(t, "igzip")
	if err := compression.LoadGzipLibrary(); err != nil && os.Getenv("STRATA_REQUIRE_IMAGES") == "1" {
		t.Fatalf("STRATA_REQUIRE_IMAGES=1: %v", err)
	} else if err != nil {
		t.Skip(err)
	}
	src := testimages.Path(t, "debian")
	for _, tc := range []struct {
		flags   []string
		decoder string
	}{
		{nil, compression.GzipLibraryName},
		{[]string{"--gzip", "isal"}, compression.GzipLibraryName},
		{[]string{"--gzip", "internal"}, "in process"},
		{[]string{"--gzip", igzip}, igzip},
	} {
		t.Run(fmt.Sprint(tc.flags), func(t *testing.T) {
			g := append([]string{"--root", t.TempDir()}, tc.flags...)
			mustStrata(t, append(g, "import", "--name", "deb", src)...)
			res := strata(t, append(g, "--log-level", "debug", "unpack", "deb")...)
			if res.code != 0 {
				t.Fatalf("unpack: exit %d: %s", res.code, res.stderr)
			}
			want := fmt.Sprintf("decoder=%q", tc.decoder)
			if tc.decoder != "in process" {
				want = "decoder=" + tc.decoder
			}
			if n := strings.Count(res.stderr, want); n != 4 {
				t.Errorf("the log shows %s for %d layers, want 4:\n%s", want, n, res.stderr)
			}
			checkTree(t, g, "deb", src)
		})
	}
	res := strata(t, "--root", t.TempDir(), "--gzip", "/nonexistent/igzip", "images")
	if res.code != 2 || !strings.Contains(res.stderr, "/nonexistent/igzip") {
		t.Errorf("--gzip /nonexistent/igzip: exit %d, stderr %q; want exit 2 naming the program", res.code, res.stderr)
	}
}

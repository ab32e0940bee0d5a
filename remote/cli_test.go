package remote_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strata-containers/strata/internal/cli"
	"github.com/strata-containers/strata/internal/testutil"
)

// strata runs the command line in this process and returns its exit
// status, stdout and stderr.
func strata(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := cli.Main(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestCLIPullUnpackRunShell(t *testing.T) {
	testutil.RequiresOverlay(t)
	_, ref := pushed(t, "busybox")
	root := testutil.TempDir(t)

	code, stdout, stderr := strata(t, "--root", root, "pull", "--insecure", "--unpack", ref)
	if code != 0 {
		t.Fatalf("strata pull --unpack: exit %d\n%s", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], ref+" sha256:") || !strings.HasPrefix(lines[1], "sha256:") {
		t.Errorf("stdout = %q, want the name and digest, then the chain ID", stdout)
	}
	for _, want := range []string{"layer 1/1 sha256:", "downloaded", "unpacked"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr %q does not contain %q", stderr, want)
		}
	}

	target := filepath.Join(root, "mnt")
	if err := os.Mkdir(target, 0o755); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := strata(t, "--root", root, "mount", ref, target); code != 0 {
		t.Fatalf("strata mount: exit %d\n%s", code, stderr)
	}
	defer strata(t, "--root", root, "umount", target)
	out, err := exec.Command("chroot", target, "/bin/sh", "-c", "echo hello from $(basename $0)").CombinedOutput()
	if err != nil {
		t.Fatalf("run a shell in the pulled image: %v\n%s", err, out)
	}
	if got := strings.TrimSpace(string(out)); got != "hello from sh" {
		t.Errorf("shell printed %q, want %q", got, "hello from sh")
	}
}

func TestCLIPullThenUnpack(t *testing.T) {
	_, ref := pushed(t, "busybox")
	root := testutil.TempDir(t)
	global := []string{"--root", root, "--snapshotter", "native"}

	code, stdout, stderr := strata(t, append(global, "pull", "--insecure", ref)...)
	if code != 0 {
		t.Fatalf("strata pull: exit %d\n%s", code, stderr)
	}
	if !strings.HasPrefix(stdout, ref+" sha256:") {
		t.Errorf("stdout = %q, want the name and digest", stdout)
	}
	if code, _, stderr := strata(t, append(global, "unpack", ref)...); code != 0 {
		t.Fatalf("strata unpack after pull: exit %d\n%s", code, stderr)
	}
}

func TestCLIPullNeverLogsCredentials(t *testing.T) {
	ca, ref := authRegistry(t)
	t.Setenv("HOME", t.TempDir())
	for _, password := range []string{testPassword, "wrong-" + testPassword} {
		root := testutil.TempDir(t)
		code, stdout, stderr := strata(t, "--root", root, "--log-level", "debug", "pull",
			"--ca-file", ca.CertFile, "--creds", testUser+":"+password, ref)
		if wantOK := password == testPassword; (code == 0) != wantOK {
			t.Errorf("pull with password %q: exit %d\n%s", password, code, stderr)
		}
		if strings.Contains(stdout+stderr, password) {
			t.Errorf("output contains the password %q:\n%s%s", password, stdout, stderr)
		}
	}
	code, _, stderr := strata(t, "pull", "--creds", "no-colon", ref)
	if code != 2 || strings.Contains(stderr, "no-colon") {
		t.Errorf("--creds without a colon: exit %d, stderr %q; want 2 without the value", code, stderr)
	}
}

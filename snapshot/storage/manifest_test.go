package storage

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/strata-containers/strata/snapshot"
)

func TestManifestFindsTruncatedFile(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	tree := filepath.Join(dir, "fs")
	files := map[string]string{
		"etc/passwd":       "root:x:0:0::/root:/bin/sh\n",
		"bin/odd\nname":    "binary\x00data",
		"empty":            "",
		"usr/lib/libc.so6": strings.Repeat("x", 3<<20),
	}
	for name, data := range files {
		p := filepath.Join(tree, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Link(filepath.Join(tree, "etc/passwd"), filepath.Join(tree, "etc/passwd-")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("passwd", filepath.Join(tree, "etc/link")); err != nil {
		t.Fatal(err)
	}

	usage, err := Seal(ctx, dir, true)
	if err != nil {
		t.Fatal(err)
	}
	if usage == (snapshot.Usage{}) {
		t.Errorf("Seal returned zero usage")
	}
	n, bad, err := VerifyManifest(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if n != 5 || len(bad) != 0 {
		t.Errorf("verify intact tree: %d files, problems %q; want 5 files, none", n, bad)
	}

	if err := os.Truncate(filepath.Join(tree, "usr/lib/libc.so6"), 4096); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tree, "etc/passwd"), []byte("root:x:0:0::/root:/bin/bash\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(tree, "bin/odd\nname")); err != nil {
		t.Fatal(err)
	}
	_, bad, err = VerifyManifest(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, b := range bad {
		p, _, _ := strings.Cut(b, ": ")
		paths = append(paths, p)
	}
	// etc/passwd- is a hard link of etc/passwd: one problem names both.
	want := []string{"bin/odd\nname", "etc/passwd", "usr/lib/libc.so6"}
	if diff := cmp.Diff(want, paths); diff != "" {
		t.Errorf("files reported (-want +got):\n%s\nproblems: %q", diff, bad)
	}
	if len(bad) == 3 && !strings.HasSuffix(bad[1], " (also etc/passwd-)") {
		t.Errorf("problem for etc/passwd = %q, want it to name its hard link etc/passwd-", bad[1])
	}
}

func TestCheckReportsMissingDirectory(t *testing.T) {
	ms, dirs := newTestStore(t)
	ctx := context.Background()
	var ids []string
	err := update(t, ms, func(ctx context.Context) error {
		for _, key := range []string{"a", "b"} {
			s, err := CreateSnapshot(ctx, snapshot.KindActive, key, "")
			if err != nil {
				return err
			}
			ids = append(ids, s.ID)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dirs.Path(ids[0]), "fs"), 0o700); err != nil {
		t.Fatal(err)
	}
	res, err := Check(ctx, ms, dirs)
	if err != nil {
		t.Fatal(err)
	}
	want := []Problem{{Kind: ProblemMissingDirectory, Key: "b", Path: dirs.Path(ids[1]),
		Detail: "the snapshot's fs directory does not exist"}}
	if diff := cmp.Diff(want, res.Problems); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
}

// TestManifestChecksums checks that a new manifest lists CRC-32C
// checksums under the version 2 header, and that a version 1 manifest,
// which lists sha256 digests, is still verified by sha256.
func TestManifestChecksums(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	tree := filepath.Join(dir, "fs")
	if err := os.MkdirAll(tree, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tree, "f"), []byte("123456789"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Seal(ctx, dir, false); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, ManifestName))
	if err != nil {
		t.Fatal(err)
	}
	// 0xe3069283 is CRC-32C's published check value: the checksum of
	// "123456789".
	want := "strata-manifest v2\n9 crc32c:e3069283 \"f\"\n"
	if string(data) != want {
		t.Errorf("manifest is %q, want %q", data, want)
	}

	v1 := "strata-manifest v1\n9 sha256:15e2b0d3c33891ebb0f1ef609ec419420c20e320ce94c65fbc8c3312448eb225 \"f\"\n"
	if err := os.WriteFile(filepath.Join(dir, ManifestName), []byte(v1), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, bad, err := VerifyManifest(ctx, dir); err != nil || len(bad) != 0 {
		t.Fatalf("verify the version 1 manifest of an intact tree: problems %q, error %v", bad, err)
	}
	if err := os.WriteFile(filepath.Join(tree, "f"), []byte("123456780"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, bad, err := VerifyManifest(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(bad) != 1 || !strings.Contains(bad[0], "want sha256:15e2b0d3") {
		t.Errorf("verify a changed file against the version 1 manifest: problems %q, want one sha256 mismatch", bad)
	}

	unknown := "strata-manifest v2\n9 md5:25f9e794323b453885f5181f1b624d0b \"f\"\n"
	if err := os.WriteFile(filepath.Join(dir, ManifestName), []byte(unknown), 0o644); err != nil {
		t.Fatal(err)
	}
	_, bad, err = VerifyManifest(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(bad) != 1 || !strings.Contains(bad[0], "unknown checksum") {
		t.Errorf("verify against an md5 line: problems %q, want one unknown checksum", bad)
	}
}

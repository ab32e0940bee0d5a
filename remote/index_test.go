package remote_test

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-containers/strata/errdefs"
	"github.com/strata-containers/strata/internal/testimages"
	"github.com/strata-containers/strata/remote"
	"github.com/strata-containers/strata/remote/internal/registrytest"
)

// multiPlatformLayout copies busybox into a new OCI layout whose "latest"
// is an index of two manifests: busybox as linux/amd64, and the same layer
// under a config for linux/arm64. It returns the layout and the two
// manifest descriptors.
func multiPlatformLayout(t *testing.T) (string, map[string]ocispec.Descriptor) {
	t.Helper()
	src := testimages.Path(t, "busybox")
	dir := filepath.Join(t.TempDir(), "multi")
	if out, err := exec.Command("cp", "-a", src, dir).CombinedOutput(); err != nil {
		t.Fatalf("copy %s: %v\n%s", src, err, out)
	}
	amdDesc, m := layoutManifest(t, dir)

	var cfg map[string]any
	readJSON(t, blobPath(dir, m.Config.Digest), &cfg)
	cfg["architecture"] = "arm64"
	cfg["variant"] = "v8"
	m.Config = writeBlob(t, dir, m.Config.MediaType, cfg)
	m.MediaType = ocispec.MediaTypeImageManifest
	armDesc := writeBlob(t, dir, ocispec.MediaTypeImageManifest, m)

	amdDesc.Annotations = nil
	amdDesc.Platform = &ocispec.Platform{OS: "linux", Architecture: "amd64"}
	armDesc.Platform = &ocispec.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}
	index := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex,
		Manifests: []ocispec.Descriptor{amdDesc, armDesc}}
	index.SchemaVersion = 2
	idxDesc := writeBlob(t, dir, ocispec.MediaTypeImageIndex, index)
	idxDesc.Annotations = map[string]string{ocispec.AnnotationRefName: "latest"}
	top := ocispec.Index{Manifests: []ocispec.Descriptor{idxDesc}}
	top.SchemaVersion = 2
	data, err := json.Marshal(top)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "index.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, map[string]ocispec.Descriptor{"linux/amd64": amdDesc, "linux/arm64": armDesc}
}

// writeBlob stores v as JSON in the layout's blobs and describes it.
func writeBlob(t *testing.T, dir, mediaType string, v any) ocispec.Descriptor {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	d := digest.FromBytes(data)
	if err := os.WriteFile(blobPath(dir, d), data, 0o644); err != nil {
		t.Fatal(err)
	}
	return ocispec.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(data))}
}

func TestPullIndexPicksPlatform(t *testing.T) {
	registrytest.Requires(t)
	layout, manifests := multiPlatformLayout(t)
	reg := registrytest.Start(t)
	ref := reg.Host + "/x/multi:1"
	registrytest.Push(t, "oci:"+layout+":latest", ref, "--all")

	for _, tc := range []struct {
		name     string
		platform *ocispec.Platform
		want     string
	}{
		{"host", nil, "linux/amd64"},
		{"arm64", &ocispec.Platform{OS: "linux", Architecture: "arm64"}, "linux/arm64"},
		{"amd64", &ocispec.Platform{OS: "linux", Architecture: "amd64"}, "linux/amd64"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.platform == nil && !strings.HasSuffix(hostPlatform(), "amd64") {
				t.Skipf("host is %s, and the index offers amd64 and arm64", hostPlatform())
			}
			var opts []remote.Opt
			if tc.platform != nil {
				opts = append(opts, remote.WithPlatform(*tc.platform))
			}
			s := openStore(t)
			res := mustPull(t, s, ref, opts...)
			if want := manifests[tc.want].Digest; res.Image.Target.Digest != want {
				t.Errorf("pulled manifest %s, want the %s one %s", res.Image.Target.Digest, tc.want, want)
			}
			if got := res.Resolved.Config.Architecture; !strings.HasSuffix(tc.want, got) {
				t.Errorf("config architecture %q, want that of %s", got, tc.want)
			}
		})
	}

	t.Run("missing platform", func(t *testing.T) {
		s := openStore(t)
		_, err := pull(t, s, ref, remote.WithPlatform(ocispec.Platform{OS: "linux", Architecture: "s390x"}))
		if !errors.Is(err, errdefs.ErrNotFound) {
			t.Fatalf("pull for s390x: error %v, want ErrNotFound", err)
		}
		for _, p := range []string{"linux/s390x", "linux/amd64", "linux/arm64/v8"} {
			if !strings.Contains(err.Error(), p) {
				t.Errorf("error %q does not name %s", err, p)
			}
		}
	})
}

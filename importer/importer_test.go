package importer

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-containers/strata/content"
	"github.com/strata-containers/strata/content/local"
	"github.com/strata-containers/strata/errdefs"
	"github.com/strata-containers/strata/image"
	"github.com/strata-containers/strata/oci"
)

type stores struct {
	cs *local.Store
	is *image.Store
}

func newStores(t *testing.T) stores {
	t.Helper()
	root := t.TempDir()
	cs, err := local.New(filepath.Join(root, "content"))
	if err != nil {
		t.Fatal(err)
	}
	is, err := image.NewStore(filepath.Join(root, "metadata.db"))
	if err != nil {
		t.Fatal(err)
	}
	return stores{cs, is}
}

func (s stores) importOne(t *testing.T, path string, opts ...Opt) image.Image {
	t.Helper()
	imgs, err := Import(context.Background(), s.cs, s.is, path, opts...)
	if err != nil {
		t.Fatalf("Import(%s): %v", path, err)
	}
	if len(imgs) != 1 {
		t.Fatalf("Import(%s) returned %d images, want 1: %v", path, len(imgs), imgs)
	}
	return imgs[0]
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// skopeo runs skopeo with /var/lib hidden behind a private tmpfs when
// running as root, because skopeo writes a blob cache under
// /var/lib/containers that nothing here should leave behind.
func skopeo(t *testing.T, args ...string) {
	t.Helper()
	args = append([]string{"--insecure-policy", "--tmpdir", t.TempDir()}, args...)
	if os.Geteuid() != 0 {
		run(t, "skopeo", args...)
		return
	}
	run(t, "unshare", append([]string{"--mount", "--propagation", "private", "sh", "-c",
		`mount -t tmpfs none /var/lib && exec skopeo "$@"`, "sh"}, args...)...)
}

// buildImages makes a one-layer image with umoci and converts it with
// skopeo. It returns the layout directory, the OCI archive and the docker
// archive.
func buildImages(t *testing.T) (dir, ociTar, dockerTar string) {
	t.Helper()
	for _, tool := range []string{"umoci", "skopeo", "unshare"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed: %v", tool, err)
		}
	}
	if os.Geteuid() != 0 {
		t.Skip("umoci unpack and the private mount for skopeo need root")
	}
	tmp := t.TempDir()
	dir = filepath.Join(tmp, "layout")
	bundle := filepath.Join(tmp, "bundle")
	run(t, "umoci", "init", "--layout", dir)
	run(t, "umoci", "new", "--image", dir+":latest")
	run(t, "umoci", "unpack", "--image", dir+":latest", bundle)
	if err := os.WriteFile(filepath.Join(bundle, "rootfs", "hello"), []byte("hello strata\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, "umoci", "repack", "--image", dir+":latest", bundle)

	ociTar = filepath.Join(tmp, "app.oci.tar")
	dockerTar = filepath.Join(tmp, "d.tar")
	skopeo(t, "copy", "oci:"+dir+":latest", "oci-archive:"+ociTar)
	skopeo(t, "copy", "oci:"+dir+":latest", "docker-archive:"+dockerTar+":example/img:1")
	return dir, ociTar, dockerTar
}

func TestImportRealImages(t *testing.T) {
	dir, ociTar, dockerTar := buildImages(t)
	ctx := context.Background()
	s := newStores(t)

	var idx ocispec.Index
	data, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &idx); err != nil {
		t.Fatal(err)
	}
	want := idx.Manifests[0].Digest

	fromDir := s.importOne(t, dir)
	fromTar := s.importOne(t, ociTar)
	fromDocker := s.importOne(t, dockerTar)

	for _, tc := range []struct {
		img       image.Image
		wantName  string
		sameAsDir bool
	}{
		{fromDir, "layout:latest", true},
		{fromTar, "app:latest", true},
		{fromDocker, "docker.io/example/img:1", false},
	} {
		if tc.img.Name != tc.wantName {
			t.Errorf("imported name = %q, want %q", tc.img.Name, tc.wantName)
		}
		if tc.sameAsDir && tc.img.Target.Digest != want {
			t.Errorf("%s: manifest digest = %s, want the layout's %s", tc.img.Name, tc.img.Target.Digest, want)
		}
		if got, err := s.is.Get(ctx, tc.wantName); err != nil || got.Target.Digest != tc.img.Target.Digest {
			t.Errorf("image store has %s -> %v, %v", tc.wantName, got.Target.Digest, err)
		}
	}

	resolved := map[string]oci.Image{}
	for _, img := range []image.Image{fromDir, fromTar, fromDocker} {
		r, err := oci.Resolve(ctx, s.cs, img.Target)
		if err != nil {
			t.Fatalf("resolve %s: %v", img.Name, err)
		}
		resolved[img.Name] = r
		for _, l := range r.Layers {
			if _, err := s.cs.Info(ctx, l.Descriptor.Digest); err != nil {
				t.Errorf("%s: layer %s not stored: %v", img.Name, l.Descriptor.Digest, err)
			}
		}
	}
	dirImg, dockImg := resolved["layout:latest"], resolved["docker.io/example/img:1"]
	if diff := cmp.Diff(dirImg.DiffIDs(), dockImg.DiffIDs()); diff != "" {
		t.Errorf("docker archive diff IDs differ from the layout's (-layout +docker):\n%s", diff)
	}
	if len(dirImg.Layers) != 1 {
		t.Errorf("layout image has %d layers, want 1", len(dirImg.Layers))
	}
	// The docker layer is the uncompressed tar, so its digest is its diff ID.
	if l := dockImg.Layers[0]; l.Descriptor.Digest != l.DiffID || l.Descriptor.MediaType != ocispec.MediaTypeImageLayer {
		t.Errorf("docker layer = %s %s, want an uncompressed OCI layer with digest %s",
			l.Descriptor.MediaType, l.Descriptor.Digest, l.DiffID)
	}
	if dockImg.Config.Architecture == "" || dockImg.Manifest.Config.Digest != dirImg.Manifest.Config.Digest {
		t.Errorf("docker config %s differs from the layout's %s", dockImg.Manifest.Config.Digest, dirImg.Manifest.Config.Digest)
	}

	// A second import of the same docker archive makes the same manifest.
	again := newStores(t).importOne(t, dockerTar)
	if again.Target.Digest != fromDocker.Target.Digest {
		t.Errorf("second docker import digest = %s, want %s", again.Target.Digest, fromDocker.Target.Digest)
	}

	named := s.importOne(t, ociTar, WithName("example.com/renamed:2"))
	if named.Name != "example.com/renamed:2" || named.Target.Digest != want {
		t.Errorf("WithName import = %s %s, want example.com/renamed:2 %s", named.Name, named.Target.Digest, want)
	}
}

// blob is a JSON or raw blob for a hand-written layout.
type blob struct {
	desc ocispec.Descriptor
	data []byte
}

func jsonBlob(t *testing.T, mt string, v any) blob {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return blob{ocispec.Descriptor{MediaType: mt, Digest: digest.FromBytes(data), Size: int64(len(data))}, data}
}

// platformImage returns the blobs of a one-layer image for arch, manifest
// last.
func platformImage(t *testing.T, arch string) []blob {
	layer := layerTar(t, map[string]string{"arch": arch})
	lb := blob{ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: digest.FromBytes(layer),
		Size: int64(len(layer))}, layer}
	cfg := jsonBlob(t, ocispec.MediaTypeImageConfig, ocispec.Image{
		Platform: ocispec.Platform{OS: "linux", Architecture: arch},
		RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{lb.desc.Digest}},
	})
	m := jsonBlob(t, ocispec.MediaTypeImageManifest, ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
		Config: cfg.desc, Layers: []ocispec.Descriptor{lb.desc},
	})
	m.desc.Platform = &ocispec.Platform{OS: "linux", Architecture: arch}
	return []blob{lb, cfg, m}
}

func layerTar(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, body := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(body))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// tarEntry is a file for writeTar; a non-empty link makes a symlink.
type tarEntry struct {
	name, link string
	data       []byte
}

func writeTar(t *testing.T, path string, gz bool, entries []tarEntry) {
	t.Helper()
	var buf bytes.Buffer
	var w = &buf
	tw := tar.NewWriter(w)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Mode: 0o644, Size: int64(len(e.data)), Typeflag: tar.TypeReg}
		if e.link != "" {
			hdr = &tar.Header{Name: e.name, Linkname: e.link, Typeflag: tar.TypeSymlink}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		tw.Write(e.data)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	out := buf.Bytes()
	if gz {
		var zb bytes.Buffer
		zw := gzip.NewWriter(&zb)
		zw.Write(out)
		zw.Close()
		out = zb.Bytes()
	}
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
}

// layoutEntries returns the files of an OCI layout holding blobs, with
// index.json first so that readers must cope with it before the blobs.
func layoutEntries(t *testing.T, index ocispec.Index, blobs []blob) []tarEntry {
	index.SchemaVersion = 2
	idx, err := json.Marshal(index)
	if err != nil {
		t.Fatal(err)
	}
	entries := []tarEntry{
		{name: "index.json", data: idx},
		{name: "oci-layout", data: []byte(`{"imageLayoutVersion":"1.0.0"}`)},
	}
	for _, b := range blobs {
		entries = append(entries, tarEntry{name: "blobs/sha256/" + b.desc.Digest.Encoded(), data: b.data})
	}
	return entries
}

func writeDir(t *testing.T, dir string, entries []tarEntry) {
	t.Helper()
	for _, e := range entries {
		p := filepath.Join(dir, filepath.FromSlash(e.name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, e.data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestImportMultiPlatform(t *testing.T) {
	ctx := context.Background()
	amd, arm := platformImage(t, "amd64"), platformImage(t, "arm64")
	all := append(append([]blob{}, amd...), arm...)
	nested := jsonBlob(t, ocispec.MediaTypeImageIndex, ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex,
		Manifests: []ocispec.Descriptor{arm[2].desc, amd[2].desc},
	})
	nested.desc.Annotations = map[string]string{AnnotationImageName: "example.com/multi:1"}

	host := oci.Host()
	var want, other []blob
	switch host.Architecture {
	case "amd64":
		want, other = amd, arm
	case "arm64":
		want, other = arm, amd
	default:
		t.Skipf("no test image for host %s", oci.FormatPlatform(host))
	}

	tests := []struct {
		name     string
		index    ocispec.Index
		blobs    []blob
		wantName string
	}{
		{"nested index", ocispec.Index{Manifests: []ocispec.Descriptor{nested.desc}},
			append(all, nested), "example.com/multi:1"},
		{"platforms in index.json", ocispec.Index{Manifests: []ocispec.Descriptor{arm[2].desc, amd[2].desc}},
			all, "multi:latest"},
	}
	for _, tc := range tests {
		for _, form := range []string{"dir", "tar", "tar.gz"} {
			t.Run(tc.name+"/"+form, func(t *testing.T) {
				s := newStores(t)
				entries := layoutEntries(t, tc.index, tc.blobs)
				path := filepath.Join(t.TempDir(), "multi")
				switch form {
				case "dir":
					writeDir(t, path, entries)
				case "tar":
					path += ".tar"
					writeTar(t, path, false, entries)
				case "tar.gz":
					path += ".tar.gz"
					writeTar(t, path, true, entries)
				}
				img := s.importOne(t, path)
				if img.Name != tc.wantName {
					t.Errorf("name = %q, want %q", img.Name, tc.wantName)
				}
				if img.Target.Digest != want[2].desc.Digest {
					t.Errorf("target = %s, want the %s manifest %s", img.Target.Digest, host.Architecture, want[2].desc.Digest)
				}
				if img.Target.Platform == nil || img.Target.Platform.Architecture != host.Architecture {
					t.Errorf("target platform = %v, want %s", img.Target.Platform, host.Architecture)
				}
				// Every reachable blob is ingested, the other platform's too.
				for _, b := range other {
					if _, err := s.cs.Info(ctx, b.desc.Digest); err != nil {
						t.Errorf("blob %s of the other platform not stored: %v", b.desc.Digest, err)
					}
				}
			})
		}
	}

	s := newStores(t)
	path := filepath.Join(t.TempDir(), "multi")
	writeDir(t, path, layoutEntries(t, tests[1].index, all))
	if _, err := Import(ctx, s.cs, s.is, path, WithPlatform(ocispec.Platform{OS: "linux", Architecture: "s390x"})); !errors.Is(err, errdefs.ErrNotFound) ||
		!strings.Contains(err.Error(), "linux/arm64, linux/amd64") {
		t.Errorf("import for s390x error = %v, want ErrNotFound listing the platforms", err)
	}
}

func TestImportDockerArchiveByHand(t *testing.T) {
	ctx := context.Background()
	base := layerTar(t, map[string]string{"a": "1"})
	empty := layerTar(t, nil)
	diffs := []digest.Digest{digest.FromBytes(base), digest.FromBytes(empty), digest.FromBytes(empty)}
	cfg := jsonBlob(t, oci.MediaTypeDockerConfig, ocispec.Image{
		Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"},
		RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: diffs},
	})
	manifest, _ := json.Marshal([]map[string]any{{
		"Config":   cfg.desc.Digest.Encoded() + ".json",
		"RepoTags": []string{"example/app:1", "example/app:latest"},
		// The same empty layer twice, once through a symlink, as docker
		// save writes repeated layers.
		"Layers": []string{"aaa/layer.tar", "bbb/layer.tar", "ccc/layer.tar"},
	}})
	entries := []tarEntry{
		{name: "manifest.json", data: manifest}, // before the layers, unlike docker save
		{name: "aaa/layer.tar", data: base},
		{name: "bbb/layer.tar", data: empty},
		{name: "ccc/layer.tar", link: "../bbb/layer.tar"},
		{name: cfg.desc.Digest.Encoded() + ".json", data: cfg.data},
	}
	for _, gz := range []bool{false, true} {
		s := newStores(t)
		path := filepath.Join(t.TempDir(), "save.tar")
		writeTar(t, path, gz, entries)
		imgs, err := Import(ctx, s.cs, s.is, path)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, img := range imgs {
			names = append(names, img.Name)
		}
		if diff := cmp.Diff([]string{"example/app:1", "example/app:latest"}, names); diff != "" {
			t.Errorf("names (-want +got):\n%s", diff)
		}
		r, err := oci.Resolve(ctx, s.cs, imgs[0].Target)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(diffs, r.DiffIDs()); diff != "" {
			t.Errorf("diff IDs (-want +got):\n%s", diff)
		}
		if r.Layers[2].Descriptor.Digest != r.Layers[1].Descriptor.Digest {
			t.Errorf("symlinked layer digest %s, want %s", r.Layers[2].Descriptor.Digest, r.Layers[1].Descriptor.Digest)
		}
	}

	// A layer whose bytes do not match its diff ID is rejected and not stored.
	bad := append([]tarEntry{}, entries...)
	bad[1].data = layerTar(t, map[string]string{"a": "2"})
	s := newStores(t)
	path := filepath.Join(t.TempDir(), "bad.tar")
	writeTar(t, path, false, bad)
	_, err := Import(ctx, s.cs, s.is, path)
	if !errors.Is(err, errdefs.ErrDigestMismatch) || !strings.Contains(err.Error(), diffs[0].String()) {
		t.Errorf("import of a corrupt layer error = %v, want ErrDigestMismatch naming %s", err, diffs[0])
	}
	if _, err := s.cs.Info(ctx, diffs[0]); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("corrupt layer stored: %v", err)
	}
	if list, _ := s.is.List(ctx); len(list) != 0 {
		t.Errorf("image records after a failed import: %v", list)
	}
}

func TestImportRejects(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	notTar := filepath.Join(dir, "x.tar")
	os.WriteFile(notTar, bytes.Repeat([]byte("not a tar "), 100), 0o644)
	noIndex := filepath.Join(dir, "y.tar")
	writeTar(t, noIndex, false, []tarEntry{{name: "hello", data: []byte("hi")}})
	emptyDir := t.TempDir()

	img := platformImage(t, "amd64")
	corrupt := layoutEntries(t, ocispec.Index{Manifests: []ocispec.Descriptor{img[2].desc}}, img)
	corrupt[2].data = []byte("tampered layer")
	corruptTar := filepath.Join(dir, "corrupt.tar")
	writeTar(t, corruptTar, false, corrupt)

	tests := []struct {
		name, path string
		want       error
		text       string
	}{
		{"not a tar", notTar, errdefs.ErrInvalidArgument, "not an OCI layout or docker archive"},
		{"no index", noIndex, errdefs.ErrInvalidArgument, "no index.json or manifest.json"},
		{"dir without oci-layout", emptyDir, errdefs.ErrInvalidArgument, "no oci-layout"},
		{"corrupt blob", corruptTar, errdefs.ErrDigestMismatch, img[0].desc.Digest.String()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStores(t)
			_, err := Import(ctx, s.cs, s.is, tc.path)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Import error = %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.path) || !strings.Contains(err.Error(), tc.text) {
				t.Errorf("error %q does not name the path and %q", err, tc.text)
			}
			var n int
			s.cs.Walk(ctx, func(i content.Info) error {
				if i.Digest == img[0].desc.Digest {
					n++
				}
				return nil
			})
			if n != 0 {
				t.Errorf("tampered blob stored under its claimed digest")
			}
		})
	}
}

func TestNaming(t *testing.T) {
	for in, want := range map[string]string{
		"/x/y/App.oci.tar": "app",
		"/x/busybox.tar":   "busybox",
		"/x/b.tar.gz":      "b",
		"/x/dir/":          "dir",
		"/x/my image.oci":  "my-image",
		"/x/.tar":          "tar",
		"/x/@@@":           "image",
	} {
		if got := baseName(in); got != want {
			t.Errorf("baseName(%q) = %q, want %q", in, got, want)
		}
	}
	for _, tc := range []struct {
		ann  map[string]string
		want string
	}{
		{map[string]string{AnnotationRefName: "latest"}, "base:latest"},
		{map[string]string{AnnotationRefName: "v1.2"}, "base:v1.2"},
		{map[string]string{AnnotationRefName: "example.com/a:1"}, "example.com/a:1"},
		{map[string]string{AnnotationRefName: "latest", AnnotationImageName: "docker.io/library/a:latest"},
			"docker.io/library/a:latest"},
		{nil, ""},
	} {
		if got := annotationName(tc.ann, "base"); got != tc.want {
			t.Errorf("annotationName(%v) = %q, want %q", tc.ann, got, tc.want)
		}
	}

	d1 := ocispec.Descriptor{Digest: digest.FromString("1")}
	d2 := ocispec.Descriptor{Digest: digest.FromString("2")}
	got, err := applyNames([]named{{desc: d1}, {desc: d2}, {names: []string{"x:1"}, desc: d1}}, "", "b")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, n := range got {
		names = append(names, n.names...)
	}
	wantNames := []string{"b@" + d1.Digest.String(), "b@" + d2.Digest.String(), "x:1"}
	if diff := cmp.Diff(wantNames, names); diff != "" {
		t.Errorf("applyNames (-want +got):\n%s", diff)
	}
	if _, err := applyNames([]named{{desc: d1}, {desc: d2}}, "over:1", "b"); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("override of two manifests error = %v, want ErrInvalidArgument", err)
	}
	if _, err := applyNames([]named{{names: []string{"a"}, desc: d1}, {names: []string{"a"}, desc: d2}}, "", "b"); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("one name for two manifests error = %v, want ErrInvalidArgument", err)
	}
}

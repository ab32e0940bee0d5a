package oci

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-containers/strata/content"
	"github.com/strata-containers/strata/content/local"
	"github.com/strata-containers/strata/errdefs"
)

func TestClassify(t *testing.T) {
	tests := []struct {
		mt   string
		want Kind
	}{
		{ocispec.MediaTypeImageIndex, KindIndex},
		{MediaTypeDockerManifestList, KindIndex},
		{ocispec.MediaTypeImageManifest, KindManifest},
		{MediaTypeDockerManifest, KindManifest},
		{ocispec.MediaTypeImageConfig, KindConfig},
		{MediaTypeDockerConfig, KindConfig},
		{ocispec.MediaTypeImageLayerGzip, KindLayer},
		{MediaTypeDockerLayerGzip, KindLayer},
		{ocispec.MediaTypeImageLayerZstd + "+encrypted", KindLayer},
		{MediaTypeDockerSchema1Signed, KindUnknown},
		{"application/json", KindUnknown},
	}
	for _, tc := range tests {
		if got := Classify(tc.mt); got != tc.want {
			t.Errorf("Classify(%q) = %s, want %s", tc.mt, got, tc.want)
		}
	}
}

func TestParseLayerMediaType(t *testing.T) {
	tests := []struct {
		mt   string
		want LayerFormat
	}{
		{ocispec.MediaTypeImageLayer, LayerFormat{}},
		{MediaTypeDockerLayer, LayerFormat{}},
		{ocispec.MediaTypeImageLayerGzip, LayerFormat{Compression: Gzip}},
		{MediaTypeDockerLayerGzip, LayerFormat{Compression: Gzip}},
		{ocispec.MediaTypeImageLayerZstd, LayerFormat{Compression: Zstd}},
		{MediaTypeDockerLayerForeign, LayerFormat{Compression: Gzip, NonDistributable: true}},
		{MediaTypeLayerNonDistributable, LayerFormat{NonDistributable: true}},
		{ocispec.MediaTypeImageLayerGzip + "+encrypted", LayerFormat{Compression: Gzip, Encrypted: true}},
	}
	for _, tc := range tests {
		got, err := ParseLayerMediaType(tc.mt)
		if err != nil {
			t.Errorf("ParseLayerMediaType(%q): %v", tc.mt, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("ParseLayerMediaType(%q) (-want +got):\n%s", tc.mt, diff)
		}
	}
	if _, err := ParseLayerMediaType("application/vnd.oci.image.layer.v1.tar+lz4"); !errors.Is(err, errdefs.ErrUnsupported) {
		t.Errorf("unknown layer type error = %v, want ErrUnsupported", err)
	}
}

func TestDecodeManifestRejects(t *testing.T) {
	cfg := `{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:` +
		strings.Repeat("a", 64) + `","size":2}`
	tests := []struct {
		name string
		doc  string
		want error
	}{
		{"schema 1", `{"schemaVersion":1,"name":"x","fsLayers":[]}`, errdefs.ErrUnsupported},
		{"schema 1 media type", `{"schemaVersion":2,"mediaType":"` + MediaTypeDockerSchema1Signed + `"}`,
			errdefs.ErrUnsupported},
		{"schema 3", `{"schemaVersion":3,"config":` + cfg + `}`, errdefs.ErrUnsupported},
		{"no schema", `{"config":` + cfg + `}`, errdefs.ErrInvalidArgument},
		{"index type", `{"schemaVersion":2,"mediaType":"` + ocispec.MediaTypeImageIndex + `","config":` + cfg + `}`,
			errdefs.ErrInvalidArgument},
		{"bad config digest", `{"schemaVersion":2,"config":{"digest":"sha256:zz","size":1}}`, errdefs.ErrInvalidArgument},
		{"not json", `{`, errdefs.ErrInvalidArgument},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeManifest([]byte(tc.doc))
			if !errors.Is(err, tc.want) {
				t.Errorf("DecodeManifest error = %v, want %v", err, tc.want)
			}
		})
	}
	_, err := DecodeManifest([]byte(`{"schemaVersion":1,"fsLayers":[]}`))
	if err == nil || !strings.Contains(err.Error(), "schema 1") {
		t.Errorf("schema 1 error %v does not say schema 1", err)
	}
}

func TestNormalize(t *testing.T) {
	tests := []struct{ in, want string }{
		{"linux/x86_64", "linux/amd64"},
		{"Linux/AMD64/v1", "linux/amd64"},
		{"linux/aarch64", "linux/arm64/v8"},
		{"linux/arm64", "linux/arm64/v8"},
		{"linux/arm", "linux/arm/v7"},
		{"linux/armhf", "linux/arm/v7"},
		{"linux/armel", "linux/arm/v6"},
		{"linux/i686", "linux/386"},
	}
	for _, tc := range tests {
		p, err := ParsePlatform(tc.in)
		if err != nil {
			t.Fatal(err)
		}
		if got := FormatPlatform(p); got != tc.want {
			t.Errorf("ParsePlatform(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
	for _, bad := range []string{"linux", "linux/", "a/b/c/d"} {
		if _, err := ParsePlatform(bad); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("ParsePlatform(%q) error = %v, want ErrInvalidArgument", bad, err)
		}
	}
}

func platformIndex(platforms ...string) ocispec.Index {
	var idx ocispec.Index
	for i, s := range platforms {
		p, _ := ParsePlatform(s)
		idx.Manifests = append(idx.Manifests, ocispec.Descriptor{
			MediaType: ocispec.MediaTypeImageManifest,
			Digest:    digest.FromString(s + string(rune('0'+i))),
			Size:      1,
			Platform:  &p,
		})
	}
	return idx
}

func TestSelectManifest(t *testing.T) {
	tests := []struct {
		name      string
		offered   []string
		want      string
		wantIndex int
	}{
		{"amd64", []string{"linux/arm64", "linux/amd64"}, "linux/amd64", 1},
		{"exact arm variant", []string{"linux/arm/v6", "linux/arm/v7"}, "linux/arm/v7", 1},
		{"older arm variant", []string{"linux/arm/v5", "linux/arm/v6"}, "linux/arm/v7", 1},
		{"aarch64 alias", []string{"linux/amd64", "linux/aarch64"}, "linux/arm64", 1},
		{"amd64 v2 host takes v1", []string{"linux/amd64", "linux/arm64"}, "linux/amd64/v2", 0},
		{"empty request is linux/amd64", []string{"linux/arm64", "linux/amd64"}, "", 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			idx := platformIndex(tc.offered...)
			var want ocispec.Platform
			if tc.want != "" {
				want, _ = ParsePlatform(tc.want)
			}
			got, err := SelectManifest(idx, want)
			if err != nil {
				t.Fatal(err)
			}
			if got.Digest != idx.Manifests[tc.wantIndex].Digest {
				t.Errorf("SelectManifest picked %s, want %s", FormatPlatform(*got.Platform), tc.offered[tc.wantIndex])
			}
		})
	}

	_, err := SelectManifest(platformIndex("linux/arm64", "windows/amd64"), ocispec.Platform{OS: "linux", Architecture: "amd64"})
	if !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("no match error = %v, want ErrNotFound", err)
	}
	for _, s := range []string{"linux/arm64", "windows/amd64", "linux/amd64"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not name %s", err, s)
		}
	}

	// v8 arm is not selected for a v7 host: it may use instructions v7 lacks.
	if _, err := SelectManifest(platformIndex("linux/arm/v8"), ocispec.Platform{OS: "linux", Architecture: "arm", Variant: "v7"}); err == nil {
		t.Error("SelectManifest picked arm/v8 for an arm/v7 host")
	}

	single := ocispec.Index{Manifests: []ocispec.Descriptor{{Digest: digest.FromString("x"), Size: 1}}}
	if got, err := SelectManifest(single, Host()); err != nil || got.Digest != single.Manifests[0].Digest {
		t.Errorf("single entry without platform: got %v, %v", got.Digest, err)
	}
}

// testStore is a content store with helpers to add JSON blobs.
type testStore struct {
	*local.Store
	t *testing.T
}

func newStore(t *testing.T) testStore {
	s, err := local.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return testStore{s, t}
}

func (s testStore) put(mt string, v any) ocispec.Descriptor {
	s.t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		s.t.Fatal(err)
	}
	return s.putBytes(mt, data)
}

func (s testStore) putBytes(mt string, data []byte) ocispec.Descriptor {
	s.t.Helper()
	desc := ocispec.Descriptor{MediaType: mt, Digest: digest.FromBytes(data), Size: int64(len(data))}
	if err := content.IngestBytes(context.Background(), s, "t-"+desc.Digest.String(), desc, data); err != nil {
		s.t.Fatal(err)
	}
	return desc
}

func (s testStore) image(arch string, layers int, diffIDs int) ocispec.Descriptor {
	s.t.Helper()
	cfg := ocispec.Image{
		Platform: ocispec.Platform{OS: "linux", Architecture: arch},
		RootFS:   ocispec.RootFS{Type: "layers"},
	}
	m := ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest}
	for i := range max(layers, diffIDs) {
		d := digest.FromString(arch + string(rune('a'+i)))
		if i < diffIDs {
			cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, d)
		}
		if i < layers {
			m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: d, Size: 10})
		}
	}
	m.Config = s.put(ocispec.MediaTypeImageConfig, cfg)
	return s.put(ocispec.MediaTypeImageManifest, m)
}

func TestResolveIndex(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	amd := s.image("amd64", 2, 2)
	arm := s.image("arm64", 1, 1)
	amd.Platform = &ocispec.Platform{OS: "linux", Architecture: "amd64"}
	arm.Platform = &ocispec.Platform{OS: "linux", Architecture: "arm64"}
	idx := s.put(ocispec.MediaTypeImageIndex, ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageIndex,
		Manifests: []ocispec.Descriptor{arm, amd},
	})

	img, err := Resolve(ctx, s, idx, WithPlatform(ocispec.Platform{OS: "linux", Architecture: "amd64"}))
	if err != nil {
		t.Fatal(err)
	}
	if img.Descriptor.Digest != amd.Digest {
		t.Errorf("Resolve picked %s, want the amd64 manifest %s", img.Descriptor.Digest, amd.Digest)
	}
	if img.Config.Architecture != "amd64" || len(img.Layers) != 2 {
		t.Errorf("Resolve returned config for %s with %d layers, want amd64 with 2", img.Config.Architecture, len(img.Layers))
	}
	for i, l := range img.Layers {
		if l.DiffID != img.Config.RootFS.DiffIDs[i] || l.Descriptor.Digest != img.Manifest.Layers[i].Digest {
			t.Errorf("layer %d pairs %s with %s", i, l.Descriptor.Digest, l.DiffID)
		}
	}

	img, err = Resolve(ctx, s, idx, WithPlatform(ocispec.Platform{OS: "linux", Architecture: "arm64"}))
	if err != nil {
		t.Fatal(err)
	}
	if img.Descriptor.Digest != arm.Digest {
		t.Errorf("Resolve for arm64 picked %s, want %s", img.Descriptor.Digest, arm.Digest)
	}

	// A descriptor without media type is sniffed.
	idx.MediaType = ""
	if _, err := Resolve(ctx, s, idx, WithPlatform(ocispec.Platform{OS: "linux", Architecture: "amd64"})); err != nil {
		t.Errorf("Resolve of an index without media type: %v", err)
	}

	_, err = Resolve(ctx, s, idx, WithPlatform(ocispec.Platform{OS: "linux", Architecture: "s390x"}))
	if !errors.Is(err, errdefs.ErrNotFound) || !strings.Contains(err.Error(), "linux/arm64, linux/amd64") {
		t.Errorf("Resolve for s390x error = %v, want ErrNotFound listing the platforms", err)
	}
}

func TestResolveDiffIDMismatch(t *testing.T) {
	s := newStore(t)
	desc := s.image("amd64", 2, 1)
	_, err := Resolve(context.Background(), s, desc)
	if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "2 layers but config") {
		t.Errorf("Resolve error = %v, want ErrInvalidArgument about 2 layers and 1 diff ID", err)
	}
}

func TestResolveEncrypted(t *testing.T) {
	s := newStore(t)
	cfg := s.put(ocispec.MediaTypeImageConfig, ocispec.Image{RootFS: ocispec.RootFS{
		Type: "layers", DiffIDs: []digest.Digest{digest.FromString("l")},
	}})
	m := s.put(ocispec.MediaTypeImageManifest, ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		Config:    cfg,
		Layers: []ocispec.Descriptor{{
			MediaType: ocispec.MediaTypeImageLayerGzip + "+encrypted", Digest: digest.FromString("e"), Size: 1,
		}},
	})
	if _, err := Resolve(context.Background(), s, m); !errors.Is(err, errdefs.ErrUnsupported) {
		t.Errorf("Resolve of an encrypted layer error = %v, want ErrUnsupported", err)
	}
}

func TestResolveSchema1(t *testing.T) {
	s := newStore(t)
	d := s.putBytes(MediaTypeDockerSchema1Signed, []byte(`{"schemaVersion":1,"fsLayers":[]}`))
	if _, err := Resolve(context.Background(), s, d); !errors.Is(err, errdefs.ErrUnsupported) {
		t.Errorf("Resolve of schema 1 error = %v, want ErrUnsupported", err)
	}
	d.MediaType = ""
	if _, err := Resolve(context.Background(), s, d); !errors.Is(err, errdefs.ErrUnsupported) {
		t.Errorf("Resolve of schema 1 without media type error = %v, want ErrUnsupported", err)
	}
}

func TestChildren(t *testing.T) {
	s := newStore(t)
	m := s.image("amd64", 2, 2)
	kids, err := Children(context.Background(), s, m)
	if err != nil {
		t.Fatal(err)
	}
	if len(kids) != 3 || kids[0].MediaType != ocispec.MediaTypeImageConfig {
		t.Errorf("Children of a manifest = %v, want the config then 2 layers", kids)
	}
}

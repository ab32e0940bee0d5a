package oci

import (
	"context"
	"encoding/json"
	"fmt"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-containers/strata/content"
	"github.com/strata-containers/strata/errdefs"
)

// probe holds the fields that tell the JSON documents apart.
type probe struct {
	SchemaVersion *int            `json:"schemaVersion"`
	MediaType     string          `json:"mediaType"`
	Manifests     json.RawMessage `json:"manifests"`
	Config        json.RawMessage `json:"config"`
	Layers        json.RawMessage `json:"layers"`
	FSLayers      json.RawMessage `json:"fsLayers"`
}

func decodeProbe(what string, data []byte) (probe, error) {
	var p probe
	if err := json.Unmarshal(data, &p); err != nil {
		return p, fmt.Errorf("decode %s: %w: %w", what, errdefs.ErrInvalidArgument, err)
	}
	if (p.SchemaVersion != nil && *p.SchemaVersion == 1) || p.FSLayers != nil || IsSchema1(p.MediaType) {
		return p, fmt.Errorf("decode %s: Docker schema 1 manifests are not supported; "+
			"convert the image to schema 2 or OCI, for example by pushing it again with a "+
			"current Docker: %w", what, errdefs.ErrUnsupported)
	}
	if p.SchemaVersion == nil {
		return p, fmt.Errorf("decode %s: missing schemaVersion: %w", what, errdefs.ErrInvalidArgument)
	}
	if *p.SchemaVersion != 2 {
		return p, fmt.Errorf("decode %s: schemaVersion %d, expected 2: %w",
			what, *p.SchemaVersion, errdefs.ErrUnsupported)
	}
	return p, nil
}

// SniffKind returns whether data is an index or a manifest, from its
// mediaType field or, when that is absent, from the fields it has. It is
// for descriptors that carry no media type.
func SniffKind(data []byte) (Kind, error) {
	p, err := decodeProbe("manifest or index", data)
	if err != nil {
		return KindUnknown, err
	}
	if k := Classify(p.MediaType); k == KindIndex || k == KindManifest {
		return k, nil
	}
	switch {
	case p.Manifests != nil && p.Config == nil && p.Layers == nil:
		return KindIndex, nil
	case p.Config != nil && p.Manifests == nil:
		return KindManifest, nil
	}
	return KindUnknown, fmt.Errorf("decode manifest or index: has neither manifests nor config: %w",
		errdefs.ErrInvalidArgument)
}

// DecodeManifest decodes and checks an OCI or Docker schema 2 image
// manifest.
func DecodeManifest(data []byte) (ocispec.Manifest, error) {
	p, err := decodeProbe("manifest", data)
	if err != nil {
		return ocispec.Manifest{}, err
	}
	if p.MediaType != "" && Classify(p.MediaType) != KindManifest {
		return ocispec.Manifest{}, fmt.Errorf("decode manifest: media type %q is not a manifest: %w",
			p.MediaType, errdefs.ErrInvalidArgument)
	}
	if p.Manifests != nil {
		return ocispec.Manifest{}, fmt.Errorf("decode manifest: has a manifests field, as an index does: %w",
			errdefs.ErrInvalidArgument)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return m, fmt.Errorf("decode manifest: %w: %w", errdefs.ErrInvalidArgument, err)
	}
	if err := ValidateDescriptor(m.Config); err != nil {
		return m, fmt.Errorf("decode manifest: config: %w", err)
	}
	for i, l := range m.Layers {
		if err := ValidateDescriptor(l); err != nil {
			return m, fmt.Errorf("decode manifest: layer %d: %w", i, err)
		}
	}
	return m, nil
}

// DecodeIndex decodes and checks an OCI image index or a Docker manifest
// list.
func DecodeIndex(data []byte) (ocispec.Index, error) {
	p, err := decodeProbe("index", data)
	if err != nil {
		return ocispec.Index{}, err
	}
	if p.MediaType != "" && Classify(p.MediaType) != KindIndex {
		return ocispec.Index{}, fmt.Errorf("decode index: media type %q is not an index: %w",
			p.MediaType, errdefs.ErrInvalidArgument)
	}
	if p.Config != nil || p.Layers != nil {
		return ocispec.Index{}, fmt.Errorf("decode index: has a config or layers field, as a manifest does: %w",
			errdefs.ErrInvalidArgument)
	}
	var idx ocispec.Index
	if err := json.Unmarshal(data, &idx); err != nil {
		return idx, fmt.Errorf("decode index: %w: %w", errdefs.ErrInvalidArgument, err)
	}
	for i, m := range idx.Manifests {
		if err := ValidateDescriptor(m); err != nil {
			return idx, fmt.Errorf("decode index: manifest %d: %w", i, err)
		}
	}
	return idx, nil
}

// DecodeConfig decodes and checks an image config. The root file system
// type must be "layers" and every diff ID a valid digest.
func DecodeConfig(data []byte) (ocispec.Image, error) {
	var img ocispec.Image
	if err := json.Unmarshal(data, &img); err != nil {
		return img, fmt.Errorf("decode image config: %w: %w", errdefs.ErrInvalidArgument, err)
	}
	if img.RootFS.Type != "layers" {
		return img, fmt.Errorf("decode image config: rootfs type %q, expected \"layers\": %w",
			img.RootFS.Type, errdefs.ErrInvalidArgument)
	}
	for i, d := range img.RootFS.DiffIDs {
		if err := d.Validate(); err != nil {
			return img, fmt.Errorf("decode image config: diff ID %d %q: %w: %w",
				i, d, errdefs.ErrInvalidArgument, err)
		}
	}
	return img, nil
}

// ValidateDescriptor checks that d has a valid digest and a size that is
// not negative.
func ValidateDescriptor(d ocispec.Descriptor) error {
	if err := d.Digest.Validate(); err != nil {
		return fmt.Errorf("invalid digest %q: %w: %w", d.Digest, errdefs.ErrInvalidArgument, err)
	}
	if d.Size < 0 {
		return fmt.Errorf("descriptor %s has negative size %d: %w", d.Digest, d.Size, errdefs.ErrInvalidArgument)
	}
	return nil
}

// ReadManifest reads and decodes the manifest desc from p.
func ReadManifest(ctx context.Context, p content.Provider, desc ocispec.Descriptor) (ocispec.Manifest, error) {
	data, err := content.ReadBlob(ctx, p, desc)
	if err != nil {
		return ocispec.Manifest{}, fmt.Errorf("read manifest %s: %w", desc.Digest, err)
	}
	m, err := DecodeManifest(data)
	if err != nil {
		return m, fmt.Errorf("read manifest %s: %w", desc.Digest, err)
	}
	return m, nil
}

// ReadIndex reads and decodes the index desc from p.
func ReadIndex(ctx context.Context, p content.Provider, desc ocispec.Descriptor) (ocispec.Index, error) {
	data, err := content.ReadBlob(ctx, p, desc)
	if err != nil {
		return ocispec.Index{}, fmt.Errorf("read index %s: %w", desc.Digest, err)
	}
	idx, err := DecodeIndex(data)
	if err != nil {
		return idx, fmt.Errorf("read index %s: %w", desc.Digest, err)
	}
	return idx, nil
}

// ReadConfig reads and decodes the image config desc from p.
func ReadConfig(ctx context.Context, p content.Provider, desc ocispec.Descriptor) (ocispec.Image, error) {
	data, err := content.ReadBlob(ctx, p, desc)
	if err != nil {
		return ocispec.Image{}, fmt.Errorf("read image config %s: %w", desc.Digest, err)
	}
	img, err := DecodeConfig(data)
	if err != nil {
		return img, fmt.Errorf("read image config %s: %w", desc.Digest, err)
	}
	return img, nil
}

package oci

import (
	"context"
	"fmt"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-containers/strata/content"
	"github.com/strata-containers/strata/errdefs"
)

// maxIndexDepth bounds how many nested indexes Resolve follows, so that a
// cycle of indexes cannot loop forever.
const maxIndexDepth = 8

// Image is an image manifest resolved for one platform, with its config
// and layers.
type Image struct {
	// Descriptor is the manifest's descriptor: the index entry that was
	// picked, or the descriptor passed to Resolve when it named a manifest.
	Descriptor ocispec.Descriptor
	Manifest   ocispec.Manifest
	Config     ocispec.Image
	// Layers pairs each layer of Manifest with its diff ID from Config,
	// bottom layer first.
	Layers []Layer
}

// Layer is one layer of an [Image].
type Layer struct {
	Descriptor ocispec.Descriptor
	// DiffID is the digest of the layer's uncompressed tar.
	DiffID digest.Digest
	Format LayerFormat
}

// DiffIDs returns the diff IDs of img's layers, bottom layer first.
func (img Image) DiffIDs() []digest.Digest {
	ids := make([]digest.Digest, len(img.Layers))
	for i, l := range img.Layers {
		ids[i] = l.DiffID
	}
	return ids
}

type resolveConfig struct {
	platform ocispec.Platform
}

// ResolveOpt configures [Resolve].
type ResolveOpt func(*resolveConfig)

// WithPlatform makes Resolve pick the manifest for p instead of the
// host's.
func WithPlatform(p ocispec.Platform) ResolveOpt {
	return func(c *resolveConfig) { c.platform = p }
}

// Resolve reads the image desc from p. When desc is an index, Resolve picks
// the entry for the host platform (see [SelectManifest] and [WithPlatform]),
// following nested indexes. It reads the manifest and its config and pairs
// each layer with its diff ID. A config whose diff ID count differs from
// the manifest's layer count is rejected with errdefs.ErrInvalidArgument.
// An unknown or encrypted layer media type is rejected with
// errdefs.ErrUnsupported.
// Layer blobs are not read.
func Resolve(ctx context.Context, p content.Provider, desc ocispec.Descriptor, opts ...ResolveOpt) (Image, error) {
	cfg := resolveConfig{platform: Host()}
	for _, o := range opts {
		o(&cfg)
	}
	mdesc, err := resolveManifest(ctx, p, desc, cfg.platform)
	if err != nil {
		return Image{}, fmt.Errorf("resolve %s: %w", desc.Digest, err)
	}
	img, err := readImage(ctx, p, mdesc)
	if err != nil {
		return Image{}, fmt.Errorf("resolve %s: %w", desc.Digest, err)
	}
	return img, nil
}

// ResolveManifest returns the descriptor of the manifest for platform that
// desc names: desc itself when it is a manifest, or the entry picked from
// it, and from any nested index, when it is an index.
func ResolveManifest(ctx context.Context, p content.Provider, desc ocispec.Descriptor,
	platform ocispec.Platform) (ocispec.Descriptor, error) {
	d, err := resolveManifest(ctx, p, desc, platform)
	if err != nil {
		return d, fmt.Errorf("resolve %s: %w", desc.Digest, err)
	}
	return d, nil
}

func resolveManifest(ctx context.Context, p content.Provider, desc ocispec.Descriptor,
	platform ocispec.Platform) (ocispec.Descriptor, error) {
	top := desc.Digest
	for range maxIndexDepth {
		kind, err := kindOf(ctx, p, desc)
		if err != nil {
			return desc, err
		}
		if kind == KindManifest {
			return desc, nil
		}
		idx, err := ReadIndex(ctx, p, desc)
		if err != nil {
			return desc, err
		}
		next, err := SelectManifest(idx, platform)
		if err != nil && desc.Digest != top {
			return desc, fmt.Errorf("nested index %s: %w", desc.Digest, err)
		}
		if err != nil {
			return desc, err
		}
		desc = next
	}
	return desc, fmt.Errorf("follow indexes: more than %d nested: %w", maxIndexDepth, errdefs.ErrLimit)
}

// kindOf returns whether desc is an index or a manifest, reading the blob
// when desc carries no media type.
func kindOf(ctx context.Context, p content.Provider, desc ocispec.Descriptor) (Kind, error) {
	if IsSchema1(desc.MediaType) {
		return KindUnknown, fmt.Errorf("read %s: Docker schema 1 manifests are not supported: %w",
			desc.Digest, errdefs.ErrUnsupported)
	}
	switch k := Classify(desc.MediaType); k {
	case KindIndex, KindManifest:
		return k, nil
	case KindUnknown:
		if desc.MediaType != "" {
			return k, fmt.Errorf("read %s: media type %q is not an index or manifest: %w",
				desc.Digest, desc.MediaType, errdefs.ErrUnsupported)
		}
	default:
		return k, fmt.Errorf("read %s: media type %q is a %s, not an index or manifest: %w",
			desc.Digest, desc.MediaType, k, errdefs.ErrInvalidArgument)
	}
	data, err := content.ReadBlob(ctx, p, desc)
	if err != nil {
		return KindUnknown, err
	}
	k, err := SniffKind(data)
	if err != nil {
		return k, fmt.Errorf("read %s: %w", desc.Digest, err)
	}
	return k, nil
}

func readImage(ctx context.Context, p content.Provider, desc ocispec.Descriptor) (Image, error) {
	m, err := ReadManifest(ctx, p, desc)
	if err != nil {
		return Image{}, err
	}
	if k := Classify(m.Config.MediaType); k != KindConfig {
		return Image{}, fmt.Errorf("manifest %s: config media type %q is not an image config: %w",
			desc.Digest, m.Config.MediaType, errdefs.ErrUnsupported)
	}
	cfg, err := ReadConfig(ctx, p, m.Config)
	if err != nil {
		return Image{}, fmt.Errorf("manifest %s: %w", desc.Digest, err)
	}
	if len(cfg.RootFS.DiffIDs) != len(m.Layers) {
		return Image{}, fmt.Errorf("manifest %s: %d layers but config %s has %d diff IDs: %w",
			desc.Digest, len(m.Layers), m.Config.Digest, len(cfg.RootFS.DiffIDs), errdefs.ErrInvalidArgument)
	}

	img := Image{Descriptor: desc, Manifest: m, Config: cfg, Layers: make([]Layer, len(m.Layers))}
	for i, l := range m.Layers {
		f, err := ParseLayerMediaType(l.MediaType)
		if err != nil {
			return Image{}, fmt.Errorf("manifest %s: layer %d %s: %w", desc.Digest, i, l.Digest, err)
		}
		if f.Encrypted {
			return Image{}, fmt.Errorf("manifest %s: layer %d %s: encrypted layers are not supported: %w",
				desc.Digest, i, l.Digest, errdefs.ErrUnsupported)
		}
		img.Layers[i] = Layer{Descriptor: l, DiffID: cfg.RootFS.DiffIDs[i], Format: f}
	}
	return img, nil
}

// Children returns the descriptors desc refers to: the entries of an index,
// or the config and layers of a manifest. Other blobs have none. Like
// [Resolve], it reads the blob to tell an index from a manifest when desc
// carries no media type.
func Children(ctx context.Context, p content.Provider, desc ocispec.Descriptor) ([]ocispec.Descriptor, error) {
	switch Classify(desc.MediaType) {
	case KindConfig, KindLayer:
		return nil, nil
	case KindUnknown:
		if desc.MediaType != "" && !IsSchema1(desc.MediaType) {
			return nil, nil
		}
	}
	kind, err := kindOf(ctx, p, desc)
	if err != nil {
		return nil, err
	}
	if kind == KindIndex {
		idx, err := ReadIndex(ctx, p, desc)
		if err != nil {
			return nil, err
		}
		return idx.Manifests, nil
	}
	m, err := ReadManifest(ctx, p, desc)
	if err != nil {
		return nil, err
	}
	return append([]ocispec.Descriptor{m.Config}, m.Layers...), nil
}

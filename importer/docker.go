package importer

import (
	"archive/tar"
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-containers/strata/content"
	"github.com/strata-containers/strata/errdefs"
	"github.com/strata-containers/strata/oci"
	"github.com/strata-containers/strata/oci/dockerarchive"
)

// dockerImage is one manifest.json entry being turned into an OCI manifest.
type dockerImage struct {
	entry  dockerarchive.Entry
	config ocispec.Descriptor
	image  ocispec.Image
	layers []ocispec.Descriptor
}

// importDocker builds an OCI manifest for each image in a docker archive's
// manifest.json, ingesting the configs, the layers and the manifests.
func importDocker(ctx context.Context, cs content.Store, file string, tc *tarContents) ([]named, error) {
	entries, err := dockerarchive.ParseManifest(tc.files[dockerarchive.ManifestFile])
	if err != nil {
		return nil, err
	}

	// pending maps a layer path outside blobs/ to the diff ID it must
	// match; those are read in a second pass.
	pending := map[string]digest.Digest{}
	imgs := make([]*dockerImage, len(entries))
	for i, e := range entries {
		img, err := tc.dockerConfig(ctx, cs, e)
		if err != nil {
			return nil, fmt.Errorf("image %d in %s: %w", i, dockerarchive.ManifestFile, err)
		}
		if err := tc.dockerLayers(ctx, cs, img, pending); err != nil {
			return nil, fmt.Errorf("image %d in %s: %w", i, dockerarchive.ManifestFile, err)
		}
		imgs[i] = img
	}
	if len(pending) > 0 {
		if err := ingestPending(ctx, cs, file, pending); err != nil {
			return nil, err
		}
	}

	var out []named
	for _, img := range imgs {
		desc, err := storeManifest(ctx, cs, img)
		if err != nil {
			return nil, err
		}
		out = append(out, named{names: img.entry.RepoTags, desc: desc})
	}
	return out, nil
}

// dockerConfig reads and ingests the config of e.
func (tc *tarContents) dockerConfig(ctx context.Context, cs content.Store, e dockerarchive.Entry) (*dockerImage, error) {
	p, err := tc.resolvePath(e.Config)
	if err != nil {
		return nil, err
	}
	var data []byte
	if d, ok := tc.blobs[p]; ok {
		data, err = content.ReadBlob(ctx, cs, ocispec.Descriptor{Digest: d, Size: tc.regular[p]})
		if err != nil {
			return nil, fmt.Errorf("config %s: %w", e.Config, err)
		}
	} else if data, ok = tc.files[p]; !ok {
		return nil, fmt.Errorf("config %s: not in the archive: %w", e.Config, errdefs.ErrNotFound)
	}

	cfg, err := oci.DecodeConfig(data)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", e.Config, err)
	}
	if len(cfg.RootFS.DiffIDs) != len(e.Layers) {
		return nil, fmt.Errorf("config %s has %d diff IDs for %d layers: %w",
			e.Config, len(cfg.RootFS.DiffIDs), len(e.Layers), errdefs.ErrInvalidArgument)
	}
	desc := ocispec.Descriptor{
		MediaType: ocispec.MediaTypeImageConfig,
		Digest:    digest.FromBytes(data),
		Size:      int64(len(data)),
	}
	if err := content.IngestBytes(ctx, cs, "import-"+desc.Digest.String(), desc, data); err != nil {
		return nil, fmt.Errorf("config %s: %w", e.Config, err)
	}
	return &dockerImage{entry: e, config: desc, image: cfg}, nil
}

// dockerLayers fills in img.layers. A layer under blobs/ is already stored
// and its path names its digest. Any other layer is an uncompressed tar,
// so its digest is its diff ID, and it is queued in pending for the second
// pass.
func (tc *tarContents) dockerLayers(ctx context.Context, cs content.Store, img *dockerImage,
	pending map[string]digest.Digest) error {
	for i, lp := range img.entry.Layers {
		diffID := img.image.RootFS.DiffIDs[i]
		p, err := tc.resolvePath(lp)
		if err != nil {
			return err
		}
		size, ok := tc.regular[p]
		if !ok {
			if src, ok := img.entry.LayerSources[diffID]; ok {
				img.layers = append(img.layers, src)
				continue
			}
			return fmt.Errorf("layer %s: not in the archive: %w", lp, errdefs.ErrNotFound)
		}

		if d, ok := tc.blobs[p]; ok {
			mt, err := blobLayerType(ctx, cs, ocispec.Descriptor{Digest: d, Size: size})
			if err != nil {
				return fmt.Errorf("layer %s: %w", lp, err)
			}
			img.layers = append(img.layers, ocispec.Descriptor{MediaType: mt, Digest: d, Size: size})
			continue
		}
		if prev, ok := pending[p]; ok && prev != diffID {
			return fmt.Errorf("layer %s: used for diff IDs %s and %s: %w", lp, prev, diffID, errdefs.ErrInvalidArgument)
		}
		pending[p] = diffID
		img.layers = append(img.layers, ocispec.Descriptor{
			MediaType: ocispec.MediaTypeImageLayer, Digest: diffID, Size: size,
		})
	}
	return nil
}

// blobLayerType returns the OCI layer media type for a stored layer blob,
// from the compression its first bytes show.
func blobLayerType(ctx context.Context, cs content.Store, desc ocispec.Descriptor) (string, error) {
	ra, err := cs.ReaderAt(ctx, desc)
	if err != nil {
		return "", err
	}
	defer ra.Close()
	magic := make([]byte, 4)
	n, _ := ra.ReadAt(magic, 0)
	switch detectCompression(magic[:n]) {
	case oci.Gzip:
		return ocispec.MediaTypeImageLayerGzip, nil
	case oci.Zstd:
		return ocispec.MediaTypeImageLayerZstd, nil
	}
	return ocispec.MediaTypeImageLayer, nil
}

func detectCompression(b []byte) oci.Compression {
	switch {
	case len(b) >= 2 && b[0] == 0x1f && b[1] == 0x8b:
		return oci.Gzip
	case len(b) >= 4 && b[0] == 0x28 && b[1] == 0xb5 && b[2] == 0x2f && b[3] == 0xfd:
		return oci.Zstd
	}
	return oci.Uncompressed
}

// ingestPending reads the tar again and ingests the layers in pending,
// each checked against its diff ID.
func ingestPending(ctx context.Context, cs content.Store, file string, pending map[string]digest.Digest) error {
	done := map[string]bool{}
	err := walkTar(file, func(hdr *tar.Header, name string, r io.Reader) error {
		diffID, ok := pending[name]
		if !ok || done[name] || !hdr.FileInfo().Mode().IsRegular() {
			return nil
		}
		br := bufio.NewReader(r)
		magic, _ := br.Peek(4)
		if c := detectCompression(magic); c != oci.Uncompressed {
			return fmt.Errorf("layer %s: %s-compressed layers outside blobs/ are not supported: %w",
				name, c, errdefs.ErrUnsupported)
		}
		desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: diffID, Size: hdr.Size}
		if err := ingest(ctx, cs, desc, br); err != nil {
			return fmt.Errorf("layer %s (diff ID %s): %w", name, diffID, err)
		}
		done[name] = true
		return nil
	})
	if err != nil {
		return err
	}
	for p := range pending {
		if !done[p] {
			return fmt.Errorf("layer %s: gone on the second read of the archive: %w", p, errdefs.ErrNotFound)
		}
	}
	return nil
}

// storeManifest writes the OCI manifest for img and returns its
// descriptor, with the platform from the config.
func storeManifest(ctx context.Context, cs content.Store, img *dockerImage) (ocispec.Descriptor, error) {
	m := ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    img.config,
		Layers:    img.layers,
	}
	if m.Layers == nil {
		m.Layers = []ocispec.Descriptor{}
	}
	data, err := json.Marshal(m)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("encode manifest: %w", err)
	}
	desc := ocispec.Descriptor{
		MediaType: ocispec.MediaTypeImageManifest,
		Digest:    digest.FromBytes(data),
		Size:      int64(len(data)),
	}
	if err := content.IngestBytes(ctx, cs, "import-"+desc.Digest.String(), desc, data); err != nil {
		return desc, fmt.Errorf("store manifest %s: %w", desc.Digest, err)
	}
	if img.image.OS != "" && img.image.Architecture != "" {
		desc.Platform = &ocispec.Platform{
			OS: img.image.OS, Architecture: img.image.Architecture, Variant: img.image.Variant,
		}
	}
	return desc, nil
}

package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/opencontainers/go-digest"

	"github.com/strata-containers/strata/errdefs"
	"github.com/strata-containers/strata/image"
	"github.com/strata-containers/strata/importer"
	"github.com/strata-containers/strata/oci"
	"github.com/strata-containers/strata/remote"
	"github.com/strata-containers/strata/unpack"
)

// Import imports every image in the OCI layout folder, OCI archive or
// docker save archive at path. A non-empty name replaces the names the
// source gives.
func (s *Store) Import(ctx context.Context, path, name string) ([]image.Image, error) {
	var opts []importer.Opt
	if name != "" {
		opts = append(opts, importer.WithName(name))
	}
	return importer.Import(ctx, s.content, s.images, path, opts...)
}

// Resolve returns the manifest, config and layers of the image name. A name
// not stored as typed is looked up again as a full registry reference.
func (s *Store) Resolve(ctx context.Context, name string) (oci.Image, error) {
	img, err := s.images.Get(ctx, name)
	if full := remote.NormalizeName(name); errors.Is(err, errdefs.ErrNotFound) && full != name {
		// A pulled image is stored under its full reference, and people
		// type the short one: alpine for docker.io/library/alpine:latest.
		if fullImg, ferr := s.images.Get(ctx, full); ferr == nil {
			img, err = fullImg, nil
		}
	}
	if err != nil {
		return oci.Image{}, err
	}
	resolved, err := oci.Resolve(ctx, s.content, img.Target)
	if err != nil {
		return oci.Image{}, fmt.Errorf("resolve image %s: %w", name, err)
	}
	return resolved, nil
}

// Unpack applies the layers of the image name onto the store's snapshotter
// and returns the chain ID of its top layer, the name of the committed
// snapshot that holds the image's root file system. Layers already unpacked
// are skipped.
func (s *Store) Unpack(ctx context.Context, name string, opts ...unpack.Opt) (digest.Digest, error) {
	resolved, err := s.Resolve(ctx, name)
	if err != nil {
		return "", fmt.Errorf("unpack %s: %w", name, err)
	}
	sn, err := s.Snapshotter(ctx)
	if err != nil {
		return "", fmt.Errorf("unpack %s: %w", name, err)
	}

	layers := make([]unpack.Layer, len(resolved.Layers))
	for i, l := range resolved.Layers {
		layers[i] = unpack.Layer{Blob: l.Descriptor, DiffID: l.DiffID}
	}
	opts = append([]unpack.Opt{unpack.WithLocker(s.locker)}, opts...)
	chainID, err := unpack.ApplyLayers(ctx, sn, unpack.NewApplier(s.content), layers, opts...)
	if err != nil {
		return "", fmt.Errorf("unpack %s: %w", name, err)
	}
	return chainID, nil
}

package store

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/strata-containers/strata/identity"
	"github.com/strata-containers/strata/snapshot"
)

// ImageSummary describes one stored image for listings.
type ImageSummary struct {
	Name      string        `json:"name"`
	Digest    digest.Digest `json:"digest"`
	MediaType string        `json:"mediaType"`
	// Size is the sum of the sizes of the manifest, config and layer blobs.
	Size   int64 `json:"size"`
	Layers int   `json:"layers"`
	// ChainID names the committed snapshot of the whole image.
	ChainID digest.Digest `json:"chainID"`
	// Unpacked reports whether that snapshot exists in the store's
	// snapshotter.
	Unpacked bool      `json:"unpacked"`
	Created  time.Time `json:"created"`
}

// ListImages returns a summary of every stored image, sorted by name.
func (s *Store) ListImages(ctx context.Context) ([]ImageSummary, error) {
	imgs, err := s.images.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	sn, err := s.Snapshotter(ctx)
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	out := make([]ImageSummary, 0, len(imgs))
	for _, img := range imgs {
		sum := ImageSummary{
			Name:      img.Name,
			Digest:    img.Target.Digest,
			MediaType: img.Target.MediaType,
			Created:   img.CreatedAt,
		}
		resolved, err := s.Resolve(ctx, img.Name)
		if err != nil {
			return nil, fmt.Errorf("list images: %w", err)
		}
		sum.Size = resolved.Descriptor.Size + resolved.Manifest.Config.Size
		diffIDs := make([]digest.Digest, len(resolved.Layers))
		for i, l := range resolved.Layers {
			sum.Size += l.Descriptor.Size
			diffIDs[i] = l.DiffID
		}
		sum.Layers = len(resolved.Layers)
		if len(diffIDs) > 0 {
			sum.ChainID = identity.ChainID(diffIDs)
			info, err := sn.Stat(ctx, sum.ChainID.String())
			sum.Unpacked = err == nil && info.Kind == snapshot.KindCommitted
		}
		out = append(out, sum)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// ListSnapshots returns the info of every snapshot in the store's
// snapshotter, sorted by name.
func (s *Store) ListSnapshots(ctx context.Context) ([]snapshot.Info, error) {
	sn, err := s.Snapshotter(ctx)
	if err != nil {
		return nil, fmt.Errorf("list snapshots: %w", err)
	}
	var out []snapshot.Info
	err = sn.Walk(ctx, func(_ context.Context, info snapshot.Info) error {
		out = append(out, info)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list snapshots: %w", err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

package importer

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-containers/strata/content"
	"github.com/strata-containers/strata/errdefs"
	"github.com/strata-containers/strata/log"
	"github.com/strata-containers/strata/oci"
	"github.com/strata-containers/strata/oci/layout"
)

// importDir copies every blob reachable from the layout dir's index.json.
func importDir(ctx context.Context, cs content.Store, dir string, cfg config) ([]named, error) {
	l, err := layout.OpenDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("not an OCI layout: no %s: %w", layout.LayoutFile, errdefs.ErrInvalidArgument)
	}
	if err != nil {
		return nil, err
	}
	defer l.Close()
	idx, err := l.Index()
	if err != nil {
		return nil, err
	}

	seen := map[digest.Digest]bool{}
	for _, m := range idx.Manifests {
		if err := copyTree(ctx, cs, l, m, seen); err != nil {
			return nil, err
		}
	}
	return pickImages(ctx, cs, idx, cfg, baseName(dir))
}

// copyTree ingests desc from the layout and then everything it refers to.
func copyTree(ctx context.Context, cs content.Store, l *layout.Dir, desc ocispec.Descriptor,
	seen map[digest.Digest]bool) error {
	if seen[desc.Digest] {
		return nil
	}
	seen[desc.Digest] = true

	f, err := l.OpenBlob(desc.Digest)
	if errors.Is(err, errdefs.ErrNotFound) && isForeign(desc) {
		log.G(ctx).Debug("foreign layer not in the layout", "digest", desc.Digest)
		return nil
	}
	if err != nil {
		return err
	}
	err = ingest(ctx, cs, desc, f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("copy blob %s: %w", desc.Digest, err)
	}

	kids, err := oci.Children(ctx, cs, desc)
	if err != nil {
		return err
	}
	for _, k := range kids {
		if err := copyTree(ctx, cs, l, k, seen); err != nil {
			return err
		}
	}
	return nil
}

func isForeign(desc ocispec.Descriptor) bool {
	f, err := oci.ParseLayerMediaType(desc.MediaType)
	return err == nil && f.NonDistributable
}

// pickImages turns the entries of a layout's index.json into images.
// Entries that share a name are platform variants of one image, and the
// one for cfg.platform is picked. An entry that is an index is resolved to
// the manifest for cfg.platform.
func pickImages(ctx context.Context, cs content.Store, idx ocispec.Index, cfg config, base string) ([]named, error) {
	var order []string
	groups := map[string][]ocispec.Descriptor{}
	for _, m := range idx.Manifests {
		name := annotationName(m.Annotations, base)
		if _, ok := groups[name]; !ok {
			order = append(order, name)
		}
		groups[name] = append(groups[name], m)
	}

	var out []named
	for _, name := range order {
		group := groups[name]
		if name == "" && len(group) > 1 && !anyPlatform(group) {
			// Unnamed entries without platforms are separate images.
			for _, d := range group {
				n, err := pickOne(ctx, cs, []ocispec.Descriptor{d}, "", cfg)
				if err != nil {
					return nil, err
				}
				out = append(out, n)
			}
			continue
		}
		n, err := pickOne(ctx, cs, group, name, cfg)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

func pickOne(ctx context.Context, cs content.Store, group []ocispec.Descriptor, name string, cfg config) (named, error) {
	d := group[0]
	if len(group) > 1 && anyPlatform(group) {
		var err error
		if d, err = oci.SelectManifest(ocispec.Index{Manifests: group}, cfg.platform); err != nil {
			return named{}, fmt.Errorf("image %q: %w", name, err)
		}
	} else if len(group) > 1 {
		log.G(ctx).Warn("index.json names several manifests alike; using the first",
			"name", name, "digest", d.Digest)
	}
	md, err := oci.ResolveManifest(ctx, cs, d, cfg.platform)
	if err != nil {
		return named{}, err
	}
	if md, err = manifestDescriptor(ctx, cs, md); err != nil {
		return named{}, err
	}
	// The annotations name the entry in index.json, not the manifest.
	md.Annotations = nil
	n := named{desc: md}
	if name != "" {
		n.names = []string{name}
	}
	return n, nil
}

func anyPlatform(ds []ocispec.Descriptor) bool {
	for _, d := range ds {
		if d.Platform != nil {
			return true
		}
	}
	return false
}

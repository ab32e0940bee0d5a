// Package importer copies images from files into a content store and
// records them in an image store.
//
// [Import] reads three kinds of source: an OCI image layout directory, an
// OCI layout in a tar (as "skopeo copy ... oci-archive:X" writes it) and a
// "docker save" tar, either tar optionally gzip-compressed. Every blob goes
// through the content store's writer, so each one is checked against its
// digest before it becomes visible.
//
// Each image record's target is the descriptor of one image manifest.
// When the source names an index, the manifest for the requested platform
// (the host's by default) is picked at import time, so the digest printed
// and stored is the one users compare with a registry's per-platform
// manifest digest. Every blob the index reaches is still ingested.
//
// Names come from, in order of precedence:
//
//  1. [WithName], which names the one image the source holds; it fails
//     when the source holds images with different manifests.
//  2. The index.json annotation io.containerd.image.name, a full name.
//  3. The annotation org.opencontainers.image.ref.name. A bare tag such as
//     "1.0" is joined to the base name of the source, so /tmp/app.oci.tar
//     with tag "1.0" becomes "app:1.0". Any other value, such as
//     "example.com/app:1.0", is used as the full name.
//  4. The RepoTags of a docker archive, as written in manifest.json.
//  5. For an image with none of these, "<base>:latest" when it is the
//     only unnamed image in the source, else "<base>@<manifest digest>".
//
// The base name is the file or directory name without .tar, .tar.gz,
// .tgz, .oci.tar or .oci, lower-cased, with characters other than
// a-z, 0-9, '.', '_' and '-' replaced by '-'.
package importer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-containers/strata/content"
	"github.com/strata-containers/strata/errdefs"
	"github.com/strata-containers/strata/image"
	"github.com/strata-containers/strata/log"
	"github.com/strata-containers/strata/oci"
)

// Annotations that name an image in an OCI layout's index.json.
const (
	AnnotationImageName = "io.containerd.image.name"
	AnnotationRefName   = ocispec.AnnotationRefName
)

type config struct {
	name     string
	platform ocispec.Platform
}

// Opt configures [Import].
type Opt func(*config)

// WithName names the imported image name, overriding every name in the
// source.
func WithName(name string) Opt {
	return func(c *config) { c.name = name }
}

// WithPlatform picks the manifest for p from indexes instead of the
// host's.
func WithPlatform(p ocispec.Platform) Opt {
	return func(c *config) { c.platform = p }
}

// named is an image found in a source: a manifest and the names it gets.
type named struct {
	names []string
	desc  ocispec.Descriptor
}

// Import reads the images in the file or directory path into cs, records
// them in is and returns the records, in the order the source lists them.
// See the package documentation for the formats read and the naming rules.
func Import(ctx context.Context, cs content.Store, is *image.Store, path string, opts ...Opt) ([]image.Image, error) {
	cfg := config{platform: oci.Host()}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.name != "" {
		if err := image.ValidateName(cfg.name); err != nil {
			return nil, fmt.Errorf("import %s: %w", path, err)
		}
	}
	imgs, err := importPath(ctx, cs, path, cfg)
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", path, err)
	}
	for _, n := range imgs {
		if err := checkImage(ctx, cs, n.desc); err != nil {
			return nil, fmt.Errorf("import %s: %w", path, err)
		}
	}
	imgs, err = applyNames(imgs, cfg.name, baseName(path))
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", path, err)
	}

	var out []image.Image
	for _, n := range imgs {
		for _, name := range n.names {
			stored, err := is.Put(ctx, image.Image{Name: name, Target: n.desc})
			if err != nil {
				return out, fmt.Errorf("import %s: %w", path, err)
			}
			log.G(ctx).Debug("import image", "name", name, "digest", n.desc.Digest, "path", path)
			out = append(out, stored)
		}
	}
	return out, nil
}

func importPath(ctx context.Context, cs content.Store, path string, cfg config) ([]named, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.IsDir() {
		return importDir(ctx, cs, path, cfg)
	}
	return importTar(ctx, cs, path, cfg)
}

// checkImage resolves desc in cs, so that an image whose config or layers
// are missing or inconsistent fails at import and not at unpack.
func checkImage(ctx context.Context, cs content.Store, desc ocispec.Descriptor) error {
	img, err := oci.Resolve(ctx, cs, desc)
	if err != nil {
		return err
	}
	for _, l := range img.Layers {
		_, err := cs.Info(ctx, l.Descriptor.Digest)
		if errors.Is(err, errdefs.ErrNotFound) && l.Format.NonDistributable {
			log.G(ctx).Debug("foreign layer not in the source", "digest", l.Descriptor.Digest)
			continue
		}
		if err != nil {
			return fmt.Errorf("manifest %s: layer %s: %w", desc.Digest, l.Descriptor.Digest, err)
		}
	}
	return nil
}

// ingest stores desc read from r. When another process is writing the same
// blob, ingest waits for it to finish, because a tar stream cannot come back
// to the entry later. r is not read until the writer opens.
func ingest(ctx context.Context, cs content.Store, desc ocispec.Descriptor, r io.Reader) error {
	ref := "import-" + desc.Digest.String()
	for {
		err := content.Ingest(ctx, cs, ref, desc, r)
		if !errors.Is(err, errdefs.ErrUnavailable) {
			return err
		}
		t := time.NewTimer(100 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("wait for another writer of blob %s: %w", desc.Digest, ctx.Err())
		case <-t.C:
		}
	}
}

// manifestDescriptor returns desc with a media type, reading the blob when
// desc carries none, because image records need one.
func manifestDescriptor(ctx context.Context, cs content.Store, desc ocispec.Descriptor) (ocispec.Descriptor, error) {
	if desc.MediaType != "" {
		return desc, nil
	}
	data, err := content.ReadBlob(ctx, cs, desc)
	if err != nil {
		return desc, err
	}
	kind, err := oci.SniffKind(data)
	if err != nil {
		return desc, fmt.Errorf("manifest %s: %w", desc.Digest, err)
	}
	if kind != oci.KindManifest {
		return desc, fmt.Errorf("manifest %s: is an index: %w", desc.Digest, errdefs.ErrInvalidArgument)
	}
	desc.MediaType = ocispec.MediaTypeImageManifest
	return desc, nil
}

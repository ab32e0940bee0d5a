package importer

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-containers/strata/content"
	"github.com/strata-containers/strata/errdefs"
	"github.com/strata-containers/strata/log"
	"github.com/strata-containers/strata/oci"
	"github.com/strata-containers/strata/oci/dockerarchive"
	"github.com/strata-containers/strata/oci/layout"
)

// maxMetadataSize bounds each JSON file kept in memory from a tar, and
// maxMetadataTotal all of them together.
const (
	maxMetadataSize  = content.MaxBlobSize
	maxMetadataTotal = 64 << 20
)

// maxLinkHops bounds how many links resolvePath follows.
const maxLinkHops = 16

// tarContents is the result of the first pass over a tar.
type tarContents struct {
	// files holds the small metadata files: oci-layout, index.json,
	// manifest.json and top-level *.json configs.
	files map[string][]byte
	// blobs maps each blobs/<alg>/<hex> path to the digest it was
	// ingested as.
	blobs map[string]digest.Digest
	// regular maps every regular file to its size.
	regular map[string]int64
	// links maps symbolic and hard links to the path they point at.
	links map[string]string
	kept  int64
}

// importTar reads an OCI layout tar or a docker archive. A first pass
// ingests every blob under blobs/ and keeps the metadata files. A docker
// archive whose layers are elsewhere needs a second pass for them.
func importTar(ctx context.Context, cs content.Store, file string, cfg config) ([]named, error) {
	tc := &tarContents{
		files:   map[string][]byte{},
		blobs:   map[string]digest.Digest{},
		regular: map[string]int64{},
		links:   map[string]string{},
	}
	if err := walkTar(file, func(hdr *tar.Header, name string, r io.Reader) error {
		return tc.add(ctx, cs, hdr, name, r)
	}); err != nil {
		return nil, err
	}

	_, hasIndex := tc.files[layout.IndexFile]
	if lf, ok := tc.files[layout.LayoutFile]; ok && hasIndex {
		if err := layout.CheckLayoutFile(lf); err != nil {
			return nil, err
		}
	}
	switch {
	case hasIndex:
		if _, ok := tc.files[layout.LayoutFile]; !ok {
			log.G(ctx).Warn("OCI layout tar has no oci-layout file", "path", file)
		}
		idx, err := oci.DecodeIndex(tc.files[layout.IndexFile])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", layout.IndexFile, err)
		}
		return pickImages(ctx, cs, idx, cfg, baseName(file))
	case tc.files[dockerarchive.ManifestFile] != nil:
		return importDocker(ctx, cs, file, tc)
	}
	return nil, fmt.Errorf("not an OCI layout or docker archive: no %s or %s: %w",
		layout.IndexFile, dockerarchive.ManifestFile, errdefs.ErrInvalidArgument)
}

func (tc *tarContents) add(ctx context.Context, cs content.Store, hdr *tar.Header, name string, r io.Reader) error {
	switch hdr.Typeflag {
	case tar.TypeSymlink:
		target := hdr.Linkname
		if !path.IsAbs(target) {
			target = path.Join(path.Dir(name), target)
		}
		if c, err := dockerarchive.CleanPath(strings.TrimPrefix(target, "/")); err == nil {
			tc.links[name] = c
		}
		return nil
	case tar.TypeLink:
		if c, err := dockerarchive.CleanPath(hdr.Linkname); err == nil {
			tc.links[name] = c
		}
		return nil
	}
	if !hdr.FileInfo().Mode().IsRegular() {
		return nil
	}
	tc.regular[name] = hdr.Size

	if d, ok := layout.ParseBlobPath(name); ok {
		desc := ocispec.Descriptor{Digest: d, Size: hdr.Size}
		if err := ingest(ctx, cs, desc, r); err != nil {
			return fmt.Errorf("ingest %s: %w", name, err)
		}
		tc.blobs[name] = d
		return nil
	}
	if !isMetadataFile(name) {
		return nil
	}
	if hdr.Size > maxMetadataSize || tc.kept+hdr.Size > maxMetadataTotal {
		return fmt.Errorf("read %s: %d bytes is over the limit for metadata files: %w",
			name, hdr.Size, errdefs.ErrLimit)
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return fmt.Errorf("read %s: %w", name, err)
	}
	tc.files[name] = data
	tc.kept += int64(len(data))
	return nil
}

// isMetadataFile reports whether a tar entry is one that import reads
// into memory: the layout and docker archive indexes, and the top-level
// JSON files that docker archives keep configs in.
func isMetadataFile(name string) bool {
	switch name {
	case layout.LayoutFile, layout.IndexFile, dockerarchive.ManifestFile:
		return true
	}
	return !strings.Contains(name, "/") && strings.HasSuffix(name, ".json")
}

// resolvePath follows links from p to a regular file's path.
func (tc *tarContents) resolvePath(p string) (string, error) {
	for range maxLinkHops {
		target, ok := tc.links[p]
		if !ok {
			return p, nil
		}
		p = target
	}
	return "", fmt.Errorf("resolve %s: more than %d links: %w", p, maxLinkHops, errdefs.ErrLimit)
}

// walkTar calls fn for every entry of the tar at file, which may be gzip
// compressed, with the entry's cleaned name. Entries whose names leave the
// archive's root are skipped.
func walkTar(file string, fn func(hdr *tar.Header, name string, r io.Reader) error) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()

	// An uncompressed file is passed to tar.Reader as is: it is an
	// io.Seeker, so skipped entries are seeked over instead of read.
	var src io.Reader = f
	magic := make([]byte, 2)
	if n, _ := f.ReadAt(magic, 0); n == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(f)
		if err != nil {
			return fmt.Errorf("open gzip stream: %w: %w", errdefs.ErrInvalidArgument, err)
		}
		defer zr.Close()
		src = zr
	}

	tr := tar.NewReader(src)
	for entries := 0; ; entries++ {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			if entries == 0 {
				return fmt.Errorf("not an OCI layout or docker archive: empty tar: %w", errdefs.ErrInvalidArgument)
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("not an OCI layout or docker archive: read tar: %w: %w",
				errdefs.ErrInvalidArgument, err)
		}
		name, err := dockerarchive.CleanPath(hdr.Name)
		if err != nil {
			continue
		}
		if err := fn(hdr, name, tr); err != nil {
			return err
		}
	}
}

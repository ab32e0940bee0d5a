// Package dockerarchive reads the manifest.json of a "docker save" tar.
//
// Such a tar lists its images in manifest.json: for each, the path of its
// config JSON, its tags and the paths of its layers, bottom layer first.
// Older Docker versions store each layer as <id>/layer.tar and the config
// as <hex>.json; Docker 25 and later also write an OCI layout and use
// blobs/sha256/<hex> paths. Layers are uncompressed tars in the older form,
// and paths may be symbolic links to an identical layer elsewhere in the
// tar.
package dockerarchive

import (
	"encoding/json"
	"fmt"
	"path"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-containers/strata/errdefs"
)

// ManifestFile is the name of the image list at the top of the tar.
const ManifestFile = "manifest.json"

// Entry is one image in manifest.json.
type Entry struct {
	Config   string
	RepoTags []string
	Layers   []string
	// LayerSources describes foreign layers, keyed by diff ID.
	LayerSources map[digest.Digest]ocispec.Descriptor `json:",omitempty"`
}

// ParseManifest decodes manifest.json and cleans its paths. A path that
// is absolute or leaves the tar's root is rejected.
func ParseManifest(data []byte) ([]Entry, error) {
	var entries []Entry
	if err := json.Unmarshal(data, &entries); err != nil {
		return nil, fmt.Errorf("decode %s: %w: %w", ManifestFile, errdefs.ErrInvalidArgument, err)
	}
	if len(entries) == 0 {
		return nil, fmt.Errorf("decode %s: no images listed: %w", ManifestFile, errdefs.ErrInvalidArgument)
	}
	for i := range entries {
		e := &entries[i]
		var err error
		if e.Config, err = CleanPath(e.Config); err != nil {
			return nil, fmt.Errorf("decode %s: image %d config: %w", ManifestFile, i, err)
		}
		for j, l := range e.Layers {
			if e.Layers[j], err = CleanPath(l); err != nil {
				return nil, fmt.Errorf("decode %s: image %d layer %d: %w", ManifestFile, i, j, err)
			}
		}
	}
	return entries, nil
}

// CleanPath returns the slash-separated path p relative to the tar's root,
// without a leading "./". It rejects empty and absolute paths and paths
// that leave the root.
func CleanPath(p string) (string, error) {
	c := path.Clean(strings.TrimPrefix(p, "./"))
	if p == "" || path.IsAbs(p) || c == "." || c == ".." || strings.HasPrefix(c, "../") {
		return "", fmt.Errorf("path %q is not inside the archive: %w", p, errdefs.ErrInvalidArgument)
	}
	return c, nil
}

package importer

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/strata-containers/strata/errdefs"
)

// tagPattern is the grammar of a Docker reference tag.
var tagPattern = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)

// sourceSuffixes are cut from a source's file name to make its base name,
// longest first.
var sourceSuffixes = []string{".oci.tar", ".tar.gz", ".tgz", ".tar", ".oci"}

// baseName returns the name an image from the source at p is given when
// the source names only a tag, or nothing.
func baseName(p string) string {
	base := strings.ToLower(filepath.Base(filepath.Clean(p)))
	for _, suf := range sourceSuffixes {
		if strings.HasSuffix(base, suf) && len(base) > len(suf) {
			base = strings.TrimSuffix(base, suf)
			break
		}
	}
	base = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-' {
			return r
		}
		return '-'
	}, base)
	base = strings.Trim(base, ".-_")
	if base == "" {
		return "image"
	}
	return base
}

// annotationName returns the name index.json annotations give an entry,
// or "" when they give none.
func annotationName(ann map[string]string, base string) string {
	if n := ann[AnnotationImageName]; n != "" {
		return n
	}
	ref := ann[AnnotationRefName]
	if ref == "" {
		return ""
	}
	if tagPattern.MatchString(ref) {
		return base + ":" + ref
	}
	return ref
}

// applyNames names the images found: all of them override when it is set,
// else every image without a name gets one derived from base.
func applyNames(imgs []named, override, base string) ([]named, error) {
	if len(imgs) == 0 {
		return nil, fmt.Errorf("find images: the source lists none: %w", errdefs.ErrNotFound)
	}
	if override != "" {
		for _, n := range imgs[1:] {
			if n.desc.Digest != imgs[0].desc.Digest {
				return nil, fmt.Errorf("name the image %s: the source contains images with different "+
					"manifests (%s, %s), and a name override needs exactly one: %w",
					override, imgs[0].desc.Digest, n.desc.Digest, errdefs.ErrInvalidArgument)
			}
		}
		return []named{{names: []string{override}, desc: imgs[0].desc}}, nil
	}

	unnamed := 0
	for _, n := range imgs {
		if len(n.names) == 0 {
			unnamed++
		}
	}
	owner := map[string]digest.Digest{}
	var out []named
	for _, n := range imgs {
		if len(n.names) == 0 && unnamed == 1 {
			n.names = []string{base + ":latest"}
		} else if len(n.names) == 0 {
			n.names = []string{base + "@" + n.desc.Digest.String()}
		}
		var keep []string
		for _, name := range n.names {
			prev, seen := owner[name]
			if seen && prev != n.desc.Digest {
				return nil, fmt.Errorf("name the image %s: given to both %s and %s: %w",
					name, prev, n.desc.Digest, errdefs.ErrInvalidArgument)
			}
			if !seen {
				owner[name] = n.desc.Digest
				keep = append(keep, name)
			}
		}
		if len(keep) > 0 {
			n.names = keep
			out = append(out, n)
		}
	}
	return out, nil
}

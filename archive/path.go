package archive

import (
	"fmt"
	"strings"

	"github.com/strata-containers/strata/errdefs"
)

// OCI whiteout names. A file named whiteoutPrefix+NAME deletes NAME from the
// layers below; opaqueMarker inside a directory deletes every child that the
// layers below put there. Other names starting with aufsPrefix are AUFS
// metadata (hard link directories and the like), which old Docker exports
// carry.
const (
	whiteoutPrefix = ".wh."
	opaqueMarker   = ".wh..wh..opq"
	aufsPrefix     = ".wh..wh."
)

// cleanName returns the in-root path of a tar entry name or hard link
// target: components joined by "/", with no leading slash, and "" for the
// root itself. A leading "/" means the root, "." and empty components drop
// out, and ".." removes the component before it. A ".." that would climb
// above the root fails with [errdefs.ErrBreakout].
func cleanName(name string) (string, error) {
	if strings.IndexByte(name, 0) >= 0 {
		return "", fmt.Errorf("name contains a NUL byte: %w", errdefs.ErrInvalidLayer)
	}
	parts := make([]string, 0, strings.Count(name, "/")+1)
	for c := range strings.SplitSeq(name, "/") {
		switch c {
		case "", ".":
		case "..":
			if len(parts) == 0 {
				return "", errdefs.ErrBreakout
			}
			parts = parts[:len(parts)-1]
		default:
			parts = append(parts, c)
		}
	}
	return strings.Join(parts, "/"), nil
}

// splitName splits a cleaned path into its parent and last component.
func splitName(p string) (dir, base string) {
	i := strings.LastIndexByte(p, '/')
	if i < 0 {
		return "", p
	}
	return p[:i], p[i+1:]
}

func joinName(dir, base string) string {
	if dir == "" {
		return base
	}
	return dir + "/" + base
}

func depth(p string) int {
	if p == "" {
		return 0
	}
	return strings.Count(p, "/") + 1
}

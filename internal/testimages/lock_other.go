//go:build !unix

package testimages

import (
	"fmt"

	"github.com/strata-containers/strata/errdefs"
)

// lockFile is not implemented where flock is missing; the images are built
// only on Linux anyway.
func lockFile(path string) (unlock func(), err error) {
	return nil, fmt.Errorf("lock %s: %w", path, errdefs.ErrNotImplemented)
}

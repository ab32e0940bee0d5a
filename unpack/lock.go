package unpack

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/strata-containers/strata/internal/flock"
)

// NewFileLocker returns a [Locker] that takes flock(2) locks on files under
// dir, one per chain ID, so that unpackers in different processes on one
// root extract every chain once. A lock held by a process that dies is
// released by the kernel.
func NewFileLocker(dir string) (Locker, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create lock directory: %w", err)
	}
	return fileLocker{dir: dir}, nil
}

type fileLocker struct{ dir string }

func (l fileLocker) Lock(ctx context.Context, chainID string) (func(), error) {
	name := strings.ReplaceAll(chainID, ":", "-") + ".lock"
	return flock.Lock(ctx, filepath.Join(l.dir, name))
}

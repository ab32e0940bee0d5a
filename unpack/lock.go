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
// released by the kernel. The locker is also a [TryLocker].
func NewFileLocker(dir string) (Locker, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create lock directory: %w", err)
	}
	return fileLocker{dir: dir}, nil
}

type fileLocker struct{ dir string }

func (l fileLocker) path(chainID string) string {
	return filepath.Join(l.dir, strings.ReplaceAll(chainID, ":", "-")+".lock")
}

func (l fileLocker) Lock(ctx context.Context, chainID string) (func(), error) {
	return flock.Lock(ctx, l.path(chainID))
}

func (l fileLocker) TryLock(_ context.Context, chainID string) (func(), bool, error) {
	unlock, ok, err := flock.TryLock(l.path(chainID), true)
	if err != nil {
		return nil, false, fmt.Errorf("lock chain %s: %w", chainID, err)
	}
	return unlock, ok, nil
}

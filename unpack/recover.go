package unpack

import (
	"context"
	"errors"
	"fmt"

	"github.com/strata-containers/strata/errdefs"
	"github.com/strata-containers/strata/log"
	"github.com/strata-containers/strata/snapshot"
)

// FindLeftovers returns the keys of the extraction snapshots in sn whose
// chain no unpacker holds: those of unpackers that died. An unpacker holds
// its chain's lock from before it prepares an extraction snapshot until
// after it commits or removes it, so a free lock means nobody owns one.
func FindLeftovers(ctx context.Context, sn snapshot.Snapshotter, l TryLocker) ([]string, error) {
	var keys []string
	err := forEachLeftover(ctx, sn, l, func(key, _ string) error {
		keys = append(keys, key)
		return nil
	})
	return keys, err
}

// RemoveLeftovers removes the extraction snapshots that [FindLeftovers]
// returns, each while holding its chain's lock, and returns their keys.
// Chains that an unpacker holds are left alone, so it is safe while other
// processes unpack on the same root.
func RemoveLeftovers(ctx context.Context, sn snapshot.Snapshotter, l TryLocker) ([]string, error) {
	var removed []string
	err := forEachLeftover(ctx, sn, l, func(key, chainID string) error {
		err := sn.Remove(ctx, key)
		if errors.Is(err, errdefs.ErrNotFound) {
			return nil // committed or removed by its owner since the walk
		}
		if err != nil {
			return fmt.Errorf("remove leftover extraction snapshot %q: %w", key, err)
		}
		log.G(ctx).Info("remove leftover extraction snapshot", "key", key, "chainid", chainID)
		removed = append(removed, key)
		return nil
	})
	return removed, err
}

// forEachLeftover calls fn for every extraction snapshot whose chain lock
// it takes without waiting, while holding that lock.
func forEachLeftover(ctx context.Context, sn snapshot.Snapshotter, l TryLocker,
	fn func(key, chainID string) error,
) error {
	byChain := map[string][]string{}
	err := sn.Walk(ctx, func(_ context.Context, info snapshot.Info) error {
		if chainID := info.Labels[LabelExtractFor]; IsExtractKey(info.Name) && chainID != "" {
			byChain[chainID] = append(byChain[chainID], info.Name)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("find leftover extractions: %w", err)
	}
	for chainID, keys := range byChain {
		unlock, ok, err := l.TryLock(ctx, chainID)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		for _, key := range keys {
			if err := fn(key, chainID); err != nil {
				unlock()
				return err
			}
		}
		unlock()
	}
	return nil
}

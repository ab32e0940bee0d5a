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
		// A key that is gone was committed or removed by its owner since
		// the walk, or removed here as the child of another leftover.
		keys, err := removeExtraction(ctx, sn, key)
		removed = append(removed, keys...)
		if err != nil {
			return fmt.Errorf("remove leftover extraction snapshot %q: %w", key, err)
		}
		return nil
	})
	return removed, err
}

// removeExtraction removes the leftover extraction snapshot key, first
// removing the extraction snapshots prepared on it, logs each removal and
// returns the keys it removed, children first, also when a later removal
// failed. A key that does not exist is skipped. Only the unpacker that
// owns an extraction snapshot prepares on it, while it holds the
// snapshot's chain lock, so the children of a leftover are leftovers too.
func removeExtraction(ctx context.Context, sn snapshot.Snapshotter, key string) ([]string, error) {
	children := map[string][]string{}
	chainIDs := map[string]string{}
	err := sn.Walk(ctx, func(_ context.Context, info snapshot.Info) error {
		if IsExtractKey(info.Name) {
			chainIDs[info.Name] = info.Labels[LabelExtractFor]
		}
		if IsExtractKey(info.Name) && IsExtractKey(info.Parent) {
			children[info.Parent] = append(children[info.Parent], info.Name)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("find extraction snapshots on %q: %w", key, err)
	}
	var removed []string
	var remove func(k string) error
	remove = func(k string) error {
		for _, child := range children[k] {
			if err := remove(child); err != nil {
				return err
			}
		}
		err := sn.Remove(ctx, k)
		if errors.Is(err, errdefs.ErrNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("remove extraction snapshot %q: %w", k, err)
		}
		log.G(ctx).Info("remove leftover extraction snapshot", "key", k, "chainid", chainIDs[k])
		removed = append(removed, k)
		return nil
	}
	return removed, remove(key)
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

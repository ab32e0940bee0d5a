package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/strata-containers/strata/errdefs"
	"github.com/strata-containers/strata/log"
	"github.com/strata-containers/strata/mount"
	"github.com/strata-containers/strata/snapshot"
)

// Labels on the snapshot behind a mount.
const (
	LabelMountTarget = "strata.io/mount-target"
	LabelImage       = "strata.io/image"
)

// mountKey names the snapshot behind the mount at target. Keying by target
// lets Unmount find it with nothing but the path.
func mountKey(target string) string { return "mount:" + target }

// Mount unpacks the image name when needed and mounts its root file system
// at target: a read-only view, or with rw a writable active snapshot whose
// changes are discarded by Unmount.
func (s *Store) Mount(ctx context.Context, name, target string, rw bool) (err error) {
	target, err = filepath.Abs(target)
	if err != nil {
		return fmt.Errorf("mount %s: %w", name, err)
	}
	chainID, err := s.Unpack(ctx, name)
	if err != nil {
		return err
	}
	sn, err := s.Snapshotter(ctx)
	if err != nil {
		return fmt.Errorf("mount %s: %w", name, err)
	}

	key := mountKey(target)
	labels := snapshot.WithLabels(map[string]string{LabelMountTarget: target, LabelImage: name})
	var mounts []mount.Mount
	if rw {
		mounts, err = sn.Prepare(ctx, key, chainID.String(), labels)
	} else {
		mounts, err = sn.View(ctx, key, chainID.String(), labels)
	}
	if errors.Is(err, errdefs.ErrAlreadyExists) {
		return fmt.Errorf("mount %s on %s: a strata mount is already there: %w", name, target, err)
	}
	if err != nil {
		return fmt.Errorf("mount %s on %s: %w", name, target, err)
	}
	defer func() {
		if err == nil {
			return
		}
		if rerr := sn.Remove(context.WithoutCancel(ctx), key); rerr != nil {
			log.G(ctx).Warn("remove snapshot of failed mount", "key", key, "error", rerr)
		}
	}()

	if err := mount.All(mounts, target); err != nil {
		return fmt.Errorf("mount %s on %s: %w", name, target, err)
	}
	return nil
}

// Unmount unmounts the strata mount at target and removes the snapshot
// behind it, whichever snapshotter made it.
func (s *Store) Unmount(ctx context.Context, target string) error {
	target, err := filepath.Abs(target)
	if err != nil {
		return fmt.Errorf("unmount %s: %w", target, err)
	}
	key := mountKey(target)
	for _, name := range Snapshotters {
		sn, err := s.snapshotterNamed(ctx, name)
		if err != nil {
			// A snapshotter this kernel cannot run holds no mounts.
			continue
		}
		if _, err := sn.Stat(ctx, key); errors.Is(err, errdefs.ErrNotFound) {
			continue
		} else if err != nil {
			return fmt.Errorf("unmount %s: %w", target, err)
		}
		if err := unmountOwn(ctx, sn, key, target); err != nil {
			return fmt.Errorf("unmount %s: %w", target, err)
		}
		if err := sn.Remove(ctx, key); err != nil {
			return fmt.Errorf("unmount %s: remove snapshot %q: %w", target, key, err)
		}
		return nil
	}
	return fmt.Errorf("unmount %s: no strata mount there: %w", target, errdefs.ErrNotFound)
}

// unmountOwn undoes the mounts that Mount made at target for the snapshot
// key, one unmount(2) for each, and nothing else: a file system mounted
// below target makes it fail as busy rather than vanish with it, and one
// mounted over target before Mount ran stays. A target that is no longer a
// mount point was unmounted by hand, which is no error.
func unmountOwn(ctx context.Context, sn snapshot.Snapshotter, key, target string) error {
	mounts, err := sn.Mounts(ctx, key)
	if err != nil {
		return err
	}
	for range mounts {
		err := mount.Unmount(target, 0)
		switch {
		case errors.Is(err, unix.EINVAL):
			return nil
		case errors.Is(err, unix.EBUSY):
			return fmt.Errorf("target is busy: a process uses it or a file system is mounted "+
				"below it; unmount that first: %w", errdefs.ErrFailedPrecondition)
		case err != nil:
			return err
		}
	}
	return nil
}

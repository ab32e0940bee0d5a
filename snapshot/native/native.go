// Package native implements a [snapshot.Snapshotter] with plain directories,
// for file systems or kernels where overlayfs is not available.
//
// Each snapshot is a full copy of its parent's tree, made with
// internal/fscopy, which keeps owners, modes, xattrs, times, hard links,
// special files and holes:
//
//	<root>/metadata.db            bbolt metadata (see snapshot/storage)
//	<root>/staging/<token>.lock   flock held by the builder of new-<token>
//	<root>/snapshots/<id>/fs      the snapshot's whole tree
//	<root>/snapshots/<id>/manifest  size and checksum of each file in fs, committed only
//	<root>/snapshots/new-*        a snapshot being created
//	<root>/snapshots/rm-*         a snapshot being removed
//
// Mounts are binds: read-write for an active snapshot, read-only for a view.
// A view does not copy: it binds its parent's tree read-only, which is safe
// because a committed snapshot never changes and cannot be removed while the
// view exists.
//
// Copies cost disk space and time in proportion to the whole tree, so Usage
// reports the size of the whole tree, not of one layer's changes.
package native

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"github.com/strata-containers/strata/errdefs"
	"github.com/strata-containers/strata/internal/fscopy"
	"github.com/strata-containers/strata/log"
	"github.com/strata-containers/strata/mount"
	"github.com/strata-containers/strata/snapshot"
	"github.com/strata-containers/strata/snapshot/storage"
)

// Opt configures a Snapshotter.
type Opt func(*config)

type config struct {
	sync        bool
	recover     bool
	copyWorkers int
}

// maxCopyWorkers bounds the default of [WithCopyWorkers].
const maxCopyWorkers = 4

// WithCopyWorkers sets how many goroutines copy the parent's files into a
// new snapshot; see [fscopy.WithWorkers]. The default is the number of CPUs
// the Go runtime uses, at most 4, and 1 copies one file at a time.
func WithCopyWorkers(n int) Opt {
	return func(c *config) {
		if n >= 1 {
			c.copyWorkers = n
		}
	}
}

// WithSync sets whether Commit flushes the snapshot's file system with
// syncfs(2) before it records the commit. It is on by default. With it off,
// a power loss soon after a commit can leave a committed snapshot with
// missing or truncated files, which 'strata check' finds.
func WithSync(sync bool) Opt {
	return func(c *config) { c.sync = sync }
}

// WithoutRecovery makes New leave what crashed processes left in the root,
// for a caller that wants to report it first; see [Snapshotter.Recover].
func WithoutRecovery() Opt {
	return func(c *config) { c.recover = false }
}

// Snapshotter stores snapshots as copied directories under one root.
type Snapshotter struct {
	root   string
	ms     *storage.MetaStore
	dirs   *storage.Dirs
	config config
	copies copyTracker
}

var (
	_ snapshot.Snapshotter     = (*Snapshotter)(nil)
	_ snapshot.DigestCommitter = (*Snapshotter)(nil)
)

// New returns a Snapshotter on root, creating root when needed, and removes
// leftovers of crashed processes.
func New(root string, opts ...Opt) (*Snapshotter, error) {
	c := config{sync: true, recover: true, copyWorkers: min(runtime.GOMAXPROCS(0), maxCopyWorkers)}
	for _, opt := range opts {
		opt(&c)
	}
	root, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("resolve root %s: %w", root, err)
	}
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("create root %s: %w", root, err)
	}
	ms, err := storage.NewMetaStore(filepath.Join(root, "metadata.db"))
	if err != nil {
		return nil, err
	}
	dirs, err := storage.NewDirs(root)
	if err != nil {
		return nil, err
	}
	if c.recover {
		if _, err := dirs.Recover(context.Background(), ms); err != nil {
			return nil, err
		}
	}
	return &Snapshotter{root: root, ms: ms, dirs: dirs, config: c}, nil
}

// Stat returns the info of the snapshot key.
func (s *Snapshotter) Stat(ctx context.Context, key string) (snapshot.Info, error) {
	_, info, _, err := s.ms.Info(ctx, key)
	return info, err
}

// Usage returns the disk space of the snapshot key's tree: the figure
// recorded at commit for a committed snapshot, and a walk of the tree
// otherwise. A view uses no space of its own.
func (s *Snapshotter) Usage(ctx context.Context, key string) (snapshot.Usage, error) {
	id, info, usage, err := s.ms.Info(ctx, key)
	if err != nil || info.Kind == snapshot.KindCommitted {
		return usage, err
	}
	return storage.DiskUsage(ctx, s.treePath(id))
}

// Mounts returns the mounts of the active snapshot or view key.
func (s *Snapshotter) Mounts(ctx context.Context, key string) ([]mount.Mount, error) {
	sn, err := s.ms.Snapshot(ctx, key)
	if err != nil {
		return nil, err
	}
	if sn.Kind == snapshot.KindCommitted {
		return nil, fmt.Errorf("get mounts of %s: snapshot is committed: %w",
			key, errdefs.ErrFailedPrecondition)
	}
	return s.mounts(sn), nil
}

// Prepare creates the active snapshot key as a copy of parent's tree and
// returns its mounts.
func (s *Snapshotter) Prepare(ctx context.Context, key, parent string,
	opts ...snapshot.Opt,
) ([]mount.Mount, error) {
	return s.create(ctx, snapshot.KindActive, key, parent, opts)
}

// View creates the read-only snapshot key of parent and returns its mounts.
func (s *Snapshotter) View(ctx context.Context, key, parent string,
	opts ...snapshot.Opt,
) ([]mount.Mount, error) {
	return s.create(ctx, snapshot.KindView, key, parent, opts)
}

// Commit turns the active snapshot key into the committed snapshot name,
// recording the disk usage of its tree.
func (s *Snapshotter) Commit(ctx context.Context, name, key string, opts ...snapshot.Opt) error {
	return s.commit(ctx, name, key, nil, opts)
}

// CommitDigests is [Snapshotter.Commit] with the digests of the files
// that the caller wrote into the snapshot, which the manifest takes
// instead of reading those files back.
func (s *Snapshotter) CommitDigests(ctx context.Context, name, key string,
	digests snapshot.FileDigests, opts ...snapshot.Opt,
) error {
	return s.commit(ctx, name, key, digests, opts)
}

func (s *Snapshotter) commit(ctx context.Context, name, key string,
	digests snapshot.FileDigests, opts []snapshot.Opt,
) error {
	sn, err := s.ms.Snapshot(ctx, key)
	if err != nil {
		return err
	}
	if sn.Kind != snapshot.KindActive {
		return fmt.Errorf("commit snapshot %s: it is %s, not active: %w",
			key, sn.Kind, errdefs.ErrFailedPrecondition)
	}

	if c := s.copies.take(sn.ID); c != nil {
		digests = c.digests(digests)
	}

	// The manifest and, unless WithSync(false), the data reach the disk
	// before the record that commits them.
	usage, err := storage.SealDigests(ctx, s.dirs.Path(sn.ID), s.config.sync, digests)
	if err != nil {
		return fmt.Errorf("commit snapshot %s: %w", key, err)
	}
	return s.ms.Update(ctx, func(ctx context.Context) error {
		id, err := storage.CommitActive(ctx, key, name, usage, opts...)
		if err == nil && id != sn.ID {
			err = fmt.Errorf("commit snapshot %s: key was recreated during commit: %w",
				key, errdefs.ErrFailedPrecondition)
		}
		return err
	})
}

// Remove deletes the snapshot key, which must have no children. The record
// goes first, and a directory that then fails to be removed is logged and left
// for the next New on the root to remove.
func (s *Snapshotter) Remove(ctx context.Context, key string) error {
	var id string
	err := s.ms.Update(ctx, func(ctx context.Context) error {
		var err error
		id, _, err = storage.Remove(ctx, key)
		return err
	})
	if err != nil {
		return err
	}
	s.copies.take(id)
	if err := s.dirs.Delete(id); err != nil {
		log.G(ctx).Warn("remove snapshot directory", "key", key, "path", s.dirs.Path(id),
			"error", err)
	}
	return nil
}

// Walk calls fn for every snapshot, stopping at the first error.
func (s *Snapshotter) Walk(ctx context.Context, fn snapshot.WalkFunc) error {
	return s.ms.View(ctx, func(ctx context.Context) error {
		return storage.WalkInfo(ctx, fn)
	})
}

// Close releases the snapshotter's resources. It holds no open files
// between calls, so there is nothing to release.
func (s *Snapshotter) Close() error { return nil }

// create records the snapshot and renames its empty staging directory to
// its ID in one transaction, then copies the parent's tree into it. The
// record comes first because it pins the parent: Remove rejects a snapshot
// with children, so the parent cannot go away while the copy, which can
// take long and runs outside any transaction, reads it. A copy that fails
// removes the snapshot again. A process killed during the copy leaves an
// active snapshot with part of the tree, as writing into it would.
func (s *Snapshotter) create(ctx context.Context, kind snapshot.Kind, key, parent string,
	opts []snapshot.Opt,
) ([]mount.Mount, error) {
	st, err := s.dirs.Stage(ctx)
	if err != nil {
		return nil, fmt.Errorf("create snapshot %s: %w", key, err)
	}
	defer st.Close(ctx)

	if err := storage.MakeRoot(filepath.Join(st.Path(), "fs")); err != nil {
		return nil, fmt.Errorf("create snapshot %s: %w", key, err)
	}
	var sn storage.Snapshot
	err = s.ms.Update(ctx, func(ctx context.Context) error {
		var err error
		sn, err = storage.CreateSnapshot(ctx, kind, key, parent, opts...)
		if err != nil {
			return err
		}
		return st.Rename(sn.ID)
	})
	if err != nil {
		return nil, err
	}
	st.Done()

	if len(sn.ParentIDs) > 0 && kind == snapshot.KindActive {
		if err := s.copyParent(ctx, sn); err != nil {
			if rerr := s.Remove(context.WithoutCancel(ctx), key); rerr != nil {
				log.G(ctx).Warn("remove snapshot after failed copy", "key", key, "error", rerr)
			}
			return nil, fmt.Errorf("create snapshot %s: copy parent %s: %w", key, parent, err)
		}
	}
	return s.mounts(sn), nil
}

// copyParent copies the tree of sn's parent into sn's tree, and records
// the copied files with the digests of the parent's manifest, which
// Commit uses for the files still unchanged then.
func (s *Snapshotter) copyParent(ctx context.Context, sn storage.Snapshot) error {
	tree, parentID := s.treePath(sn.ID), sn.ParentIDs[0]
	opts := []fscopy.Opt{fscopy.WithWorkers(s.config.copyWorkers)}
	manifest := filepath.Join(s.dirs.Path(parentID), storage.ManifestName)
	if parent := readParentDigests(ctx, manifest); parent != nil {
		c := newCopiedFiles(tree)
		opts = append(opts, fscopy.WithFileFunc(recordCopies(c, parent)))
		defer s.copies.put(sn.ID, c)
	}
	return fscopy.Copy(ctx, tree, s.treePath(parentID), opts...)
}

func (s *Snapshotter) treePath(id string) string {
	return filepath.Join(s.dirs.Path(id), "fs")
}

func (s *Snapshotter) mounts(sn storage.Snapshot) []mount.Mount {
	source, mode := s.treePath(sn.ID), "rw"
	if sn.Kind == snapshot.KindView {
		mode = "ro"
		if len(sn.ParentIDs) > 0 {
			source = s.treePath(sn.ParentIDs[0])
		}
	}
	return []mount.Mount{{Type: "bind", Source: source, Options: []string{"rbind", mode}}}
}

// Recover removes what crashed processes left in the root: staging and
// removal directories and snapshot directories without a record. It is safe
// while other processes use the root, and returns the paths it removed.
func (s *Snapshotter) Recover(ctx context.Context) ([]string, error) {
	return s.dirs.Recover(ctx, s.ms)
}

// Check compares the records with the directories, and the files of every
// committed snapshot with the manifest recorded at its commit.
func (s *Snapshotter) Check(ctx context.Context) (storage.CheckResult, error) {
	return storage.Check(ctx, s.ms, s.dirs)
}

// Label sets labels on the snapshot key.
func (s *Snapshotter) Label(ctx context.Context, key string, labels map[string]string) error {
	return s.ms.Update(ctx, func(ctx context.Context) error {
		return storage.SetLabels(ctx, key, labels)
	})
}

// Package overlay implements a [snapshot.Snapshotter] on kernel overlayfs.
//
// Each snapshot is a directory under the root:
//
//	<root>/metadata.db            bbolt metadata (see snapshot/storage)
//	<root>/staging/<token>.lock   flock held by the builder of new-<token>
//	<root>/snapshots/<id>/fs      the snapshot's own files: overlay upperdir
//	<root>/snapshots/<id>/work    overlay workdir, active snapshots only
//	<root>/snapshots/<id>/manifest  size and checksum of each file in fs, committed only
//	<root>/snapshots/new-*        a snapshot being created
//	<root>/snapshots/rm-*         a snapshot being removed
//
// A committed snapshot's fs directory holds only the changes of its layer;
// the tree of a chain is the overlay of the fs directories of the snapshot
// and all its ancestors. Mounts returns:
//
//   - an active snapshot without parent: a read-write bind of its fs;
//   - an active snapshot with parents: an overlay with index=off, the
//     ancestors' fs as lowerdir (parent first), its fs as upperdir;
//   - a view of one parent: a read-only bind of the parent's fs;
//   - a view of several: an overlay with lowerdir only, which the kernel
//     mounts read-only.
//
// A caller that applies a layer directly into the upper directory, rather
// than through a mount, gets the directories from [Layers].
//
// Many processes may use one root at once: the metadata file is opened per
// transaction, and a new Snapshotter removes leftovers of crashed processes
// even while other processes work in the root (see [storage.Dirs.Recover]).
package overlay

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/strata-containers/strata/errdefs"
	"github.com/strata-containers/strata/log"
	"github.com/strata-containers/strata/mount"
	"github.com/strata-containers/strata/snapshot"
	"github.com/strata-containers/strata/snapshot/storage"
)

// Opt configures a Snapshotter.
type Opt func(*config)

type config struct {
	mountOptions []string
	sync         bool
	recover      bool
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

// WithMountOptions adds overlay mount options, such as "volatile" or
// "userxattr", to every overlay mount the snapshotter returns.
func WithMountOptions(options ...string) Opt {
	return func(c *config) { c.mountOptions = append(c.mountOptions, options...) }
}

// Snapshotter stores snapshots as overlayfs layers under one root.
type Snapshotter struct {
	root   string
	ms     *storage.MetaStore
	dirs   *storage.Dirs
	config config
}

var (
	_ snapshot.Snapshotter     = (*Snapshotter)(nil)
	_ snapshot.DigestCommitter = (*Snapshotter)(nil)
	_ snapshot.ActivePreparer  = (*Snapshotter)(nil)
)

// New returns a Snapshotter on root, creating root when needed. It removes
// leftovers of crashed processes and checks that the kernel mounts overlay
// on root's file system, returning an error of class ErrNotImplemented when
// it does not.
func New(root string, opts ...Opt) (*Snapshotter, error) {
	c := config{sync: true, recover: true}
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

	ctx := context.Background()
	if c.recover {
		if _, err := dirs.Recover(ctx, ms); err != nil {
			return nil, err
		}
	}
	if err := checkSupport(ctx, dirs); err != nil {
		return nil, fmt.Errorf("check overlay on %s: %w", root, err)
	}
	return &Snapshotter{root: root, ms: ms, dirs: dirs, config: c}, nil
}

// Stat returns the info of the snapshot key.
func (s *Snapshotter) Stat(ctx context.Context, key string) (snapshot.Info, error) {
	_, info, _, err := s.ms.Info(ctx, key)
	return info, err
}

// Usage returns the disk space of the snapshot key's own directory: the
// figure recorded at commit for a committed snapshot, and a walk of its
// upper directory otherwise.
func (s *Snapshotter) Usage(ctx context.Context, key string) (snapshot.Usage, error) {
	id, info, usage, err := s.ms.Info(ctx, key)
	if err != nil || info.Kind == snapshot.KindCommitted {
		return usage, err
	}
	return storage.DiskUsage(ctx, s.upperPath(id))
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

// Prepare creates the active snapshot key on parent and returns its mounts.
func (s *Snapshotter) Prepare(ctx context.Context, key, parent string,
	opts ...snapshot.Opt,
) ([]mount.Mount, error) {
	return s.create(ctx, snapshot.KindActive, key, parent, opts)
}

// PrepareOnActive creates the active snapshot key on the active snapshot
// parent, as [snapshot.ActivePreparer] describes, and returns its mounts.
// The parent's upper directory is the child's topmost lower directory.
func (s *Snapshotter) PrepareOnActive(ctx context.Context, key, parent string,
	opts ...snapshot.Opt,
) ([]mount.Mount, error) {
	return s.createOn(ctx, snapshot.KindActive, key, parent, true, opts)
}

// View creates the read-only snapshot key of parent and returns its mounts.
func (s *Snapshotter) View(ctx context.Context, key, parent string,
	opts ...snapshot.Opt,
) ([]mount.Mount, error) {
	return s.create(ctx, snapshot.KindView, key, parent, opts)
}

// Commit turns the active snapshot key into the committed snapshot name,
// recording the disk usage of its upper directory.
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

// create builds the snapshot directory under a staging name and renames it
// to its ID inside the transaction that records it.
func (s *Snapshotter) create(ctx context.Context, kind snapshot.Kind, key, parent string,
	opts []snapshot.Opt,
) ([]mount.Mount, error) {
	return s.createOn(ctx, kind, key, parent, false, opts)
}

// createOn is create, on an active parent when activeParent is set.
func (s *Snapshotter) createOn(ctx context.Context, kind snapshot.Kind, key, parent string,
	activeParent bool, opts []snapshot.Opt,
) (_ []mount.Mount, err error) {
	st, err := s.dirs.Stage(ctx)
	if err != nil {
		return nil, fmt.Errorf("create snapshot %s: %w", key, err)
	}
	defer st.Close(ctx)

	upper := filepath.Join(st.Path(), "fs")
	if err := storage.MakeRoot(upper); err != nil {
		return nil, fmt.Errorf("create snapshot %s: %w", key, err)
	}
	if kind == snapshot.KindActive {
		if err := os.Mkdir(filepath.Join(st.Path(), "work"), 0o711); err != nil {
			return nil, fmt.Errorf("create snapshot %s: %w", key, err)
		}
	}

	var sn storage.Snapshot
	err = s.ms.Update(ctx, func(ctx context.Context) error {
		var err error
		if activeParent {
			sn, err = storage.CreateSnapshotOnActive(ctx, key, parent, opts...)
		} else {
			sn, err = storage.CreateSnapshot(ctx, kind, key, parent, opts...)
		}
		if err != nil {
			return err
		}
		if len(sn.ParentIDs) > 0 {
			// The root of the merged tree takes its owner, mode and
			// times from the upper directory, so they must match the
			// parent's.
			if err := copyRootAttrs(s.upperPath(sn.ParentIDs[0]), upper); err != nil {
				return fmt.Errorf("create snapshot %s: %w", key, err)
			}
		}
		return st.Rename(sn.ID)
	})
	if err != nil {
		return nil, err
	}
	st.Done()
	return s.mounts(sn), nil
}

func copyRootAttrs(src, dst string) error {
	fi, err := os.Stat(src)
	if err != nil {
		return err
	}
	uid, gid := owner(fi)
	if err := os.Lchown(dst, uid, gid); err != nil {
		return err
	}
	if err := os.Chmod(dst, fi.Mode()&(os.ModePerm|os.ModeSetuid|os.ModeSetgid|os.ModeSticky)); err != nil {
		return err
	}
	atime, mtime := times(fi)
	return os.Chtimes(dst, atime, mtime)
}

func (s *Snapshotter) upperPath(id string) string {
	return filepath.Join(s.dirs.Path(id), "fs")
}

func (s *Snapshotter) mounts(sn storage.Snapshot) []mount.Mount {
	bind := func(source, mode string) []mount.Mount {
		return []mount.Mount{{Type: "bind", Source: source, Options: []string{"rbind", mode}}}
	}
	switch {
	case len(sn.ParentIDs) == 0 && sn.Kind == snapshot.KindView:
		return bind(s.upperPath(sn.ID), "ro")
	case len(sn.ParentIDs) == 0:
		return bind(s.upperPath(sn.ID), "rw")
	case len(sn.ParentIDs) == 1 && sn.Kind == snapshot.KindView:
		return bind(s.upperPath(sn.ParentIDs[0]), "ro")
	}

	lowers := make([]string, len(sn.ParentIDs))
	for i, id := range sn.ParentIDs {
		lowers[i] = s.upperPath(id)
	}
	options := []string{"index=off"}
	if sn.Kind == snapshot.KindActive {
		options = append(options,
			"upperdir="+s.upperPath(sn.ID),
			"workdir="+filepath.Join(s.dirs.Path(sn.ID), "work"))
	}
	options = append(options, "lowerdir="+mount.JoinLowerDirs(lowers))
	options = append(options, s.config.mountOptions...)
	return []mount.Mount{{Type: "overlay", Source: "overlay", Options: options}}
}

// Layers returns the directories behind mounts returned by a Snapshotter:
// the writable upper directory ("" for a read-only mount) and the lower
// directories, topmost first. A caller that applies a layer straight into
// the upper directory uses it instead of mounting.
func Layers(mounts []mount.Mount) (upper string, lowers []string, err error) {
	if len(mounts) != 1 {
		return "", nil, fmt.Errorf("read layers of %d mounts: want 1: %w",
			len(mounts), errdefs.ErrInvalidArgument)
	}
	m := mounts[0]
	switch m.Type {
	case "bind":
		if m.ReadOnly() {
			return "", []string{m.Source}, nil
		}
		return m.Source, nil, nil
	case "overlay":
		return m.UpperDir(), m.LowerDirs(), nil
	}
	return "", nil, fmt.Errorf("read layers of %s mount: %w", m.Type, errdefs.ErrInvalidArgument)
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

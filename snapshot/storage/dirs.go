package storage

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/strata-containers/strata/log"
)

// Dirs manages the snapshot directories under one root.
type Dirs struct {
	dir      string
	lockPath string
}

// NewDirs returns the Dirs of root, creating <root>/snapshots when needed.
func NewDirs(root string) (*Dirs, error) {
	dir := filepath.Join(root, "snapshots")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create snapshots directory: %w", err)
	}
	return &Dirs{dir: dir, lockPath: filepath.Join(root, "snapshots.lock")}, nil
}

// Path returns the directory of the snapshot id.
func (d *Dirs) Path(id string) string { return filepath.Join(d.dir, id) }

// Lock takes the shared lock on the root, which keeps [Dirs.Recover] in
// other processes from removing directories this one is working on. It
// waits until the lock is free or ctx is done. The caller must call the
// returned function to release the lock.
func (d *Dirs) Lock(ctx context.Context) (unlock func(), err error) {
	return d.lock(ctx, unix.LOCK_SH)
}

func (d *Dirs) lock(ctx context.Context, how int) (func(), error) {
	f, err := os.OpenFile(d.lockPath, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock %s: %w", d.lockPath, err)
	}
	delay := time.Millisecond
	for {
		err := unix.Flock(int(f.Fd()), how|unix.LOCK_NB)
		if err == nil {
			// Closing the file releases the flock.
			return func() { _ = f.Close() }, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) || how&unix.LOCK_EX != 0 {
			_ = f.Close()
			return nil, fmt.Errorf("lock %s: %w", d.lockPath, err)
		}
		select {
		case <-ctx.Done():
			_ = f.Close()
			return nil, fmt.Errorf("lock %s: %w", d.lockPath, ctx.Err())
		case <-time.After(delay):
		}
		delay = min(2*delay, 50*time.Millisecond)
	}
}

// Staging is a snapshot directory under construction, named new-* until
// [Staging.Rename] gives it its ID.
type Staging struct {
	dirs   *Dirs
	path   string
	unlock func()
	done   bool
}

// Stage takes the shared lock and creates an empty staging directory. The
// caller fills [Staging.Path], calls [Staging.Rename] inside the metadata
// transaction that records the snapshot, then [Staging.Done] once that
// transaction has committed. [Staging.Close] must always be called, and it
// removes the directory unless Done was called, and releases the lock.
func (d *Dirs) Stage(ctx context.Context) (*Staging, error) {
	unlock, err := d.Lock(ctx)
	if err != nil {
		return nil, err
	}
	path, err := os.MkdirTemp(d.dir, "new-")
	if err != nil {
		unlock()
		return nil, fmt.Errorf("create staging directory: %w", err)
	}
	return &Staging{dirs: d, path: path, unlock: unlock}, nil
}

// Path returns the directory's current path.
func (s *Staging) Path() string { return s.path }

// Rename moves the directory to the path of the snapshot id. A directory
// already there is a leftover of a crash between rename and commit, because
// id was handed out by the transaction in progress, so it is removed first.
func (s *Staging) Rename(id string) error {
	target := s.dirs.Path(id)
	err := os.Rename(s.path, target)
	if errors.Is(err, unix.EEXIST) || errors.Is(err, unix.ENOTEMPTY) {
		if err := RemoveAll(target); err != nil {
			return fmt.Errorf("remove leftover %s: %w", target, err)
		}
		err = os.Rename(s.path, target)
	}
	if err != nil {
		return fmt.Errorf("rename staging directory: %w", err)
	}
	s.path = target
	return nil
}

// Done marks the directory as recorded, so that Close keeps it.
func (s *Staging) Done() { s.done = true }

// Close removes the directory unless [Staging.Done] was called, and
// releases the lock. A failed removal is logged, and [Dirs.Recover] removes the
// directory later.
func (s *Staging) Close(ctx context.Context) {
	if !s.done {
		if err := RemoveAll(s.path); err != nil {
			log.G(ctx).Warn("remove staging directory", "path", s.path, "error", err)
		}
	}
	s.unlock()
}

// Delete removes the directory of the snapshot id, whose record the caller
// has removed while holding [Dirs.Lock]. It renames the directory to rm-*
// first, so that a crash part way leaves a name that [Dirs.Recover]
// removes and never a half-deleted snapshot under its ID. A directory that
// does not exist is no error.
func (d *Dirs) Delete(id string) error {
	path := d.Path(id)
	trash := filepath.Join(d.dir, "rm-"+id)
	if err := os.Rename(path, trash); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("rename %s for removal: %w", path, err)
	}
	return RemoveAll(trash)
}

// Recover removes leftovers of crashed processes: staging (new-*) and
// removal (rm-*) directories, and snapshot directories whose ID ms has no
// record of. It does so only when no other process holds [Dirs.Lock], and
// otherwise returns nil at once, leaving the work to a later call. It
// returns the paths it removed.
func (d *Dirs) Recover(ctx context.Context, ms *MetaStore) ([]string, error) {
	unlock, err := d.lock(ctx, unix.LOCK_EX)
	if errors.Is(err, unix.EWOULDBLOCK) {
		log.G(ctx).Debug("skip recovery while another process uses the root", "path", d.dir)
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer unlock()

	entries, err := os.ReadDir(d.dir)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", d.dir, err)
	}
	var ids map[string]string
	err = ms.View(ctx, func(ctx context.Context) error {
		ids, err = IDs(ctx)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("recover %s: %w", d.dir, err)
	}

	var removed []string
	for _, e := range entries {
		name := e.Name()
		leftover := strings.HasPrefix(name, "new-") || strings.HasPrefix(name, "rm-")
		if _, recorded := ids[name]; !leftover && (recorded || !isID(name)) {
			continue
		}
		path := filepath.Join(d.dir, name)
		if err := RemoveAll(path); err != nil {
			return removed, fmt.Errorf("recover %s: %w", d.dir, err)
		}
		log.G(ctx).Info("remove leftover snapshot directory", "path", path)
		removed = append(removed, path)
	}
	return removed, nil
}

func isID(name string) bool {
	if name == "" {
		return false
	}
	for _, c := range name {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

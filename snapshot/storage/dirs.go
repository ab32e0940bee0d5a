package storage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/strata-containers/strata/errdefs"
	"github.com/strata-containers/strata/internal/flock"
	"github.com/strata-containers/strata/log"
)

// Dirs manages the snapshot directories under one root.
type Dirs struct {
	dir     string
	lockDir string
}

// NewDirs returns the Dirs of root, creating <root>/snapshots and
// <root>/staging when needed.
func NewDirs(root string) (*Dirs, error) {
	d := &Dirs{dir: filepath.Join(root, "snapshots"), lockDir: filepath.Join(root, "staging")}
	for _, dir := range []string{d.dir, d.lockDir} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("create snapshots directory: %w", wrapNoSpace(err))
		}
	}
	return d, nil
}

// Path returns the directory of the snapshot id.
func (d *Dirs) Path(id string) string { return filepath.Join(d.dir, id) }

// Staging is a snapshot directory under construction, named new-<token>
// until [Staging.Rename] gives it its ID. The process building it holds a
// flock on <root>/staging/<token>.lock from before the directory exists
// until after it is renamed or removed, so [Dirs.Recover] in any process
// can tell a live staging directory from one a dead process left.
type Staging struct {
	dirs    *Dirs
	path    string
	lock    string
	unlock  func()
	renamed bool
	done    bool
}

// Stage creates an empty staging directory. The caller fills
// [Staging.Path], calls [Staging.Rename] inside the metadata transaction
// that records the snapshot, then [Staging.Done] once that transaction has
// committed. [Staging.Close] must always be called.
func (d *Dirs) Stage(ctx context.Context) (*Staging, error) {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("create staging directory: %w", err)
	}
	token := hex.EncodeToString(b[:])
	lock := filepath.Join(d.lockDir, token+".lock")
	unlock, ok, err := flock.TryLock(lock, true)
	if err != nil {
		return nil, fmt.Errorf("create staging directory: %w", wrapNoSpace(err))
	}
	if !ok {
		return nil, fmt.Errorf("create staging directory: lock %s is held: %w",
			lock, errdefs.ErrUnavailable)
	}
	path := filepath.Join(d.dir, "new-"+token)
	if err := os.Mkdir(path, 0o700); err != nil {
		_ = os.Remove(lock)
		unlock()
		return nil, fmt.Errorf("create staging directory: %w", wrapNoSpace(err))
	}
	return &Staging{dirs: d, path: path, lock: lock, unlock: unlock}, nil
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
	s.path, s.renamed = target, true
	return nil
}

// Done marks the directory as recorded, so that Close keeps it.
func (s *Staging) Done() { s.done = true }

// Close removes the directory unless [Staging.Done] was called, and
// releases its lock. A directory already renamed to its ID is left for
// [Dirs.Recover]: the transaction that failed after the rename did not use
// up the ID, so another process may have reused it by now. A failed
// removal is logged, and Recover removes the directory later.
func (s *Staging) Close(ctx context.Context) {
	if !s.done && !s.renamed {
		if err := RemoveAll(s.path); err != nil {
			log.G(ctx).Warn("remove staging directory", "path", s.path, "error", err)
		}
	}
	// The token is never used again, so no other process waits on this
	// file and it can go while still locked.
	if err := os.Remove(s.lock); err != nil && !errors.Is(err, os.ErrNotExist) {
		log.G(ctx).Warn("remove staging lock", "path", s.lock, "error", err)
	}
	s.unlock()
}

// Delete removes the directory of the snapshot id, whose record the caller
// has removed. It renames the directory to rm-* first, so that a crash part
// way leaves a name that [Dirs.Recover] removes and never a half-deleted
// snapshot under its ID. A directory that does not exist is no error.
func (d *Dirs) Delete(id string) error {
	path := d.Path(id)
	trash, err := d.trash(id)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("rename %s for removal: %w", path, err)
	}
	return RemoveAll(trash)
}

// trash renames the directory of id to a fresh rm-* name and returns it.
func (d *Dirs) trash(id string) (string, error) {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	trash := filepath.Join(d.dir, "rm-"+id+"-"+hex.EncodeToString(b[:]))
	if err := os.Rename(d.Path(id), trash); err != nil {
		return "", err
	}
	return trash, nil
}

// Leftovers lists what crashed processes left under the snapshots
// directory. It is what [Dirs.Recover] removes.
type Leftovers struct {
	// Staging are new-* directories whose builder is gone.
	Staging []string
	// Trash are rm-* directories of removals that did not finish.
	Trash []string
	// Orphans are <id> directories that no record names.
	Orphans []string
}

// FindLeftovers lists the leftovers of crashed processes without removing
// anything. It holds a read transaction on ms while it compares the
// directories with the records: no process can be between renaming a
// staging directory to its ID and committing the record meanwhile, because
// bbolt keeps readers out while a write transaction is open.
func (d *Dirs) FindLeftovers(ctx context.Context, ms *MetaStore) (Leftovers, error) {
	var lo Leftovers
	err := ms.View(ctx, func(ctx context.Context) error {
		var err error
		lo, err = d.findLeftovers(ctx, func(string) error { return nil })
		return err
	})
	return lo, err
}

// findLeftovers runs inside a read transaction and calls orphan on every
// <id> directory without a record before it lists it.
func (d *Dirs) findLeftovers(ctx context.Context, orphan func(id string) error) (Leftovers, error) {
	var lo Leftovers
	ids, err := IDs(ctx)
	if err != nil {
		return lo, err
	}
	entries, err := os.ReadDir(d.dir)
	if err != nil {
		return lo, fmt.Errorf("read %s: %w", d.dir, err)
	}
	for _, e := range entries {
		name := e.Name()
		path := filepath.Join(d.dir, name)
		switch {
		case strings.HasPrefix(name, "new-"):
			live, err := d.stagingLive(name)
			if err != nil {
				return lo, err
			}
			if !live {
				lo.Staging = append(lo.Staging, path)
			}
		case strings.HasPrefix(name, "rm-"):
			lo.Trash = append(lo.Trash, path)
		case isID(name):
			if _, recorded := ids[name]; recorded {
				continue
			}
			if err := orphan(name); err != nil {
				return lo, err
			}
			lo.Orphans = append(lo.Orphans, path)
		}
	}
	return lo, nil
}

// stagingLive reports whether a process still holds the lock of the
// staging directory name. A directory without a lock file is dead: the
// builder creates the lock file first and removes it last.
func (d *Dirs) stagingLive(name string) (bool, error) {
	lock := filepath.Join(d.lockDir, strings.TrimPrefix(name, "new-")+".lock")
	unlock, free, err := flock.TryLock(lock, false)
	if err != nil {
		return false, err
	}
	if unlock != nil {
		unlock()
	}
	return !free, nil
}

// Recover removes leftovers of crashed processes: staging (new-*)
// directories whose builder is gone, removal (rm-*) directories, and
// snapshot directories whose ID ms has no record of. It is safe while other
// processes use the root. It returns the paths it removed.
func (d *Dirs) Recover(ctx context.Context, ms *MetaStore) ([]string, error) {
	// Orphans are renamed to rm-* while the read transaction keeps writers
	// out, and emptied after it, so that a large orphan does not hold up
	// every writer on the root.
	var (
		lo      Leftovers
		trashed []string
	)
	err := ms.View(ctx, func(ctx context.Context) error {
		var err error
		trashed = nil
		lo, err = d.findLeftovers(ctx, func(id string) error {
			trash, err := d.trash(id)
			if errors.Is(err, os.ErrNotExist) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("rename orphan %s for removal: %w", d.Path(id), err)
			}
			trashed = append(trashed, trash)
			return nil
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("recover %s: %w", d.dir, err)
	}

	var removed []string
	for _, path := range slices.Concat(lo.Staging, lo.Trash, trashed) {
		if err := RemoveAll(path); err != nil {
			return removed, fmt.Errorf("recover %s: %w", d.dir, err)
		}
		log.G(ctx).Info("remove leftover snapshot directory", "path", path)
		removed = append(removed, path)
	}
	for _, path := range lo.Staging {
		token := strings.TrimPrefix(filepath.Base(path), "new-")
		if err := os.Remove(filepath.Join(d.lockDir, token+".lock")); err != nil &&
			!errors.Is(err, os.ErrNotExist) {
			log.G(ctx).Warn("remove staging lock", "path", path, "error", err)
		}
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

// wrapNoSpace adds errdefs.ErrNoSpace to err when the file system is full
// or the quota is used up.
func wrapNoSpace(err error) error {
	return translate(err)
}

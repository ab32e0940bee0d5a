package local

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/strata-containers/strata/errdefs"
	"github.com/strata-containers/strata/log"
)

// lockPoll is how often a waiting writer retries a held ingest lock.
const lockPoll = 50 * time.Millisecond

// lockIngest creates dir when needed and takes the flock on its lock file,
// retrying for up to wait. It returns an error wrapping
// errdefs.ErrUnavailable while another open file holds the lock.
func lockIngest(ctx context.Context, dir string, wait time.Duration) (*os.File, error) {
	deadline := time.Now().Add(wait)
	for {
		f, err := tryLock(dir, true)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, errdefs.ErrUnavailable) || time.Now().After(deadline) {
			return nil, err
		}
		t := time.NewTimer(lockPoll)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("lock ingest %s: %w: %w", dir, errdefs.ErrUnavailable, ctx.Err())
		case <-t.C:
		}
	}
}

// tryLock takes the flock on dir's lock file without waiting. A writer that
// finishes removes the whole directory, so tryLock then checks that the
// file it locked is still the one at the path, and tries again when it is
// not. With create false, a missing directory returns an error wrapping
// fs.ErrNotExist.
func tryLock(dir string, create bool) (*os.File, error) {
	path := filepath.Join(dir, "lock")
	for {
		if create {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return nil, fmt.Errorf("create ingest %s: %w", dir, wrapNoSpace(err))
			}
		}
		flags := os.O_RDWR
		if create {
			flags |= os.O_CREATE
		}
		f, err := os.OpenFile(path, flags, 0o644)
		if errors.Is(err, fs.ErrNotExist) && create {
			continue // removed between MkdirAll and OpenFile
		}
		if err != nil {
			return nil, fmt.Errorf("open ingest lock %s: %w", path, wrapNoSpace(err))
		}

		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock ingest %s: locked by another writer: %w", dir, errdefs.ErrUnavailable)
		}
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("lock ingest %s: %w", dir, err)
		}

		held, herr := f.Stat()
		cur, cerr := os.Stat(path)
		if herr == nil && cerr == nil && os.SameFile(held, cur) {
			return f, nil
		}
		f.Close()
		if !create && errors.Is(cerr, fs.ErrNotExist) {
			return nil, cerr
		}
	}
}

// RemoveStaleIngests removes every ingest that no writer holds and that has
// not been written to for olderThan, and returns how many it removed. Such
// ingests are left by processes that were killed or that closed a writer
// without committing. Pass 0 to remove every idle ingest; that also discards
// partial data a later writer of the same ref could have resumed.
func (s *Store) RemoveStaleIngests(ctx context.Context, olderThan time.Duration) (int, error) {
	return s.staleIngests(ctx, olderThan, true)
}

// StaleIngests returns how many ingests [Store.RemoveStaleIngests] would
// remove, removing none.
func (s *Store) StaleIngests(ctx context.Context, olderThan time.Duration) (int, error) {
	return s.staleIngests(ctx, olderThan, false)
}

func (s *Store) staleIngests(ctx context.Context, olderThan time.Duration, remove bool) (int, error) {
	ingest := filepath.Join(s.root, "ingest")
	entries, err := os.ReadDir(ingest)
	if err != nil {
		return 0, fmt.Errorf("list ingests in %s: %w", ingest, err)
	}
	cutoff := time.Now().Add(-olderThan)
	removed := 0
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return removed, err
		}
		if !e.IsDir() {
			continue
		}
		dir := filepath.Join(ingest, e.Name())
		ok, err := s.removeIfStale(dir, cutoff, remove)
		if err != nil {
			return removed, err
		}
		if ok {
			if remove {
				log.G(ctx).Debug("remove stale ingest", "path", dir)
			}
			removed++
		}
	}
	return removed, nil
}

// removeIfStale reports whether dir is a stale ingest, and with remove
// removes it.
func (s *Store) removeIfStale(dir string, cutoff time.Time, remove bool) (bool, error) {
	lock, err := tryLock(dir, false)
	if errors.Is(err, errdefs.ErrUnavailable) {
		return false, nil // a live writer holds it
	}
	if errors.Is(err, fs.ErrNotExist) {
		// No lock file: a directory torn by a crash before the lock was
		// created, or one removed just now by its writer.
		fi, serr := os.Stat(dir)
		if serr != nil || fi.ModTime().After(cutoff) {
			return false, nil
		}
		return true, removeAll(dir, remove)
	}
	if err != nil {
		return false, err
	}
	defer lock.Close()

	last, err := lastWrite(dir)
	if err != nil || last.After(s.cutoffFor(dir, cutoff)) {
		return false, err
	}
	return true, removeAll(dir, remove)
}

// cutoffFor returns the time before which the idle ingest in dir is stale:
// cutoff, or an earlier time when its ref is resumable.
func (s *Store) cutoffFor(dir string, cutoff time.Time) time.Time {
	if len(s.cfg.resumable) == 0 {
		return cutoff
	}
	b, err := os.ReadFile(filepath.Join(dir, "ref"))
	if err != nil {
		return cutoff
	}
	var rec ingestRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return cutoff
	}
	for _, r := range s.cfg.resumable {
		if strings.HasPrefix(rec.Ref, r.prefix) {
			if c := time.Now().Add(-r.window); c.Before(cutoff) {
				return c
			}
		}
	}
	return cutoff
}

// lastWrite returns the newest modification time of dir's data and ref
// files, or of dir itself when they do not exist.
func lastWrite(dir string) (time.Time, error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return time.Time{}, fmt.Errorf("stat ingest %s: %w", dir, err)
	}
	last := fi.ModTime()
	for _, name := range []string{"data", "ref"} {
		if fi, err := os.Stat(filepath.Join(dir, name)); err == nil && fi.ModTime().After(last) {
			last = fi.ModTime()
		}
	}
	return last, nil
}

func removeAll(dir string, remove bool) error {
	if !remove {
		return nil
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove stale ingest %s: %w", dir, err)
	}
	return nil
}

// Package boltdb opens a bbolt file for the length of one transaction.
//
// bbolt takes an exclusive flock on its file for as long as it is open for
// writing, so a process that kept the file open would shut out every other
// strata process on the same root. [DB] instead opens the file, runs one
// transaction and closes it again, so that many processes share a root and
// none holds the database while it extracts a layer.
package boltdb

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/strata-containers/strata/errdefs"
	"github.com/strata-containers/strata/internal/flock"
)

// DefaultTimeout is how long a transaction waits for another process to
// release the file before it fails.
const DefaultTimeout = 60 * time.Second

// DB is a bbolt file opened per transaction. The zero value is not usable;
// call [New].
type DB struct {
	path    string
	timeout time.Duration
	init    func(tx *bolt.Tx) error
}

// New returns a DB for the file at path, creating its directory when needed.
// init, when not nil, runs in every write transaction before the caller's
// function, to create buckets.
func New(path string, init func(tx *bolt.Tx) error) (*DB, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create metadata directory: %w", err)
	}
	return &DB{path: path, timeout: DefaultTimeout, init: init}, nil
}

// Path returns the file's path.
func (db *DB) Path() string { return db.path }

// Update runs fn in a read-write transaction and commits it when fn returns
// nil.
func (db *DB) Update(ctx context.Context, fn func(tx *bolt.Tx) error) error {
	b, err := db.open(ctx, false)
	if err != nil {
		return err
	}
	err = b.Update(func(tx *bolt.Tx) error {
		if db.init != nil {
			if err := db.init(tx); err != nil {
				return err
			}
		}
		return fn(tx)
	})
	if cerr := b.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("close %s: %w", db.path, cerr)
	}
	return err
}

// View runs fn in a read-only transaction. A file that does not exist yet
// reads as empty: fn gets a transaction with no buckets.
func (db *DB) View(ctx context.Context, fn func(tx *bolt.Tx) error) error {
	if db.uninitialised() {
		// Create the file so that readers and writers see one schema.
		if err := db.Update(ctx, func(*bolt.Tx) error { return nil }); err != nil {
			return err
		}
	}
	b, err := db.open(ctx, true)
	if err != nil && db.uninitialised() {
		// Another process created the file but had not taken its lock
		// yet, and a read-only open cannot write the first pages of an
		// empty file. A read-write open waits for that process's lock.
		if err := db.Update(ctx, func(*bolt.Tx) error { return nil }); err != nil {
			return err
		}
		b, err = db.open(ctx, true)
	}
	if err != nil {
		return err
	}
	err = b.View(fn)
	if cerr := b.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("close %s: %w", db.path, cerr)
	}
	return err
}

// uninitialised reports whether the file is missing or empty, as a writer
// that has just created it leaves it until it holds its lock.
func (db *DB) uninitialised() bool {
	fi, err := os.Stat(db.path)
	return errors.Is(err, os.ErrNotExist) || (err == nil && fi.Size() == 0)
}

func (db *DB) open(ctx context.Context, readOnly bool) (*bolt.DB, error) {
	timeout := db.timeout
	if deadline, ok := ctx.Deadline(); ok {
		if d := time.Until(deadline); d < timeout {
			timeout = max(d, time.Millisecond)
		}
	}
	deadline := time.Now().Add(timeout)
	b, err := bolt.Open(db.path, 0o600, &bolt.Options{
		Timeout:  timeout,
		ReadOnly: readOnly,
		OpenFile: func(name string, flag int, perm os.FileMode) (*os.File, error) {
			return openLocked(ctx, name, flag, perm, !readOnly, deadline)
		},
	})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("open %s: timed out after %s waiting for another process to release it: %w",
			db.path, timeout, errdefs.ErrUnavailable)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", db.path, err)
	}
	return b, nil
}

// openLocked opens the file for bbolt and takes the flock that bbolt then
// takes again on the same descriptor, which succeeds at once. bbolt's own
// loop sleeps 50 ms between two tries, which an unpack paid whenever it
// started igzip while another goroutine had the file open: the child
// inherits the open descriptor, and with it the lock, until it executes.
// [flock.LockFile] tries again after 1 ms, doubling the wait up to 50 ms.
// At deadline openLocked returns bbolt's timeout error.
func openLocked(ctx context.Context, name string, flag int, perm os.FileMode,
	exclusive bool, deadline time.Time,
) (*os.File, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	lockType := unix.LOCK_SH
	if exclusive {
		lockType = unix.LOCK_EX
	}
	lctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	if err := flock.LockFile(lctx, f, lockType); err != nil {
		f.Close()
		// A deadline, the caller's or the timeout's, is a timeout; a
		// cancelled context is reported as it is.
		if errors.Is(lctx.Err(), context.DeadlineExceeded) {
			return nil, berrors.ErrTimeout
		}
		return nil, err
	}
	return f, nil
}

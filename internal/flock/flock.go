// Package flock takes advisory flock(2) locks on files, waiting for them
// with a context.
//
// The kernel drops a flock when the process holding it dies, so a lock left
// by a killed process never blocks the next one.
package flock

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// Lock opens or creates the file at path and takes an exclusive lock on it,
// polling until it is free or ctx ends. The returned function releases the
// lock and closes the file.
func Lock(ctx context.Context, path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	if err := LockFile(ctx, f, unix.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil
}

// LockFile takes a lock of lockType, unix.LOCK_SH or unix.LOCK_EX, on the
// open file f, trying again after a wait that doubles from 1 ms to 50 ms
// until the lock is free or ctx ends. Closing f releases the lock.
func LockFile(ctx context.Context, f *os.File, lockType int) error {
	wait := time.Millisecond
	for {
		err := unix.Flock(int(f.Fd()), lockType|unix.LOCK_NB)
		if err == nil {
			return nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			return fmt.Errorf("lock %s: %w", f.Name(), err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for lock %s: %w", f.Name(), ctx.Err())
		case <-time.After(wait):
		}
		wait = min(wait*2, 50*time.Millisecond)
	}
}

// TryLock takes the exclusive lock on the file at path without waiting. It
// reports false, with a nil error, when another open file holds the lock.
// With create false, a missing file is reported as free: unlock is nil and
// ok is true, because no process can hold a lock on a file that does not
// exist.
func TryLock(path string, create bool) (unlock func(), ok bool, err error) {
	flags := os.O_RDWR
	if create {
		flags |= os.O_CREATE
	}
	f, err := os.OpenFile(path, flags, 0o600)
	if errors.Is(err, os.ErrNotExist) && !create {
		return nil, true, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("open lock file: %w", err)
	}
	err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	if errors.Is(err, unix.EWOULDBLOCK) {
		f.Close()
		return nil, false, nil
	}
	if err != nil {
		f.Close()
		return nil, false, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { f.Close() }, true, nil
}

package boltdb

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"

	"github.com/strata-containers/strata/errdefs"
)

var bucket = []byte("b")

func newDB(t *testing.T) *DB {
	t.Helper()
	db, err := New(filepath.Join(t.TempDir(), "meta", "metadata.db"), func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucket)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// holdLock takes a flock of lockType on the file from a descriptor of its own, as another
// process or a child that inherited a descriptor would, and returns the
// function that releases it.
func holdLock(t *testing.T, path string, lockType int) func() {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Flock(int(f.Fd()), lockType); err != nil {
		t.Fatal(err)
	}
	return func() { f.Close() }
}

func put(ctx context.Context, db *DB, key, value string) error {
	return db.Update(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(bucket).Put([]byte(key), []byte(value))
	})
}

func get(t *testing.T, db *DB, key string) string {
	t.Helper()
	var v string
	err := db.View(context.Background(), func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucket); b != nil {
			v = string(b.Get([]byte(key)))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestUpdateThenView(t *testing.T) {
	db := newDB(t)
	if got := get(t, db, "k"); got != "" {
		t.Fatalf("empty database: got %q", got)
	}
	if err := put(context.Background(), db, "k", "v"); err != nil {
		t.Fatal(err)
	}
	if got := get(t, db, "k"); got != "v" {
		t.Fatalf("got %q, want %q", got, "v")
	}
}

// TestUpdateWaitsForLock checks that a write transaction waits for a lock
// held on another descriptor and runs once it is released.
func TestUpdateWaitsForLock(t *testing.T) {
	db := newDB(t)
	if err := put(context.Background(), db, "k", "old"); err != nil {
		t.Fatal(err)
	}
	for name, lockType := range map[string]int{"shared": unix.LOCK_SH, "exclusive": unix.LOCK_EX} {
		t.Run(name, func(t *testing.T) {
			release := holdLock(t, db.Path(), lockType)
			done := make(chan error, 1)
			go func() { done <- put(context.Background(), db, "k", name) }()
			select {
			case err := <-done:
				release()
				t.Fatalf("update ran while the lock was held (error %v)", err)
			case <-time.After(30 * time.Millisecond):
			}
			release()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if got := get(t, db, "k"); got != name {
				t.Fatalf("got %q, want %q", got, name)
			}
		})
	}
}

// TestViewSharesLock checks that a read transaction runs beside another
// reader's shared lock.
func TestViewSharesLock(t *testing.T) {
	db := newDB(t)
	if err := put(context.Background(), db, "k", "v"); err != nil {
		t.Fatal(err)
	}
	release := holdLock(t, db.Path(), unix.LOCK_SH)
	defer release()
	if got := get(t, db, "k"); got != "v" {
		t.Fatalf("got %q, want %q", got, "v")
	}
}

// TestUpdateTimesOut checks that a lock held past the context's deadline
// fails the transaction as unavailable.
func TestUpdateTimesOut(t *testing.T) {
	db := newDB(t)
	if err := put(context.Background(), db, "k", "v"); err != nil {
		t.Fatal(err)
	}
	release := holdLock(t, db.Path(), unix.LOCK_EX)
	defer release()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := put(ctx, db, "k", "w")
	if !errors.Is(err, errdefs.ErrUnavailable) {
		t.Fatalf("error %v, want %v", err, errdefs.ErrUnavailable)
	}
}

// TestUpdateCanceled checks that a transaction whose context is cancelled
// while it waits for the lock fails with the cancellation, not as
// unavailable.
func TestUpdateCanceled(t *testing.T) {
	db := newDB(t)
	if err := put(context.Background(), db, "k", "v"); err != nil {
		t.Fatal(err)
	}
	release := holdLock(t, db.Path(), unix.LOCK_EX)
	defer release()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	err := put(ctx, db, "k", "w")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want %v", err, context.Canceled)
	}
	if errors.Is(err, errdefs.ErrUnavailable) {
		t.Errorf("error %v wraps %v", err, errdefs.ErrUnavailable)
	}
}

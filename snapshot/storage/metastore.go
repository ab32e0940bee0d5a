package storage

import (
	"context"
	"errors"
	"fmt"
	"syscall"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/strata-containers/strata/errdefs"
	"github.com/strata-containers/strata/internal/boltdb"
	"github.com/strata-containers/strata/snapshot"
)

var (
	bucketRoot      = []byte("v1")
	bucketSnapshots = []byte("snapshots")
	bucketParents   = []byte("parents")
	bucketLabels    = []byte("labels")

	keyID      = []byte("id")
	keyKind    = []byte("kind")
	keyParent  = []byte("parent")
	keyCreated = []byte("created")
	keyUpdated = []byte("updated")
	keyInodes  = []byte("inodes")
	keySize    = []byte("size")
)

// MetaStore stores snapshot metadata in a bbolt file that it opens for each
// transaction.
type MetaStore struct {
	db *boltdb.DB
}

// NewMetaStore returns a MetaStore for the bbolt file at path. The file is
// created on the first transaction.
func NewMetaStore(path string) (*MetaStore, error) {
	db, err := boltdb.New(path, initBuckets)
	if err != nil {
		return nil, err
	}
	return &MetaStore{db: db}, nil
}

// Path returns the path of the bbolt file.
func (ms *MetaStore) Path() string { return ms.db.Path() }

// Update runs fn in a read-write transaction, which fn's context carries,
// and commits it when fn returns nil.
func (ms *MetaStore) Update(ctx context.Context, fn func(ctx context.Context) error) error {
	err := ms.db.Update(ctx, func(tx *bolt.Tx) error {
		return fn(context.WithValue(ctx, txKey{}, tx))
	})
	return translate(err)
}

// View runs fn in a read-only transaction, which fn's context carries.
func (ms *MetaStore) View(ctx context.Context, fn func(ctx context.Context) error) error {
	err := ms.db.View(ctx, func(tx *bolt.Tx) error {
		return fn(context.WithValue(ctx, txKey{}, tx))
	})
	return translate(err)
}

// Info returns the ID, info and recorded usage of the snapshot key, in a
// read transaction of its own. The usage is zero unless the snapshot is
// committed.
func (ms *MetaStore) Info(ctx context.Context, key string) (string, snapshot.Info, snapshot.Usage, error) {
	var (
		id    string
		info  snapshot.Info
		usage snapshot.Usage
	)
	err := ms.View(ctx, func(ctx context.Context) error {
		var err error
		id, info, usage, err = GetInfo(ctx, key)
		return err
	})
	return id, info, usage, err
}

// Snapshot returns the IDs and kind of the snapshot key, in a read
// transaction of its own.
func (ms *MetaStore) Snapshot(ctx context.Context, key string) (Snapshot, error) {
	var sn Snapshot
	err := ms.View(ctx, func(ctx context.Context) error {
		var err error
		sn, err = GetSnapshot(ctx, key)
		return err
	})
	return sn, err
}

type txKey struct{}

// transaction returns the bbolt transaction that ctx carries.
func transaction(ctx context.Context) (*bolt.Tx, error) {
	tx, ok := ctx.Value(txKey{}).(*bolt.Tx)
	if !ok || tx == nil {
		return nil, fmt.Errorf("use metadata: context carries no transaction: %w",
			errdefs.ErrFailedPrecondition)
	}
	return tx, nil
}

func initBuckets(tx *bolt.Tx) error {
	root, err := tx.CreateBucketIfNotExists(bucketRoot)
	if err != nil {
		return err
	}
	if _, err := root.CreateBucketIfNotExists(bucketSnapshots); err != nil {
		return err
	}
	_, err = root.CreateBucketIfNotExists(bucketParents)
	return err
}

// buckets returns the snapshots and parents buckets. In a read-only
// transaction on a file that predates them they are nil.
func buckets(tx *bolt.Tx) (snapshots, parents *bolt.Bucket) {
	root := tx.Bucket(bucketRoot)
	if root == nil {
		return nil, nil
	}
	return root.Bucket(bucketSnapshots), root.Bucket(bucketParents)
}

// translate adds the errdefs class to an error from bbolt, keeping its text.
// Errors that already carry a class pass unchanged.
func translate(err error) error {
	if err == nil {
		return nil
	}
	var class error
	switch {
	case errors.Is(err, berrors.ErrKeyRequired),
		errors.Is(err, berrors.ErrKeyTooLarge),
		errors.Is(err, berrors.ErrValueTooLarge),
		errors.Is(err, berrors.ErrBucketNameRequired),
		errors.Is(err, berrors.ErrIncompatibleValue):
		class = errdefs.ErrInvalidArgument
	case errors.Is(err, berrors.ErrTxNotWritable),
		errors.Is(err, berrors.ErrDatabaseReadOnly),
		errors.Is(err, berrors.ErrTxClosed):
		class = errdefs.ErrFailedPrecondition
	case errors.Is(err, berrors.ErrBucketExists):
		class = errdefs.ErrAlreadyExists
	case errors.Is(err, berrors.ErrBucketNotFound):
		class = errdefs.ErrNotFound
	case errors.Is(err, syscall.ENOSPC):
		class = errdefs.ErrNoSpace
	default:
		return err
	}
	if errors.Is(err, class) {
		return err
	}
	return fmt.Errorf("%w: %w", class, err)
}

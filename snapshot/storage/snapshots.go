package storage

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/strata-containers/strata/errdefs"
	"github.com/strata-containers/strata/snapshot"
)

// Snapshot is the part of a snapshot record that a snapshotter needs to
// find the snapshot's directories.
type Snapshot struct {
	// ID names the snapshot's directory. It is a decimal number.
	ID string
	// Kind is the snapshot's kind.
	Kind snapshot.Kind
	// ParentIDs are the IDs of all ancestors, the parent first.
	ParentIDs []string
}

// CreateSnapshot records a new active snapshot or view key on the committed
// snapshot parent, or on nothing when parent is empty, and returns its ID
// and its ancestors' IDs. It needs a read-write transaction in ctx.
func CreateSnapshot(ctx context.Context, kind snapshot.Kind, key, parent string,
	opts ...snapshot.Opt,
) (Snapshot, error) {
	return createSnapshot(ctx, kind, key, parent, false, opts)
}

// CreateSnapshotOnActive records a new active snapshot key on the active
// snapshot parent, as [snapshot.ActivePreparer] describes: the child can
// be committed only after the parent is, and [CommitActive] of the parent
// renames the child's parent. It needs a read-write transaction in ctx.
func CreateSnapshotOnActive(ctx context.Context, key, parent string, opts ...snapshot.Opt,
) (Snapshot, error) {
	if parent == "" {
		return Snapshot{}, fmt.Errorf("create snapshot %s on an active parent: no parent: %w",
			key, errdefs.ErrInvalidArgument)
	}
	return createSnapshot(ctx, snapshot.KindActive, key, parent, true, opts)
}

func createSnapshot(ctx context.Context, kind snapshot.Kind, key, parent string,
	activeParent bool, opts []snapshot.Opt,
) (Snapshot, error) {
	if kind != snapshot.KindActive && kind != snapshot.KindView {
		return Snapshot{}, fmt.Errorf("create snapshot %s of kind %s: %w",
			key, kind, errdefs.ErrInvalidArgument)
	}
	if err := checkKey(key); err != nil {
		return Snapshot{}, fmt.Errorf("create snapshot: %w", err)
	}
	tx, err := transaction(ctx)
	if err != nil {
		return Snapshot{}, err
	}
	snapshots, parents := buckets(tx)
	if snapshots == nil {
		return Snapshot{}, fmt.Errorf("create snapshot %s: %w", key, errdefs.ErrFailedPrecondition)
	}
	if snapshots.Bucket([]byte(key)) != nil {
		return Snapshot{}, fmt.Errorf("create snapshot %s: %w", key, errdefs.ErrAlreadyExists)
	}

	s := Snapshot{Kind: kind}
	var parentID uint64
	if parent != "" {
		pb := snapshots.Bucket([]byte(parent))
		if pb == nil {
			return Snapshot{}, fmt.Errorf("create snapshot %s: parent %s: %w",
				key, parent, errdefs.ErrNotFound)
		}
		if err := checkParentKind(key, parent, readKind(pb), activeParent); err != nil {
			return Snapshot{}, err
		}
		if parentID, err = readID(pb); err != nil {
			return Snapshot{}, fmt.Errorf("create snapshot %s: parent %s: %w", key, parent, err)
		}
		ancestors, err := ancestorIDs(snapshots, pb)
		if err != nil {
			return Snapshot{}, fmt.Errorf("create snapshot %s: %w", key, err)
		}
		s.ParentIDs = append([]string{formatID(parentID)}, ancestors...)
	}

	info := snapshot.Info{}
	for _, opt := range opts {
		if err := opt(&info); err != nil {
			return Snapshot{}, fmt.Errorf("create snapshot %s: %w", key, err)
		}
	}
	now := time.Now().UTC()
	info.Kind, info.Parent, info.Created, info.Updated = kind, parent, now, now

	id, err := snapshots.NextSequence()
	if err != nil {
		return Snapshot{}, fmt.Errorf("create snapshot %s: allocate id: %w", key, err)
	}
	if err := putSnapshot(snapshots, key, id, info, snapshot.Usage{}); err != nil {
		return Snapshot{}, fmt.Errorf("create snapshot %s: %w", key, err)
	}
	if parent != "" {
		if err := parents.Put(parentKey(parentID, id), []byte(key)); err != nil {
			return Snapshot{}, fmt.Errorf("create snapshot %s: index parent: %w", key, err)
		}
	}
	s.ID = formatID(id)
	return s, nil
}

// checkParentKind returns an error unless a snapshot of kind may be the
// parent of key: a committed one, or with activeParent an active one.
func checkParentKind(key, parent string, kind snapshot.Kind, activeParent bool) error {
	if activeParent {
		if kind != snapshot.KindActive {
			return fmt.Errorf("create snapshot %s: parent %s is %s, not active: %w",
				key, parent, kind, errdefs.ErrFailedPrecondition)
		}
		return nil
	}
	if kind != snapshot.KindCommitted {
		return fmt.Errorf("create snapshot %s: parent %s is %s, not committed: %w",
			key, parent, kind, errdefs.ErrFailedPrecondition)
	}
	return nil
}

// GetSnapshot returns the ID, kind and ancestors' IDs of the snapshot key.
func GetSnapshot(ctx context.Context, key string) (Snapshot, error) {
	tx, err := transaction(ctx)
	if err != nil {
		return Snapshot{}, err
	}
	b, err := snapshotBucket(tx, key)
	if err != nil {
		return Snapshot{}, fmt.Errorf("get snapshot: %w", err)
	}
	id, err := readID(b)
	if err != nil {
		return Snapshot{}, fmt.Errorf("get snapshot %s: %w", key, err)
	}
	snapshots, _ := buckets(tx)
	ancestors, err := ancestorIDs(snapshots, b)
	if err != nil {
		return Snapshot{}, fmt.Errorf("get snapshot %s: %w", key, err)
	}
	return Snapshot{ID: formatID(id), Kind: readKind(b), ParentIDs: ancestors}, nil
}

// GetInfo returns the ID, info and usage of the snapshot key. The usage is
// the one recorded at commit, and zero for a snapshot that is not committed.
func GetInfo(ctx context.Context, key string) (string, snapshot.Info, snapshot.Usage, error) {
	tx, err := transaction(ctx)
	if err != nil {
		return "", snapshot.Info{}, snapshot.Usage{}, err
	}
	b, err := snapshotBucket(tx, key)
	if err != nil {
		return "", snapshot.Info{}, snapshot.Usage{}, fmt.Errorf("get info: %w", err)
	}
	id, err := readID(b)
	if err != nil {
		return "", snapshot.Info{}, snapshot.Usage{}, fmt.Errorf("get info %s: %w", key, err)
	}
	info, err := readInfo(key, b)
	if err != nil {
		return "", snapshot.Info{}, snapshot.Usage{}, fmt.Errorf("get info %s: %w", key, err)
	}
	return formatID(id), info, readUsage(b), nil
}

// CommitActive turns the active snapshot key into the committed snapshot
// name, keeping its ID, and records usage for it. The committed snapshot
// gets only the labels set by opts, and the active snapshot's labels are dropped. It
// returns the ID. A snapshot whose parent is not committed yet fails with
// ErrFailedPrecondition, and active children prepared on key by
// [CreateSnapshotOnActive] get name as their parent.
func CommitActive(ctx context.Context, key, name string, usage snapshot.Usage,
	opts ...snapshot.Opt,
) (string, error) {
	if err := checkKey(name); err != nil {
		return "", fmt.Errorf("commit snapshot %s: %w", key, err)
	}
	tx, err := transaction(ctx)
	if err != nil {
		return "", err
	}
	b, err := snapshotBucket(tx, key)
	if err != nil {
		return "", fmt.Errorf("commit snapshot: %w", err)
	}
	if k := readKind(b); k != snapshot.KindActive {
		return "", fmt.Errorf("commit snapshot %s: it is %s, not active: %w",
			key, k, errdefs.ErrFailedPrecondition)
	}
	snapshots, _ := buckets(tx)
	if snapshots.Bucket([]byte(name)) != nil {
		return "", fmt.Errorf("commit snapshot %s as %s: %w", key, name, errdefs.ErrAlreadyExists)
	}
	id, err := readID(b)
	if err != nil {
		return "", fmt.Errorf("commit snapshot %s: %w", key, err)
	}
	if parent := b.Get(keyParent); len(parent) > 0 {
		if pb := snapshots.Bucket(parent); pb != nil && readKind(pb) != snapshot.KindCommitted {
			return "", fmt.Errorf("commit snapshot %s: parent %s is %s, not committed: %w",
				key, parent, readKind(pb), errdefs.ErrFailedPrecondition)
		}
	}
	children, err := childKeys(tx, id)
	if err != nil {
		return "", fmt.Errorf("commit snapshot %s: %w", key, err)
	}

	info := snapshot.Info{}
	for _, opt := range opts {
		if err := opt(&info); err != nil {
			return "", fmt.Errorf("commit snapshot %s: %w", key, err)
		}
	}
	now := time.Now().UTC()
	info.Kind, info.Parent, info.Created, info.Updated = snapshot.KindCommitted,
		string(b.Get(keyParent)), now, now

	if err := snapshots.DeleteBucket([]byte(key)); err != nil {
		return "", fmt.Errorf("commit snapshot %s: delete active record: %w", key, err)
	}
	if err := putSnapshot(snapshots, name, id, info, usage); err != nil {
		return "", fmt.Errorf("commit snapshot %s as %s: %w", key, name, err)
	}
	for _, child := range children {
		if err := snapshots.Bucket([]byte(child)).Put(keyParent, []byte(name)); err != nil {
			return "", fmt.Errorf("commit snapshot %s: set parent of %s: %w", key, child, err)
		}
	}
	if err := reindexChild(tx, string(info.Parent), id, name); err != nil {
		return "", fmt.Errorf("commit snapshot %s: %w", key, err)
	}
	return formatID(id), nil
}

// reindexChild sets the parents index entry of the snapshot with the ID
// id, under its parent, to name: the snapshot's key after its commit.
func reindexChild(tx *bolt.Tx, parent string, id uint64, name string) error {
	if parent == "" {
		return nil
	}
	snapshots, parents := buckets(tx)
	pb := snapshots.Bucket([]byte(parent))
	if pb == nil {
		return fmt.Errorf("parent %s: %w", parent, errdefs.ErrNotFound)
	}
	parentID, err := readID(pb)
	if err != nil {
		return fmt.Errorf("parent %s: %w", parent, err)
	}
	if err := parents.Put(parentKey(parentID, id), []byte(name)); err != nil {
		return fmt.Errorf("index parent %s: %w", parent, err)
	}
	return nil
}

// childKeys returns the keys of the snapshots whose parent has the ID id.
// The parents index contains each child's key. An entry written by an
// older strata has an empty value, which a scan of every record resolves.
func childKeys(tx *bolt.Tx, id uint64) ([]string, error) {
	snapshots, parents := buckets(tx)
	prefix := parentKey(id, 0)[:8]
	var keys []string
	unresolved := map[uint64]bool{}
	c := parents.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		childID := binary.BigEndian.Uint64(k[8:])
		if cb := snapshots.Bucket(v); len(v) > 0 && cb != nil {
			if got, err := readID(cb); err == nil && got == childID {
				keys = append(keys, string(v))
				continue
			}
		}
		unresolved[childID] = true
	}
	if len(unresolved) == 0 {
		return keys, nil
	}
	err := snapshots.ForEachBucket(func(k []byte) error {
		childID, err := readID(snapshots.Bucket(k))
		if err != nil {
			return fmt.Errorf("find children: %s: %w", k, err)
		}
		if unresolved[childID] {
			keys = append(keys, string(k))
		}
		return nil
	})
	return keys, err
}

// Remove deletes the record of the snapshot key and returns its ID and kind.
// A snapshot that has children is kept and ErrFailedPrecondition returned.
func Remove(ctx context.Context, key string) (string, snapshot.Kind, error) {
	tx, err := transaction(ctx)
	if err != nil {
		return "", snapshot.KindUnknown, err
	}
	b, err := snapshotBucket(tx, key)
	if err != nil {
		return "", snapshot.KindUnknown, fmt.Errorf("remove snapshot: %w", err)
	}
	id, err := readID(b)
	if err != nil {
		return "", snapshot.KindUnknown, fmt.Errorf("remove snapshot %s: %w", key, err)
	}
	snapshots, parents := buckets(tx)

	prefix := parentKey(id, 0)[:8]
	if k, _ := parents.Cursor().Seek(prefix); k != nil && bytes.HasPrefix(k, prefix) {
		return "", snapshot.KindUnknown, fmt.Errorf("remove snapshot %s: it has children: %w",
			key, errdefs.ErrFailedPrecondition)
	}
	// A record whose parent is gone, which only a damaged file holds, can
	// still be removed; its entry in the parents index cannot be found
	// without the parent's ID and stays behind.
	if parent := b.Get(keyParent); len(parent) > 0 && snapshots.Bucket(parent) != nil {
		pb := snapshots.Bucket(parent)
		parentID, err := readID(pb)
		if err != nil {
			return "", snapshot.KindUnknown, fmt.Errorf("remove snapshot %s: parent %s: %w",
				key, parent, err)
		}
		if err := parents.Delete(parentKey(parentID, id)); err != nil {
			return "", snapshot.KindUnknown, fmt.Errorf("remove snapshot %s: unindex parent: %w",
				key, err)
		}
	}

	kind := readKind(b)
	if err := snapshots.DeleteBucket([]byte(key)); err != nil {
		return "", snapshot.KindUnknown, fmt.Errorf("remove snapshot %s: %w", key, err)
	}
	return formatID(id), kind, nil
}

// WalkInfo calls fn for every snapshot in key order and stops at the first
// error, which it returns.
func WalkInfo(ctx context.Context, fn snapshot.WalkFunc) error {
	tx, err := transaction(ctx)
	if err != nil {
		return err
	}
	snapshots, _ := buckets(tx)
	if snapshots == nil {
		return nil
	}
	return snapshots.ForEachBucket(func(k []byte) error {
		info, err := readInfo(string(k), snapshots.Bucket(k))
		if err != nil {
			return fmt.Errorf("walk snapshots: %s: %w", k, err)
		}
		return fn(ctx, info)
	})
}

// IDs returns the key of every snapshot by its ID, for finding directories
// that have no record.
func IDs(ctx context.Context) (map[string]string, error) {
	tx, err := transaction(ctx)
	if err != nil {
		return nil, err
	}
	ids := map[string]string{}
	snapshots, _ := buckets(tx)
	if snapshots == nil {
		return ids, nil
	}
	err = snapshots.ForEachBucket(func(k []byte) error {
		id, err := readID(snapshots.Bucket(k))
		if err != nil {
			return fmt.Errorf("list snapshot ids: %s: %w", k, err)
		}
		ids[formatID(id)] = string(k)
		return nil
	})
	return ids, err
}

func checkKey(key string) error {
	if key == "" {
		return fmt.Errorf("empty snapshot key: %w", errdefs.ErrInvalidArgument)
	}
	if len(key) > bolt.MaxKeySize {
		return fmt.Errorf("snapshot key of %d bytes exceeds %d: %w",
			len(key), bolt.MaxKeySize, errdefs.ErrInvalidArgument)
	}
	return nil
}

func snapshotBucket(tx *bolt.Tx, key string) (*bolt.Bucket, error) {
	if key == "" {
		return nil, fmt.Errorf("empty snapshot key: %w", errdefs.ErrInvalidArgument)
	}
	snapshots, _ := buckets(tx)
	var b *bolt.Bucket
	if snapshots != nil {
		b = snapshots.Bucket([]byte(key))
	}
	if b == nil {
		return nil, fmt.Errorf("snapshot %s: %w", key, errdefs.ErrNotFound)
	}
	return b, nil
}

// ancestorIDs returns the IDs of b's parent, its parent's parent and so on.
func ancestorIDs(snapshots, b *bolt.Bucket) ([]string, error) {
	var ids []string
	for parent := b.Get(keyParent); len(parent) > 0; {
		pb := snapshots.Bucket(parent)
		if pb == nil {
			return nil, fmt.Errorf("ancestor %s: %w", parent, errdefs.ErrNotFound)
		}
		id, err := readID(pb)
		if err != nil {
			return nil, fmt.Errorf("ancestor %s: %w", parent, err)
		}
		ids = append(ids, formatID(id))
		parent = pb.Get(keyParent)
	}
	return ids, nil
}

func putSnapshot(snapshots *bolt.Bucket, key string, id uint64, info snapshot.Info,
	usage snapshot.Usage,
) error {
	b, err := snapshots.CreateBucket([]byte(key))
	if err != nil {
		return err
	}
	created, err := info.Created.MarshalBinary()
	if err != nil {
		return err
	}
	updated, err := info.Updated.MarshalBinary()
	if err != nil {
		return err
	}
	fields := [][2][]byte{
		{keyID, binary.AppendUvarint(nil, id)},
		{keyKind, {byte(info.Kind)}},
		{keyCreated, created},
		{keyUpdated, updated},
	}
	if info.Parent != "" {
		fields = append(fields, [2][]byte{keyParent, []byte(info.Parent)})
	}
	if info.Kind == snapshot.KindCommitted {
		fields = append(fields,
			[2][]byte{keyInodes, binary.AppendVarint(nil, usage.Inodes)},
			[2][]byte{keySize, binary.AppendVarint(nil, usage.Size)})
	}
	for _, f := range fields {
		if err := b.Put(f[0], f[1]); err != nil {
			return err
		}
	}
	if len(info.Labels) == 0 {
		return nil
	}
	lb, err := b.CreateBucket(bucketLabels)
	if err != nil {
		return err
	}
	for k, v := range info.Labels {
		if err := lb.Put([]byte(k), []byte(v)); err != nil {
			return fmt.Errorf("put label %q: %w", k, err)
		}
	}
	return nil
}

func readInfo(key string, b *bolt.Bucket) (snapshot.Info, error) {
	info := snapshot.Info{Name: key, Kind: readKind(b), Parent: string(b.Get(keyParent))}
	if err := info.Created.UnmarshalBinary(b.Get(keyCreated)); err != nil {
		return snapshot.Info{}, fmt.Errorf("decode created time: %w", err)
	}
	if err := info.Updated.UnmarshalBinary(b.Get(keyUpdated)); err != nil {
		return snapshot.Info{}, fmt.Errorf("decode updated time: %w", err)
	}
	if lb := b.Bucket(bucketLabels); lb != nil {
		info.Labels = map[string]string{}
		err := lb.ForEach(func(k, v []byte) error {
			info.Labels[string(k)] = string(v)
			return nil
		})
		if err != nil {
			return snapshot.Info{}, err
		}
	}
	return info, nil
}

func readKind(b *bolt.Bucket) snapshot.Kind {
	if v := b.Get(keyKind); len(v) == 1 {
		return snapshot.Kind(v[0])
	}
	return snapshot.KindUnknown
}

func readID(b *bolt.Bucket) (uint64, error) {
	id, n := binary.Uvarint(b.Get(keyID))
	if n <= 0 {
		return 0, fmt.Errorf("decode snapshot id: %w", errdefs.ErrInvalidArgument)
	}
	return id, nil
}

func readUsage(b *bolt.Bucket) snapshot.Usage {
	inodes, _ := binary.Varint(b.Get(keyInodes))
	size, _ := binary.Varint(b.Get(keySize))
	return snapshot.Usage{Inodes: inodes, Size: size}
}

func parentKey(parentID, childID uint64) []byte {
	k := binary.BigEndian.AppendUint64(make([]byte, 0, 16), parentID)
	return binary.BigEndian.AppendUint64(k, childID)
}

func formatID(id uint64) string { return strconv.FormatUint(id, 10) }

// Package storage keeps the state that the snapshotters share: the metadata
// of every snapshot in a bbolt file, and the snapshot directories beside it.
//
// # Metadata
//
// [MetaStore] opens the bbolt file for one transaction at a time through
// internal/boltdb, so that many strata processes share one root and none
// holds the file while it copies or extracts a tree. [MetaStore.Update] and
// [MetaStore.View] carry the transaction in the context they pass on, and
// the package functions ([CreateSnapshot], [CreateSnapshotOnActive],
// [GetSnapshot], [GetInfo], [CommitActive], [Remove], [WalkInfo], [IDs])
// take it from there, so one transaction can span several of them. Errors from bbolt are translated
// into errdefs classes at this boundary.
//
// The bucket tree, schema version 1:
//
//	v1                          root; a new schema gets a new root bucket
//	├── snapshots               sequence: the last ID handed out
//	│   └── <key>               one bucket per snapshot key or name
//	│       ├── id              uvarint, unique, never reused once committed
//	│       ├── kind            1 byte, a snapshot.Kind
//	│       ├── parent          key of the parent; absent for none
//	│       ├── created         time.Time, MarshalBinary, UTC
//	│       ├── updated         time.Time, MarshalBinary, UTC
//	│       ├── inodes          varint, committed snapshots only
//	│       ├── size            varint bytes, committed snapshots only
//	│       └── labels          bucket: label name → value
//	└── parents                 index of children
//	    └── <parent id><child id>   8-byte big-endian each → the child's key
//
// A snapshot keeps its ID when it is committed, so the index's keys stay
// and [CommitActive] only rewrites the value to the committed name. Entries written
// before the value held the key have an empty one, which a scan of every
// record resolves. [Remove] rejects a snapshot whose ID prefixes a key
// in it. A parent is committed, except for the active parent of an active
// snapshot that [CreateSnapshotOnActive] recorded. [CommitActive] of such
// a parent rewrites the parent field of its children to the committed
// name, and rejects a snapshot whose parent is not committed yet.
//
// # Directories
//
// [Dirs] manages the directories under <root>/snapshots: <id> for each
// snapshot, new-<token> while one is being built and rm-* while one is
// being deleted. A directory is built under a new-* name and renamed to its
// ID inside the metadata transaction that creates the record, so a crash
// leaves either a staging directory or a complete snapshot, never a record
// without its directory. A committed snapshot's <id>/manifest lists the
// size and CRC-32C checksum of every regular file in <id>/fs, written by
// [Seal] before the commit record; [Check] compares the files with it.
//
// [Dirs.Recover] removes leftovers while other processes work in the root:
//
//   - new-<token>: the builder holds a flock on <root>/staging/<token>.lock
//     from before it creates the directory until after it renames or
//     removes it, so a directory whose lock is free is dead.
//   - rm-*: removed records whose directories no one needs; any process may
//     empty them.
//   - <id> without a record: Recover compares the directories with the
//     records inside a read transaction. bbolt keeps readers out while any
//     process has the file open for writing, so no process can be between
//     renaming a staging directory to its ID and committing the record.
package storage

// Package storage keeps the state that the snapshotters share: the metadata
// of every snapshot in a bbolt file, and the snapshot directories beside it.
//
// # Metadata
//
// [MetaStore] opens the bbolt file for one transaction at a time through
// internal/boltdb, so that many strata processes share one root and none
// holds the file while it copies or extracts a tree. [MetaStore.Update] and
// [MetaStore.View] carry the transaction in the context they pass on, and
// the package functions ([CreateSnapshot], [GetSnapshot], [GetInfo],
// [CommitActive], [Remove], [WalkInfo], [IDs]) take it from there, so one
// transaction can span several of them. Errors from bbolt are translated
// into errdefs classes at this boundary.
//
// The bucket tree, schema version 1:
//
//	v1                          root; a new schema gets a new root bucket
//	├── snapshots               sequence: the last ID handed out
//	│   └── <key>               one bucket per snapshot key or name
//	│       ├── id              uvarint, unique, never reused once committed
//	│       ├── kind            1 byte, a snapshot.Kind
//	│       ├── parent          key of the committed parent; absent for none
//	│       ├── created         time.Time, MarshalBinary, UTC
//	│       ├── updated         time.Time, MarshalBinary, UTC
//	│       ├── inodes          varint, committed snapshots only
//	│       ├── size            varint bytes, committed snapshots only
//	│       └── labels          bucket: label name → value
//	└── parents                 index of children
//	    └── <parent id><child id>   8-byte big-endian each; empty value
//
// A snapshot keeps its ID when it is committed, so the parents index needs
// no update on commit. [Remove] rejects a snapshot whose ID prefixes a key
// in it.
//
// # Directories
//
// [Dirs] manages the directories under <root>/snapshots: <id> for each
// snapshot, new-* while one is being built and rm-* while one is being
// deleted. A directory is built under a new-* name and renamed to its ID
// inside the metadata transaction that creates the record, so a crash
// leaves either a staging directory or a complete snapshot, never a record
// without its directory.
//
// Every process holds a shared flock on <root>/snapshots.lock while it
// stages or deletes a directory. [Dirs.Recover] takes that lock exclusively,
// without waiting, and only then removes new-* and rm-* directories and
// <id> directories that have no record: holding it proves no other process
// is between creating such a directory and committing its record.
//
// NOTE: the shared lock covers the whole root. Locks per chain, so that two
// processes extracting the same layer wait for each other instead of both
// doing the work, would be flock files under <root>/locks keyed by chain ID;
// [Dirs.Lock] is the place to add them.
package storage

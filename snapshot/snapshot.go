// Package snapshot defines the Snapshotter interface: a store of file system
// trees, each one layered on a parent.
//
// The lifecycle follows containerd's snapshotters. Prepare creates an active
// snapshot on a committed parent (or on nothing), which the caller mounts and
// writes into. Commit turns an active snapshot into a committed one under a
// new name, which can then be the parent of further snapshots. View creates a
// read-only active snapshot. Remove deletes a snapshot that has no children.
//
//	mounts, err := sn.Prepare(ctx, "extract-1", "")
//	// mount, apply a layer, unmount
//	err = sn.Commit(ctx, chainID, "extract-1")
//	mounts, err = sn.View(ctx, "view-1", chainID)
//
// Implementations live in subpackages: overlay (kernel overlayfs) and native
// (copied directories). The conformance suite in snapshottest runs against
// every implementation.
package snapshot

import (
	"context"
	"fmt"
	"time"

	"github.com/strata-containers/strata/mount"
)

// Kind is the state of a snapshot.
type Kind uint8

// The kinds of snapshot.
const (
	KindUnknown Kind = iota
	// KindView is a read-only snapshot of a committed parent.
	KindView
	// KindActive is a writable snapshot that can be committed.
	KindActive
	// KindCommitted is an immutable snapshot that can be a parent.
	KindCommitted
)

// String returns the kind's lower-case name.
func (k Kind) String() string {
	switch k {
	case KindView:
		return "view"
	case KindActive:
		return "active"
	case KindCommitted:
		return "committed"
	}
	return "unknown"
}

// MarshalText encodes the kind as its name, so that JSON listings read
// "committed" rather than a number.
func (k Kind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText decodes a kind's name.
func (k *Kind) UnmarshalText(b []byte) error {
	for _, c := range []Kind{KindView, KindActive, KindCommitted} {
		if string(b) == c.String() {
			*k = c
			return nil
		}
	}
	*k = KindUnknown
	return nil
}

// Info describes a snapshot.
type Info struct {
	Kind    Kind              `json:"kind"`
	Name    string            `json:"name"`
	Parent  string            `json:"parent,omitempty"`
	Labels  map[string]string `json:"labels,omitempty"`
	Created time.Time         `json:"created"`
	Updated time.Time         `json:"updated"`
}

// Usage is the disk space a snapshot uses on its own, without its parents.
type Usage struct {
	// Inodes is the number of file system objects.
	Inodes int64 `json:"inodes"`
	// Size is the number of bytes of disk space used.
	Size int64 `json:"size"`
}

// Opt sets an option on a snapshot as it is created or committed.
type Opt func(info *Info) error

// WithLabels sets labels on the snapshot.
func WithLabels(labels map[string]string) Opt {
	return func(info *Info) error {
		if info.Labels == nil {
			info.Labels = make(map[string]string, len(labels))
		}
		for k, v := range labels {
			info.Labels[k] = v
		}
		return nil
	}
}

// WalkFunc is called for every snapshot by [Snapshotter.Walk].
type WalkFunc func(context.Context, Info) error

// Snapshotter stores snapshots. Keys and names share one namespace.
//
// Errors wrap the classes in errdefs: ErrNotFound for a missing key or parent,
// ErrAlreadyExists for a key or name in use, ErrFailedPrecondition for an
// operation on a snapshot of the wrong kind (committing a view, using an
// active snapshot as a parent, removing a snapshot that has children) and
// ErrInvalidArgument for an empty key.
type Snapshotter interface {
	// Stat returns the info of the snapshot key.
	Stat(ctx context.Context, key string) (Info, error)
	// Usage returns the disk space the snapshot key uses on its own.
	Usage(ctx context.Context, key string) (Usage, error)
	// Mounts returns the mounts of the active snapshot or view key.
	Mounts(ctx context.Context, key string) ([]mount.Mount, error)
	// Prepare creates an active snapshot key on the committed snapshot
	// parent, or on an empty tree when parent is empty, and returns its
	// mounts.
	Prepare(ctx context.Context, key, parent string, opts ...Opt) ([]mount.Mount, error)
	// View creates a read-only snapshot key of the committed snapshot parent
	// and returns its mounts.
	View(ctx context.Context, key, parent string, opts ...Opt) ([]mount.Mount, error)
	// Commit turns the active snapshot key into the committed snapshot name.
	// The key no longer exists afterwards.
	Commit(ctx context.Context, name, key string, opts ...Opt) error
	// Remove deletes the snapshot key, which must have no children.
	Remove(ctx context.Context, key string) error
	// Walk calls fn for every snapshot, stopping at the first error.
	Walk(ctx context.Context, fn WalkFunc) error
	// Close releases the snapshotter's resources.
	Close() error
}

// ActivePreparer is a [Snapshotter] that can prepare an active snapshot on
// an active parent, so that a layer can be applied onto the tree of the
// layer below while that one is still being flushed and committed.
//
// PrepareOnActive is Prepare with an active parent whose tree the caller
// has finished writing. That tree must not change until the parent is
// committed or removed. A missing parent fails with ErrNotFound, and one
// that is not active with ErrFailedPrecondition. The child cannot be
// committed before its parent, which fails with ErrFailedPrecondition,
// and the parent cannot be removed while the child exists. Committing the
// parent changes the child's Info.Parent to the parent's committed name.
type ActivePreparer interface {
	PrepareOnActive(ctx context.Context, key, parent string, opts ...Opt) ([]mount.Mount, error)
}

// FileDigests looks up the checksum of a regular file that the writer of a
// snapshot computed while it wrote the file, so that Commit need not read
// the file again. A file is named by its device and inode numbers and its
// size. The checksum is spelled as a manifest line spells it, such as
// [CRC32C] returns. ok is false for a file the writer did not record,
// which Commit then reads and checksums itself.
type FileDigests interface {
	FileDigest(dev, ino uint64, size int64) (digest string, ok bool)
}

// CRC32C spells the CRC-32C (Castagnoli) checksum sum of a file's content
// as manifests list it: "crc32c:" and eight hex digits. ext4 and btrfs
// checksum their metadata with CRC-32C too. It finds the
// truncated and zeroed files that a crash leaves, and the CPU computes it
// in hardware. Hashing the files with sha256 took about a sixth of the
// CPU time of a Debian unpack.
func CRC32C(sum uint32) string {
	return fmt.Sprintf("crc32c:%08x", sum)
}

// DigestCommitter is a [Snapshotter] whose Commit can take the digests of
// the files written into the active snapshot. CommitDigests is Commit,
// with digests used for the manifest of the committed snapshot in place
// of reading back the files that digests names. The caller must not have
// changed those files after it recorded their digests.
type DigestCommitter interface {
	CommitDigests(ctx context.Context, name, key string, digests FileDigests, opts ...Opt) error
}

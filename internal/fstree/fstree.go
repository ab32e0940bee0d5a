// Package fstree records a directory tree's metadata and content so that two
// unpacked root filesystems can be compared in tests.
//
// [Walk] lists every entry below a root without following symlinks, [Digest]
// reduces the list to one sha256, and [Diff] explains how two lists differ:
//
//	want, err := fstree.Walk(umociRootfs)
//	...
//	got, err := fstree.Walk(snapshotMount)
//	...
//	if fstree.Digest(want) != fstree.Digest(got) {
//		t.Errorf("rootfs differs (-want +got):\n%s", fstree.Diff(want, got))
//	}
//
// An entry carries what an image layer can set: type, permission bits with
// setuid, setgid and sticky, owner, size, content hash, symlink target,
// extended attributes, device number, modification time, and which paths
// share an inode. Access and change times, inode numbers and link counts are
// left out because no unpacker controls them.
package fstree

import (
	"github.com/opencontainers/go-digest"
)

// Type is the kind of a file system entry.
type Type string

// Entry types, from the file type bits of st_mode.
const (
	Regular     Type = "reg"
	Dir         Type = "dir"
	Symlink     Type = "symlink"
	CharDevice  Type = "char"
	BlockDevice Type = "block"
	FIFO        Type = "fifo"
	Socket      Type = "socket"
)

// Entry is the recorded state of one path in a tree.
type Entry struct {
	// Path is slash-separated and relative to the root, which is ".". It
	// holds the name's raw bytes, which need not be valid UTF-8.
	Path string
	Type Type
	// Mode is st_mode & 07777: the permission bits plus setuid, setgid and
	// sticky.
	Mode uint32
	UID  uint32
	GID  uint32
	// Size is the length in bytes of a regular file, and 0 for other types.
	Size int64
	// Content is the sha256 of a regular file's bytes, and empty for other
	// types.
	Content digest.Digest
	// Target is a symlink's target as stored, never resolved.
	Target string
	// Xattrs are the extended attributes sorted by name. Overlay's own
	// attributes are left out unless [WithOverlayXattrs] is given.
	Xattrs []Xattr
	// Rdev is the device number of a character or block device, in the
	// kernel's encoding (major and minor as unix.Major and unix.Minor read
	// them), and 0 for other types.
	Rdev uint64
	// ModTime is the modification time in nanoseconds since the Unix epoch,
	// or 0 where [WithoutModTimes] or [WithoutDirModTimes] left it out.
	ModTime int64
	// LinkGroup is the smallest Path of the entries in this tree that share
	// this entry's inode, this entry included. It is empty when no other
	// path in the tree shares the inode, even if the inode has links outside
	// the tree.
	LinkGroup string
}

// Xattr is one extended attribute. Value holds the raw bytes.
type Xattr struct {
	Name  string
	Value string
}

// Opt changes what [Walk] records.
type Opt func(*config)

type config struct {
	overlayXattrs bool
	dirModTimes   bool
	modTimes      bool
	skip          func(path string) bool
}

func newConfig(opts []Opt) config {
	c := config{dirModTimes: true, modTimes: true}
	for _, o := range opts {
		o(&c)
	}
	return c
}

// WithOverlayXattrs records the trusted.overlay.* and user.overlay.*
// attributes that overlayfs uses for its own bookkeeping (opaque directories,
// redirects, origin). By default they are left out, so that an overlay mount
// and a plain copy of the same tree compare equal.
func WithOverlayXattrs() Opt {
	return func(c *config) { c.overlayXattrs = true }
}

// WithoutDirModTimes leaves directories' modification times out. Creating or
// removing a child changes a directory's mtime, so unpackers that apply
// entries in different orders leave different directory times.
func WithoutDirModTimes() Opt {
	return func(c *config) { c.dirModTimes = false }
}

// WithoutModTimes leaves every entry's modification time out.
func WithoutModTimes() Opt {
	return func(c *config) { c.modTimes = false }
}

// WithSkip leaves out each entry for which skip returns true, and for a
// directory everything below it. skip receives the entry's Path. The root
// "." is never skipped.
func WithSkip(skip func(path string) bool) Opt {
	return func(c *config) { c.skip = skip }
}

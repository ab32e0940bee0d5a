// Package archive applies one container image layer onto a directory.
//
// [Apply] reads a layer stream (plain tar, gzip or zstd, detected by their
// magic bytes whatever the media type declares), applies every entry and
// returns the diff ID: the sha256 of the whole uncompressed stream, read to
// its end. It works in one of two modes:
//
//   - native (the default): root is the complete tree of the snapshot. OCI
//     whiteouts and opaque directories delete, in place, what the layers
//     below put there.
//   - overlay ([WithOverlay]): root is the upper directory of an overlayfs
//     snapshot, and the lower directories are read to resolve parents, hard
//     link targets and whiteout targets in the merged view. Whiteouts become
//     overlay whiteouts (character device 0:0) and opaque directories get
//     the trusted.overlay.opaque xattr, so the mounted overlay shows the same
//     tree that native mode builds.
//
// Every name, link target and whiteout target resolves inside root, with
// symlinks in parent components followed as if root were "/", and the
// last component never followed. A rejected layer returns an error that
// wraps a class from errdefs (ErrInvalidLayer, ErrBreakout, ErrUnsupported,
// ErrLimit, ErrNoSpace) and names the entry; the caller discards the
// partly written root. docs/layers.md in the repository lists each kind of
// odd or hostile layer and what Apply does with it.
package archive

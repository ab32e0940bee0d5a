// Package unpack applies an image's layers onto snapshots.
//
// [ApplyLayers] follows the algorithm of containerd's rootfs.ApplyLayers.
// For each layer, bottom first, it computes the OCI chain ID of the layers so
// far. When a committed snapshot of that chain ID exists, the layer is
// already unpacked and is skipped. Otherwise it prepares an extraction
// snapshot on the parent chain, applies the layer blob into it, checks that
// the digest of the uncompressed stream equals the diff ID in the image
// config, and commits the snapshot under the chain ID. Any failure removes the
// extraction snapshot, so nothing half-applied is ever committed.
//
// A layer's commit walks its tree for the manifest and flushes it to
// disk. On a snapshotter that can prepare on an active parent (overlayfs),
// that commit runs on its own goroutine while the next layer is applied
// onto the layer's extraction snapshot. The next layer starts only once the
// tree below it is complete, and it is committed only after the layer
// below. When the commit below fails, both extraction snapshots are
// removed, the upper one first. When the upper layer fails, the layer
// below is still committed.
//
// The snapshot names are the chain IDs themselves, so two images that share
// their bottom layers share those snapshots, and unpacking an image a second
// time applies nothing.
package unpack

// Package layercases holds the table of image layers that strata's layer
// applier must get right, for tests to run against every way of applying
// them.
//
// Each [Case] lists one or more layers, built with archive/tartest and
// applied bottom first. A case either succeeds, and then its Check runs on
// the tree the layers give, or its last layer is rejected with an error of
// class WantErr. The cases come in groups, one per kind of fault:
// [Breakout], [Whiteout], [TypeChange], [HardlinkLower], [Metadata],
// [TarFormat] and [SpecialFiles].
//
// Two suites range over the table:
//
//   - archive's tests apply each layer with archive.Apply, once into one
//     plain directory and once into per-layer upper directories that are
//     then mounted as an overlay;
//   - this package's tests apply the layers through unpack.ApplyLayers
//     onto the overlayfs and native snapshotters, mount a view of the top
//     chain, and compare the two trees with internal/fstree.
//
// A [Sandbox] puts host sentinels next to the snapshot directories, so
// that every case also checks that nothing outside the root changed. The
// package is for tests only: its helpers take a [testing.TB] and fail it.
package layercases

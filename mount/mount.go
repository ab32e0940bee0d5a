// Package mount describes file system mounts and applies them.
//
// A snapshotter returns a list of [Mount] values that, applied in order on a
// target directory, show the snapshot there. The caller decides where and
// when to mount; the snapshotter never mounts on the caller's behalf.
//
// [All] applies a list and [UnmountAll] removes every mount stacked on a
// target. Options follow mount(8): flag options such as "ro", "nosuid" or
// "rbind" become mount(2) flags and the rest become the file system's data.
//
// # Long overlay options
//
// mount(2) copies at most one page (4096 bytes on most machines, including
// the terminating NUL) of data, so an overlay with many lower directories
// does not fit. When the data of an overlay mount reaches the page size,
// [Mount.Mount] uses the file system context API instead (fsopen, fsconfig,
// fsmount, move_mount) and passes each lower directory on its own as a
// "lowerdir+" parameter. That parameter exists since Linux 6.8, and older
// kernels reject it and the mount fails with the kernel's message. fsconfig
// limits each string value to 255 bytes, so each directory path must be
// shorter than that on this path. overlayfs itself stacks at most 500 lower
// directories.
package mount

// Mount is one mount(2) call: the file system type, the source and the
// options as they would be given to mount(8) with -o.
type Mount struct {
	// Type is the file system type, such as "overlay" or "bind".
	Type string `json:"type"`
	// Source is the device or directory mounted.
	Source string `json:"source"`
	// Options are mount(8)-style options, such as "ro", "rbind" or
	// "lowerdir=/a:/b".
	Options []string `json:"options,omitempty"`
}

// Package mount describes file system mounts and applies them.
//
// A snapshotter returns a list of [Mount] values that, applied in order on a
// target directory, show the snapshot there. The caller decides where and
// when to mount; the snapshotter never mounts on the caller's behalf.
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

//go:build !linux

package mount

import (
	"fmt"

	"github.com/strata-containers/strata/errdefs"
)

// Mount mounts m on target. It is implemented on Linux only.
func (m Mount) Mount(target string) error {
	return &Error{Op: "mount", Type: m.Type, Source: m.Source, Target: target,
		Err: fmt.Errorf("mount on this platform: %w", errdefs.ErrNotImplemented)}
}

// Unmount unmounts target once. It is implemented on Linux only.
func Unmount(target string, flags int) error {
	return &Error{Op: "unmount", Target: target,
		Err: fmt.Errorf("unmount on this platform: %w", errdefs.ErrNotImplemented)}
}

// UnmountAll unmounts every mount on target. It is implemented on Linux only.
func UnmountAll(target string) error { return Unmount(target, 0) }

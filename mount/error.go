package mount

import "fmt"

// Error records a failed mount or unmount and the mount involved.
type Error struct {
	// Op is the operation: "mount" or "unmount".
	Op string
	// Type and Source describe the mount. Both are empty for an unmount.
	Type   string
	Source string
	// Target is the mount point.
	Target string
	// Err is the underlying error, usually a [golang.org/x/sys/unix.Errno].
	Err error
}

func (e *Error) Error() string {
	if e.Op == "unmount" {
		return fmt.Sprintf("unmount %s: %v", e.Target, e.Err)
	}
	return fmt.Sprintf("mount %s %s on %s: %v", e.Type, e.Source, e.Target, e.Err)
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

package mount

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/strata-containers/strata/errdefs"
)

// mountAttrs maps mount(2) flags to the MOUNT_ATTR_* bits of fsmount(2).
var mountAttrs = []struct {
	flag uintptr
	attr int
}{
	{unix.MS_RDONLY, unix.MOUNT_ATTR_RDONLY},
	{unix.MS_NOSUID, unix.MOUNT_ATTR_NOSUID},
	{unix.MS_NODEV, unix.MOUNT_ATTR_NODEV},
	{unix.MS_NOEXEC, unix.MOUNT_ATTR_NOEXEC},
	{unix.MS_NOATIME, unix.MOUNT_ATTR_NOATIME},
	{unix.MS_STRICTATIME, unix.MOUNT_ATTR_STRICTATIME},
	{unix.MS_NODIRATIME, unix.MOUNT_ATTR_NODIRATIME},
}

// mountOverlayFS mounts an overlay on target through the file system
// context API, passing each lower directory as its own "lowerdir+" value so
// that no single parameter has to hold them all.
func mountOverlayFS(target string, p parsedOptions) (err error) {
	fd, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if errors.Is(err, unix.ENOSYS) {
		return fmt.Errorf("fsopen overlay: options exceed %d bytes and the kernel lacks fsopen: %w: %w",
			unix.Getpagesize(), errdefs.ErrNotImplemented, err)
	}
	if err != nil {
		return fmt.Errorf("fsopen overlay: %w", err)
	}
	defer unix.Close(fd)
	defer func() {
		if err != nil {
			err = withKernelLog(fd, err)
		}
	}()

	for _, o := range p.data {
		if err := configure(fd, o); err != nil {
			return err
		}
	}
	if err := unix.FsconfigCreate(fd); err != nil {
		return fmt.Errorf("create overlay: %w", err)
	}

	attrs := 0
	for _, a := range mountAttrs {
		if p.flags&a.flag != 0 {
			attrs |= a.attr
		}
	}
	mfd, err := unix.Fsmount(fd, unix.FSMOUNT_CLOEXEC, attrs)
	if err != nil {
		return fmt.Errorf("fsmount overlay: %w", err)
	}
	defer unix.Close(mfd)

	err = unix.MoveMount(mfd, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH)
	if err != nil {
		return fmt.Errorf("move mount to %s: %w", target, err)
	}
	return nil
}

// configure sets one mount(8)-style data option on the file system context.
func configure(fd int, option string) error {
	key, value, hasValue := strings.Cut(option, "=")
	if !hasValue {
		if err := unix.FsconfigSetFlag(fd, key); err != nil {
			return fmt.Errorf("set overlay flag %s: %w", key, err)
		}
		return nil
	}
	if key != "lowerdir" {
		if err := unix.FsconfigSetString(fd, key, value); err != nil {
			return fmt.Errorf("set overlay option %s=%s: %w", key, value, err)
		}
		return nil
	}
	// "lowerdir+" takes one unescaped path per call, topmost first, and
	// needs Linux 6.8 or later.
	for _, dir := range SplitLowerDirs(value) {
		if err := unix.FsconfigSetString(fd, "lowerdir+", dir); err != nil {
			return fmt.Errorf("add overlay lower directory %s: %w", dir, err)
		}
	}
	return nil
}

// withKernelLog appends the messages the kernel queued on the file system
// context, such as "overlayfs: failed to resolve ...", to err.
func withKernelLog(fd int, err error) error {
	var msgs []string
	buf := make([]byte, 4096)
	for range 32 {
		n, rerr := unix.Read(fd, buf)
		if rerr != nil || n <= 0 {
			break
		}
		msgs = append(msgs, string(bytes.TrimSpace(buf[:n])))
	}
	if len(msgs) == 0 {
		return err
	}
	return fmt.Errorf("%w (kernel: %s)", err, strings.Join(msgs, "; "))
}

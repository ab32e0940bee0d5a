package overlay

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/strata-containers/strata/errdefs"
	"github.com/strata-containers/strata/mount"
	"github.com/strata-containers/strata/snapshot/storage"
)

// checkSupport checks, in a staging directory, that the file system under
// the root reports file types in directory entries (overlayfs needs d_type
// to find whiteouts) and that the kernel mounts an overlay there. As a
// process without CAP_SYS_ADMIN cannot try a mount, it then only checks
// that /proc/filesystems lists overlay.
func checkSupport(ctx context.Context, dirs *storage.Dirs) error {
	st, err := dirs.Stage(ctx)
	if err != nil {
		return err
	}
	defer st.Close(ctx)

	if err := checkDType(st.Path()); err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		return checkFilesystems()
	}
	return tryMount(st.Path())
}

func checkDType(dir string) error {
	if err := os.WriteFile(filepath.Join(dir, "probe"), nil, 0o600); err != nil {
		return err
	}
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()

	buf := make([]byte, 4096)
	n, err := unix.Getdents(int(f.Fd()), buf)
	if err != nil {
		return fmt.Errorf("read entries of %s: %w", dir, err)
	}
	// Each entry is a linux_dirent64: inode (8 bytes), offset (8),
	// record length (2), type (1), then the name.
	for off := 0; off+19 <= n; {
		reclen := int(binary.NativeEndian.Uint16(buf[off+16:]))
		if reclen == 0 {
			break
		}
		typ := buf[off+18]
		name, _, _ := bytes.Cut(buf[off+19:off+reclen], []byte{0})
		if string(name) == "probe" {
			if typ == unix.DT_UNKNOWN {
				return fmt.Errorf("file system of %s does not report d_type: %w",
					dir, errdefs.ErrNotImplemented)
			}
			return nil
		}
		off += reclen
	}
	return fmt.Errorf("read entries of %s: probe file not listed", dir)
}

func checkFilesystems() error {
	data, err := os.ReadFile("/proc/filesystems")
	if err != nil {
		return err
	}
	s := bufio.NewScanner(bytes.NewReader(data))
	for s.Scan() {
		if f := strings.Fields(s.Text()); len(f) > 0 && f[len(f)-1] == "overlay" {
			return nil
		}
	}
	return fmt.Errorf("kernel lacks overlay in /proc/filesystems: %w", errdefs.ErrNotImplemented)
}

// tryMount mounts a two-layer overlay with an upper directory under dir
// and unmounts it again.
func tryMount(dir string) error {
	names := []string{"lower1", "lower2", "upper", "work", "merged"}
	for _, name := range names {
		if err := os.Mkdir(filepath.Join(dir, name), 0o700); err != nil {
			return err
		}
	}
	target := filepath.Join(dir, "merged")
	m := mount.Mount{Type: "overlay", Source: "overlay", Options: []string{
		"index=off",
		"lowerdir=" + filepath.Join(dir, "lower2") + ":" + filepath.Join(dir, "lower1"),
		"upperdir=" + filepath.Join(dir, "upper"),
		"workdir=" + filepath.Join(dir, "work"),
	}}
	if err := m.Mount(target); err != nil {
		if errors.Is(err, unix.ENODEV) {
			return fmt.Errorf("kernel lacks overlay: %w: %w", errdefs.ErrNotImplemented, err)
		}
		return fmt.Errorf("overlay does not mount on this file system: %w: %w",
			errdefs.ErrNotImplemented, err)
	}
	return mount.UnmountAll(target)
}

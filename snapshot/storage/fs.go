package storage

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/strata-containers/strata/snapshot"
)

// RootTime is the access and modification time that [MakeRoot] gives the
// root directory of a snapshot with no parent. A layer's "./" entry sets
// its own; without one, a fixed time makes every unpack of an image, on
// either snapshotter, give the same tree.
var RootTime = time.Unix(0, 0)

// MakeRoot creates the directory that holds a snapshot's files, mode 0755,
// with [RootTime] as its times. A snapshot with a parent then takes the
// parent root's metadata over.
func MakeRoot(path string) error {
	if err := os.Mkdir(path, 0o755); err != nil {
		return err
	}
	return os.Chtimes(path, RootTime, RootTime)
}

// RemoveAll removes path and everything under it. Directories that deny
// their owner access, such as mode 0000 or 0500 ones that an unprivileged
// process cannot empty, get mode 0700 on the way. A path that does not
// exist is no error.
func RemoveAll(path string) error {
	err := os.RemoveAll(path)
	if err == nil || !errors.Is(err, fs.ErrPermission) {
		return err
	}
	// WalkDir calls the function on a directory before reading it, so the
	// chmod lets it read the directory and go on below.
	// Another process may be removing the same tree, as two recoveries of
	// one rm-* directory do, so entries that vanish are no error.
	werr := filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if d != nil && d.IsDir() && err == nil {
			if cerr := os.Chmod(p, 0o700); cerr != nil && !errors.Is(cerr, fs.ErrNotExist) {
				return cerr
			}
		}
		return err
	})
	if werr != nil {
		return fmt.Errorf("make %s removable: %w", path, werr)
	}
	return os.RemoveAll(path)
}

// DiskUsage returns the inodes and allocated bytes (st_blocks × 512) of the
// tree at root, root included. A file with several hard links in the tree
// counts once.
func DiskUsage(ctx context.Context, root string) (snapshot.Usage, error) {
	type inode struct{ dev, ino uint64 }
	seen := map[inode]struct{}{}
	var u snapshot.Usage
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return fmt.Errorf("stat %s: no stat_t", p)
		}
		if !d.IsDir() && st.Nlink > 1 {
			k := inode{dev: uint64(st.Dev), ino: st.Ino}
			if _, dup := seen[k]; dup {
				return nil
			}
			seen[k] = struct{}{}
		}
		u.Inodes++
		u.Size += st.Blocks * 512
		return nil
	})
	if err != nil {
		return snapshot.Usage{}, fmt.Errorf("measure usage of %s: %w", root, err)
	}
	return u, nil
}

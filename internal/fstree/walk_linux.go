package fstree

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// inode identifies a file across the paths that link to it.
type inode struct {
	devMajor, devMinor uint32
	ino                uint64
}

type walker struct {
	cfg     config
	rootMnt uint64 // mount ID of the root, 0 when the kernel reports none
	entries []Entry
	links   map[inode][]string // paths of the inodes with nlink > 1
}

// Walk records root and every entry below it, sorted by Path in byte order.
// It uses lstat semantics throughout, so symlinks are recorded and never
// followed. A directory on another mount than root (a bind or tmpfs mounted
// inside the tree) is recorded but not descended into. An overlay mount as
// root is walked like any other directory. Run as root to walk directories of
// mode 0000 and files owned by others.
//
// NOTE: hard links are found by device and inode number. On an overlay mount
// without index=on, copying up one name of a lower hard link gives it a new
// inode, so Walk reports the names as separate files, as the kernel does.
func Walk(root string, opts ...Opt) ([]Entry, error) {
	w := &walker{cfg: newConfig(opts), links: make(map[inode][]string)}

	var stx unix.Statx_t
	if err := statx(root, &stx); err != nil {
		return nil, err
	}
	if stx.Mode&unix.S_IFMT != unix.S_IFDIR {
		return nil, &fs.PathError{Op: "walk", Path: root, Err: unix.ENOTDIR}
	}
	if stx.Mask&unix.STATX_MNT_ID != 0 {
		w.rootMnt = stx.Mnt_id
	}
	if err := w.visit(".", root, &stx); err != nil {
		return nil, err
	}

	sort.Slice(w.entries, func(i, j int) bool { return w.entries[i].Path < w.entries[j].Path })
	w.groupLinks()
	return w.entries, nil
}

func statx(path string, stx *unix.Statx_t) error {
	mask := unix.STATX_BASIC_STATS | unix.STATX_MNT_ID
	err := unix.Statx(unix.AT_FDCWD, path, unix.AT_SYMLINK_NOFOLLOW, mask, stx)
	if err != nil {
		return &fs.PathError{Op: "statx", Path: path, Err: err}
	}
	return nil
}

// visit records the entry at abs, whose tree path is rel, and everything
// below it when it is a directory on root's mount.
func (w *walker) visit(rel, abs string, stx *unix.Statx_t) error {
	e, err := w.record(rel, abs, stx)
	if err != nil {
		return err
	}
	w.entries = append(w.entries, e)
	if e.Type != Dir {
		if stx.Nlink > 1 {
			key := inode{stx.Dev_major, stx.Dev_minor, stx.Ino}
			w.links[key] = append(w.links[key], rel)
		}
		return nil
	}
	if w.rootMnt != 0 && stx.Mask&unix.STATX_MNT_ID != 0 && stx.Mnt_id != w.rootMnt {
		return nil
	}

	names, err := readDirNames(abs)
	if err != nil {
		return err
	}
	for _, name := range names {
		childRel := name
		if rel != "." {
			childRel = rel + "/" + name
		}
		if w.cfg.skip != nil && w.cfg.skip(childRel) {
			continue
		}
		childAbs := filepath.Join(abs, name)
		var child unix.Statx_t
		if err := statx(childAbs, &child); err != nil {
			return err
		}
		if err := w.visit(childRel, childAbs, &child); err != nil {
			return err
		}
	}
	return nil
}

// readDirNames lists a directory's names sorted in byte order.
func readDirNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	names, err := f.Readdirnames(-1)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	return names, nil
}

func (w *walker) record(rel, abs string, stx *unix.Statx_t) (Entry, error) {
	e := Entry{
		Path: rel,
		Type: fileType(stx.Mode),
		Mode: uint32(stx.Mode) & 0o7777,
		UID:  stx.Uid,
		GID:  stx.Gid,
	}
	if w.cfg.modTimes && (e.Type != Dir || w.cfg.dirModTimes) {
		e.ModTime = stx.Mtime.Sec*1e9 + int64(stx.Mtime.Nsec)
	}

	var err error
	switch e.Type {
	case Regular:
		e.Size = int64(stx.Size)
		e.Content, err = hashFile(abs)
	case Symlink:
		e.Target, err = os.Readlink(abs)
	case CharDevice, BlockDevice:
		e.Rdev = unix.Mkdev(stx.Rdev_major, stx.Rdev_minor)
	}
	if err != nil {
		return Entry{}, err
	}

	e.Xattrs, err = readXattrs(abs, w.cfg.overlayXattrs)
	if err != nil {
		return Entry{}, err
	}
	return e, nil
}

func fileType(mode uint16) Type {
	switch mode & unix.S_IFMT {
	case unix.S_IFDIR:
		return Dir
	case unix.S_IFLNK:
		return Symlink
	case unix.S_IFCHR:
		return CharDevice
	case unix.S_IFBLK:
		return BlockDevice
	case unix.S_IFIFO:
		return FIFO
	case unix.S_IFSOCK:
		return Socket
	default:
		return Regular
	}
}

func hashFile(path string) (digest.Digest, error) {
	// O_NOFOLLOW keeps a file swapped for a symlink after the statx from
	// being read through the link.
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return "", err
	}
	defer f.Close()

	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	return digest.NewDigest(digest.SHA256, h), nil
}

// readXattrs returns path's extended attributes sorted by name, without
// overlayfs's own unless overlay is true. A file system without xattr
// support has none.
func readXattrs(path string, overlay bool) ([]Xattr, error) {
	list, err := xattrCall(func(buf []byte) (int, error) { return unix.Llistxattr(path, buf) })
	if errors.Is(err, unix.ENOTSUP) {
		return nil, nil
	}
	if err != nil {
		return nil, &fs.PathError{Op: "llistxattr", Path: path, Err: err}
	}

	var xattrs []Xattr
	for _, name := range strings.Split(strings.TrimSuffix(string(list), "\x00"), "\x00") {
		if name == "" || (!overlay && isOverlayXattr(name)) {
			continue
		}
		value, err := xattrCall(func(buf []byte) (int, error) {
			return unix.Lgetxattr(path, name, buf)
		})
		if err != nil {
			return nil, &fs.PathError{Op: "lgetxattr " + name, Path: path, Err: err}
		}
		xattrs = append(xattrs, Xattr{Name: name, Value: string(value)})
	}
	sort.Slice(xattrs, func(i, j int) bool { return xattrs[i].Name < xattrs[j].Name })
	return xattrs, nil
}

func isOverlayXattr(name string) bool {
	return strings.HasPrefix(name, "trusted.overlay.") || strings.HasPrefix(name, "user.overlay.")
}

// xattrCall runs a size-then-fill xattr syscall, retrying while the value
// grows between the two calls.
func xattrCall(call func([]byte) (int, error)) ([]byte, error) {
	for {
		size, err := call(nil)
		if err != nil {
			return nil, err
		}
		if size == 0 {
			return nil, nil
		}
		buf := make([]byte, size)
		n, err := call(buf)
		if errors.Is(err, unix.ERANGE) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
}

// groupLinks sets LinkGroup on every entry whose inode has another name in
// the tree.
func (w *walker) groupLinks() {
	byPath := make(map[string]int, len(w.entries))
	for i, e := range w.entries {
		byPath[e.Path] = i
	}
	for _, paths := range w.links {
		if len(paths) < 2 {
			continue
		}
		sort.Strings(paths)
		for _, p := range paths {
			w.entries[byPath[p]].LinkGroup = paths[0]
		}
	}
}

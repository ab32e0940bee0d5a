package archive

import (
	"archive/tar"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/strata-containers/strata/errdefs"
)

// createHardlink links base in the directory parent to the entry that
// hdr.Linkname names. The target's parent resolves like an entry name; its
// last component is never followed, so a link to a symlink links the
// symlink. In overlay mode a target that exists only in a lower layer is
// first copied up, as link(2) cannot cross layers. The header's owner, mode
// and times describe the shared inode and are not applied.
func (a *applier) createHardlink(hdr *tar.Header, parent, base string) error {
	target, err := cleanName(hdr.Linkname)
	if err != nil {
		return fmt.Errorf("hard link target %q: %w", hdr.Linkname, err)
	}
	if target == "" {
		return fmt.Errorf("hard link to the root: %w", errdefs.ErrInvalidLayer)
	}
	tdir, tbase := splitName(target)
	tparent, tparentNode, err := a.walk(tdir, false)
	if err != nil {
		return err
	}
	p := joinName(parent, base)
	tp := joinName(tparent, tbase)
	if !tparentNode.exists {
		return fmt.Errorf("hard link target %q: %w", hdr.Linkname, errLinkTargetMissing)
	}
	tn, err := a.lookup(tparentNode, tp)
	if err != nil {
		return err
	}
	switch {
	case !tn.exists:
		return fmt.Errorf("hard link target %q: %w", hdr.Linkname, errLinkTargetMissing)
	case tn.isDir():
		return fmt.Errorf("hard link target %q is a directory: %w",
			hdr.Linkname, errdefs.ErrInvalidLayer)
	}
	if tn.layer != 0 {
		if err := a.copyUp(tparent, tbase, tn); err != nil {
			return err
		}
		if err := a.copyUpLinks(tn.layer, tp); err != nil {
			return err
		}
	}
	if tp == p {
		// A link to itself keeps the file as it is. In overlay mode the
		// copy-up above puts it in this layer, as it is in native mode, so
		// a whiteout later in the layer spares it in both.
		return nil
	}

	tfd, err := a.openDir(tparent)
	if err != nil {
		return err
	}
	defer unix.Close(tfd)
	fd, err := a.openDir(parent)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := a.touchDir(parent, fd); err != nil {
		return err
	}
	a.forget(p)
	return a.createAt(fd, base, p, "linkat", func() error {
		return unix.Linkat(tfd, tbase, fd, base, 0)
	})
}

var errLinkTargetMissing = fmt.Errorf("not found: %w", errdefs.ErrInvalidLayer)

// copyUp copies the non-directory base of the resolved directory parent
// from the lower layer that holds it into root, keeping its content,
// owner, mode, xattrs and times. The copy is lower content: it is not
// marked as written, so a later whiteout in this layer still removes it.
func (a *applier) copyUp(parent, base string, n node) error {
	if _, _, err := a.walk(parent, true); err != nil {
		return err
	}
	p := joinName(parent, base)
	st, err := a.lstat(n.layer, p)
	if err != nil {
		return &fs.PathError{Op: "fstatat", Path: p, Err: err}
	}
	xattrs, err := a.lowerXattrs(n.layer, p)
	if err != nil {
		return err
	}

	dirfd, err := a.openDir(parent)
	if err != nil {
		return err
	}
	defer unix.Close(dirfd)
	if err := a.touchDir(parent, dirfd); err != nil {
		return err
	}

	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		return a.copyUpFile(dirfd, n.layer, p, base, &st, xattrs)
	case unix.S_IFLNK:
		target, err := a.readlink(n.layer, p)
		if err != nil {
			return err
		}
		if err := unix.Symlinkat(target, dirfd, base); err != nil {
			return &fs.PathError{Op: "symlinkat", Path: p, Err: err}
		}
	default:
		if err := unix.Mknodat(dirfd, base, st.Mode, int(st.Rdev)); err != nil {
			return &fs.PathError{Op: "mknodat", Path: p, Err: err}
		}
	}
	return copyMetadataAt(dirfd, p, base, &st, xattrs)
}

func (a *applier) copyUpFile(dirfd, layer int, p, base string, st *unix.Stat_t,
	xattrs map[string][]byte) error {
	sfd, err := unix.Openat(a.layers[layer], p, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return &fs.PathError{Op: "openat", Path: p, Err: err}
	}
	src := os.NewFile(uintptr(sfd), p)
	defer src.Close()

	flags := unix.O_CREAT | unix.O_EXCL | unix.O_WRONLY | unix.O_NOFOLLOW | unix.O_CLOEXEC
	dfd, err := unix.Openat(dirfd, base, flags, 0o600)
	if err != nil {
		return &fs.PathError{Op: "openat", Path: p, Err: err}
	}
	dst := os.NewFile(uintptr(dfd), p)
	defer dst.Close()
	// The new inode may reuse the number of a file that this layer wrote
	// and removed; its recorded digest is not this file's.
	var dst0 unix.Stat_t
	if err := unix.Fstat(dfd, &dst0); err != nil {
		return &fs.PathError{Op: "fstat", Path: p, Err: err}
	}
	a.files.drop(dst0.Dev, dst0.Ino)

	// ReadFrom uses copy_file_range between the two files.
	if _, err := dst.ReadFrom(src); err != nil {
		return fmt.Errorf("copy up %s: %w", p, err)
	}
	if err := copyOwnerAndXattrs(dfd, p, st, xattrs); err != nil {
		return err
	}
	if err := unix.Fchmod(dfd, st.Mode&0o7777); err != nil {
		return &fs.PathError{Op: "fchmod", Path: p, Err: err}
	}
	return setTimesFD(dfd, p, st.Atim, st.Mtim)
}

func copyMetadataAt(dirfd int, p, base string, st *unix.Stat_t, xattrs map[string][]byte) error {
	if err := unix.Fchownat(dirfd, base, int(st.Uid), int(st.Gid), unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &fs.PathError{Op: "fchownat", Path: p, Err: err}
	}
	target := procPath(dirfd) + "/" + base
	for name, value := range xattrs {
		if err := unix.Lsetxattr(target, name, value, 0); err != nil {
			return &fs.PathError{Op: "setxattr " + name, Path: p, Err: err}
		}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFLNK {
		if err := unix.Fchmodat(dirfd, base, st.Mode&0o7777, 0); err != nil {
			return &fs.PathError{Op: "fchmodat", Path: p, Err: err}
		}
	}
	ts := []unix.Timespec{st.Atim, st.Mtim}
	if err := unix.UtimesNanoAt(dirfd, base, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &fs.PathError{Op: "utimensat", Path: p, Err: err}
	}
	return nil
}

// copyUpLinks links to the copy-up of tp every other name that the merged
// view shows for the same inode of the lower layer, so that names which
// shared an inode below still share one, as they do in a native snapshot.
// Names that a higher layer or this one hides or replaces are left alone.
func (a *applier) copyUpLinks(layer int, tp string) error {
	st, err := a.lstat(layer, tp)
	if err != nil {
		return &fs.PathError{Op: "fstatat", Path: tp, Err: err}
	}
	if st.Nlink < 2 {
		return nil
	}
	index, err := a.linkIndex(layer)
	if err != nil {
		return err
	}
	for _, q := range index[st.Ino] {
		if q == tp {
			continue
		}
		n, err := a.lookupNoFollow(q)
		if err != nil {
			return err
		}
		if !n.exists || n.layer != layer {
			continue
		}
		if err := a.linkCopy(tp, q); err != nil {
			return err
		}
	}
	return nil
}

// linkCopy hard-links q in root to tp, which is already in root, creating
// q's parents as copies of the lower directories.
func (a *applier) linkCopy(tp, q string) error {
	tdir, tbase := splitName(tp)
	qdir, qbase := splitName(q)
	if _, _, err := a.walk(qdir, true); err != nil {
		return err
	}
	tfd, err := a.openDir(tdir)
	if err != nil {
		return err
	}
	defer unix.Close(tfd)
	qfd, err := a.openDir(qdir)
	if err != nil {
		return err
	}
	defer unix.Close(qfd)
	if err := a.touchDir(qdir, qfd); err != nil {
		return err
	}
	if err := unix.Linkat(tfd, tbase, qfd, qbase, 0); err != nil {
		return &fs.PathError{Op: "linkat", Path: q, Err: err}
	}
	return nil
}

// lookupNoFollow finds p in the merged view without following symlinks:
// a component that is not a directory makes p missing.
func (a *applier) lookupNoFollow(p string) (node, error) {
	n, cur := a.rootNode(), ""
	for c := range strings.SplitSeq(p, "/") {
		if !n.isDir() {
			return node{}, nil
		}
		cur = joinName(cur, c)
		var err error
		if n, err = a.lookup(n, cur); err != nil {
			return node{}, err
		}
	}
	return n, nil
}

// linkIndex returns the paths, by inode, of the non-directories with more
// than one link in a lower layer, reading the layer once per Apply.
func (a *applier) linkIndex(layer int) (map[uint64][]string, error) {
	if index, ok := a.links[layer]; ok {
		return index, nil
	}
	index := map[uint64][]string{}
	fd, err := unix.Openat(a.layers[layer], ".", openDirFlags, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "openat", Path: a.cfg.lowers[layer-1], Err: err}
	}
	if err := indexLinks(fd, "", index); err != nil {
		return nil, err
	}
	if a.links == nil {
		a.links = map[int]map[uint64][]string{}
	}
	a.links[layer] = index
	return index, nil
}

const openDirFlags = unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC

// indexLinks adds to index the multi-link files below the directory fd,
// whose path is p, and closes fd. It opens each directory relative to its
// parent, so depth is not limited by PATH_MAX.
func indexLinks(fd int, p string, index map[uint64][]string) error {
	f := os.NewFile(uintptr(fd), p)
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return &fs.PathError{Op: "readdir", Path: p, Err: err}
	}
	for _, name := range names {
		q := joinName(p, name)
		var st unix.Stat_t
		if err := unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return &fs.PathError{Op: "fstatat", Path: q, Err: err}
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			if st.Nlink > 1 {
				index[st.Ino] = append(index[st.Ino], q)
			}
			continue
		}
		child, err := unix.Openat(fd, name, openDirFlags, 0)
		if err != nil {
			return &fs.PathError{Op: "openat", Path: q, Err: err}
		}
		if err := indexLinks(child, q, index); err != nil {
			return err
		}
	}
	return nil
}

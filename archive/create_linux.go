package archive

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/strata-containers/strata/errdefs"
)

// create applies the non-whiteout entry hdr, named base in the resolved
// directory parent. A directory entry over a directory merges with it.
// Any other existing entry at that name is removed first, so nothing is
// ever written through a symlink or into another name's inode.
func (a *applier) create(hdr *tar.Header, r io.Reader, parentNode node, parent, base string) error {
	p := joinName(parent, base)
	if hdr.Typeflag == tar.TypeLink {
		return a.createHardlink(hdr, parent, base)
	}

	fd, err := a.parentFD(parent)
	if err != nil {
		return err
	}
	if err := a.touchDir(parent, fd); err != nil {
		return err
	}
	if hdr.Typeflag == tar.TypeDir {
		return a.createDir(hdr, parentNode, fd, p, base)
	}
	if err := a.checkDevice(hdr); err != nil {
		return err
	}
	// A lower directory that walk resolved at p is hidden from now on.
	a.forget(p)

	switch hdr.Typeflag {
	case tar.TypeSymlink:
		err := a.createAt(fd, base, p, "symlinkat", func() error {
			return unix.Symlinkat(hdr.Linkname, fd, base)
		})
		if err != nil {
			return err
		}
		return a.setMetadataAt(fd, p, base, hdr, false)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		mode := uint32(unix.S_IFIFO)
		switch hdr.Typeflag {
		case tar.TypeChar:
			mode = unix.S_IFCHR
		case tar.TypeBlock:
			mode = unix.S_IFBLK
		}
		dev := unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))
		err := a.createAt(fd, base, p, "mknodat", func() error {
			return unix.Mknodat(fd, base, mode|0o600, int(dev))
		})
		if err != nil {
			return err
		}
		return a.setMetadataAt(fd, p, base, hdr, true)
	}
	return a.createFile(hdr, r, fd, p, base)
}

// Linux device numbers have a 12-bit major and a 20-bit minor.
const (
	maxDevMajor = 1<<12 - 1
	maxDevMinor = 1<<20 - 1
)

func (a *applier) checkDevice(hdr *tar.Header) error {
	if hdr.Typeflag != tar.TypeChar && hdr.Typeflag != tar.TypeBlock {
		return nil
	}
	if hdr.Devmajor < 0 || hdr.Devmajor > maxDevMajor || hdr.Devminor < 0 ||
		hdr.Devminor > maxDevMinor {
		return fmt.Errorf("device number %d:%d out of range: %w",
			hdr.Devmajor, hdr.Devminor, errdefs.ErrInvalidLayer)
	}
	// An overlay upper directory cannot hold a char device 0:0 that is not
	// a whiteout: overlayfs would hide the lower entry instead. Native mode
	// rejects it too, so that both snapshotters give the same result.
	if hdr.Typeflag == tar.TypeChar && hdr.Devmajor == 0 && hdr.Devminor == 0 {
		return fmt.Errorf("char device 0:0, which overlayfs reads as a whiteout: %w",
			errdefs.ErrUnsupported)
	}
	return nil
}

func (a *applier) createFile(hdr *tar.Header, r io.Reader, dirfd int, p, base string) (err error) {
	// The file starts with its final permission bits, so that fchmod is
	// only needed when the umask, a default ACL or setuid, setgid and
	// sticky bits make the created mode differ.
	flags := unix.O_CREAT | unix.O_EXCL | unix.O_WRONLY | unix.O_NOFOLLOW | unix.O_CLOEXEC
	perm := uint32(hdr.Mode & 0o777)
	fd, err := unix.Openat(dirfd, base, flags, perm)
	if err == unix.EEXIST {
		if err := a.remove(dirfd, base, p); err != nil {
			return err
		}
		fd, err = unix.Openat(dirfd, base, flags, perm)
	}
	if err != nil {
		return &fs.PathError{Op: "openat", Path: p, Err: err}
	}
	if a.writer != nil && hdr.Size <= maxQueuedFile {
		return a.queueFile(fd, hdr, r, dirfd, p, base)
	}
	defer func() {
		unix.Close(fd)
		if err != nil {
			// A half-written file must not look like the layer's content.
			unix.Unlinkat(dirfd, base, 0)
		}
	}()

	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return &fs.PathError{Op: "fstat", Path: p, Err: err}
	}
	sum, err := a.writeContent(fd, p, r, hdr.Size)
	if err != nil {
		return err
	}
	if err := a.finishFile(fd, p, hdr, &st); err != nil {
		return err
	}
	a.files.add(st.Dev, st.Ino, hdr.Size, sum)
	return nil
}

// queueFile reads the content of the small file just created at fd and
// hands it to the file writer, which writes it and closes fd.
func (a *applier) queueFile(fd int, hdr *tar.Header, r io.Reader, dirfd int, p, base string) error {
	data := a.writer.reserve(hdr)
	if err := readContent(r, data); err != nil {
		unix.Close(fd)
		unix.Unlinkat(dirfd, base, 0)
		return err
	}
	a.writer.add(fd, hdr, p, data)
	return nil
}

// readContent fills data from the entry r, which must end right after.
func readContent(r io.Reader, data []byte) error {
	if _, err := io.ReadFull(r, data); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return classifyRead("read content", err)
	}
	return checkEntryEnd(r)
}

// checkEntryEnd reports an entry whose data goes on past its size.
// archive/tar reports a sparse map that does not match the stored data
// only on the read that reaches the end of the entry.
func checkEntryEnd(r io.Reader) error {
	var b [1]byte
	if n, err := r.Read(b[:]); n != 0 || !errors.Is(err, io.EOF) {
		if err == nil {
			err = errors.New("entry is longer than its size")
		}
		return classifyRead("read content", err)
	}
	return nil
}

// finishFile sets the owner, xattrs, mode and times of the regular file
// fd after its content is written; st is its fstat from before.
func (a *applier) finishFile(fd int, p string, hdr *tar.Header, st *unix.Stat_t) error {
	if err := a.setMetadataFD(fd, p, hdr, st); err != nil {
		return err
	}
	if mode := uint32(hdr.Mode & 0o7777); st.Mode&0o7777 != mode {
		if err := unix.Fchmod(fd, mode); err != nil {
			return &fs.PathError{Op: "fchmod", Path: p, Err: err}
		}
	}
	atime, mtime := headerTimes(hdr)
	return setTimesFD(fd, p, atime, mtime)
}

// writeContent copies size bytes of r to fd and returns their CRC-32C
// checksum. Blocks of zeros as long as the copy buffer are skipped, which
// keeps sparse files sparse: archive/tar returns their holes as zeros.
func (a *applier) writeContent(fd int, p string, r io.Reader, size int64) (uint32, error) {
	var sum uint32
	var off int64
	hole := false
	for off < size {
		chunk := a.buf[:min(int64(len(a.buf)), size-off)]
		if _, err := io.ReadFull(r, chunk); err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return sum, classifyRead("read content", err)
		}
		sum = crc32.Update(sum, castagnoli, chunk)
		hole = len(chunk) == len(a.buf) && bytes.Equal(chunk, zeroBlock[:])
		if !hole {
			if err := pwriteAll(fd, chunk, off); err != nil {
				return sum, &fs.PathError{Op: "pwrite", Path: p, Err: err}
			}
		}
		off += int64(len(chunk))
	}
	if hole {
		if err := unix.Ftruncate(fd, size); err != nil {
			return sum, &fs.PathError{Op: "ftruncate", Path: p, Err: err}
		}
	}

	if err := checkEntryEnd(r); err != nil {
		return sum, err
	}
	return sum, nil
}

var zeroBlock [copyBufferSize]byte

func pwriteAll(fd int, b []byte, off int64) error {
	for len(b) > 0 {
		n, err := unix.Pwrite(fd, b, off)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		b, off = b[n:], off+int64(n)
	}
	return nil
}

// createDir applies a directory entry. Over an existing directory it only
// changes the metadata, so the children stay. A new directory in overlay
// mode is opaque when it replaces a lower entry that is not a directory it
// merges with.
func (a *applier) createDir(hdr *tar.Header, parent node, dirfd int, p, base string) error {
	var st unix.Stat_t
	err := unix.Fstatat(dirfd, base, &st, unix.AT_SYMLINK_NOFOLLOW)
	if err != nil && err != unix.ENOENT {
		return &fs.PathError{Op: "fstatat", Path: p, Err: err}
	}
	upperExists := err == nil
	existing := upperExists && st.Mode&unix.S_IFMT == unix.S_IFDIR

	if !existing {
		a.forget(p)
		merged, err := a.lookup(parent, p)
		if err != nil {
			return err
		}
		lower, err := a.lowerHas(parent, p)
		if err != nil {
			return err
		}
		opaque := lower && (upperExists || !merged.isDir())

		err = a.createAt(dirfd, base, p, "mkdirat", func() error {
			return unix.Mkdirat(dirfd, base, 0o700)
		})
		if err != nil {
			return err
		}
		if opaque {
			if err := a.setOpaque(p); err != nil {
				return err
			}
		}
	}

	fd, err := unix.Openat(dirfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return &fs.PathError{Op: "openat", Path: p, Err: err}
	}
	defer unix.Close(fd)
	return a.setDirMetadata(fd, p, hdr, existing)
}

// setDirMetadata sets the owner and xattrs of the directory fd now and
// records its mode and times for finish. Over an existing directory, xattrs
// that the entry does not carry are removed, as the entry replaces the
// lower directory's metadata.
func (a *applier) setDirMetadata(fd int, p string, hdr *tar.Header, existing bool) error {
	if existing {
		if err := a.clearXattrs(fd, p, hdr); err != nil {
			return err
		}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return &fs.PathError{Op: "fstat", Path: p, Err: err}
	}
	if err := a.setMetadataFD(fd, p, hdr, &st); err != nil {
		return err
	}
	atime, mtime := headerTimes(hdr)
	a.pending[p] = &dirState{
		ino: st.Ino, setMode: true, mode: uint32(hdr.Mode & 0o7777), atime: atime, mtime: mtime,
	}
	return nil
}

// setMetadataFD sets the owner and then the xattrs of an open file, in
// that order because chown clears security.capability. st is the file's
// status before the change; fchown is skipped when it already has the
// owner, as a file the applier creates usually does.
//
// NOTE: ownership is always applied, so a caller without CAP_CHOWN fails
// here when the entry's owner is not the caller; there is no rootless mode
// yet.
func (a *applier) setMetadataFD(fd int, p string, hdr *tar.Header, st *unix.Stat_t) error {
	if hdr.Uid < 0 || hdr.Gid < 0 || st.Uid != uint32(hdr.Uid) || st.Gid != uint32(hdr.Gid) {
		if err := unix.Fchown(fd, hdr.Uid, hdr.Gid); err != nil {
			return &fs.PathError{Op: "fchown", Path: p, Err: err}
		}
	}
	return a.setXattrs(p, hdr, func(name string, value []byte) error {
		return unix.Fsetxattr(fd, name, value, 0)
	})
}

// setMetadataAt sets the metadata of base in dirfd, a symlink or a device
// node, never following a symlink.
func (a *applier) setMetadataAt(dirfd int, p, base string, hdr *tar.Header, chmod bool) error {
	if err := unix.Fchownat(dirfd, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &fs.PathError{Op: "fchownat", Path: p, Err: err}
	}
	target := procPath(dirfd) + "/" + base
	err := a.setXattrs(p, hdr, func(name string, value []byte) error {
		return unix.Lsetxattr(target, name, value, 0)
	})
	if err != nil {
		return err
	}
	if chmod {
		// base was just created by mknodat, so it is no symlink to follow.
		if err := unix.Fchmodat(dirfd, base, uint32(hdr.Mode&0o7777), 0); err != nil {
			return &fs.PathError{Op: "fchmodat", Path: p, Err: err}
		}
	}
	atime, mtime := headerTimes(hdr)
	ts := []unix.Timespec{atime, mtime}
	if err := unix.UtimesNanoAt(dirfd, base, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &fs.PathError{Op: "utimensat", Path: p, Err: err}
	}
	return nil
}

func headerTimes(hdr *tar.Header) (atime, mtime unix.Timespec) {
	mtime = timespec(hdr.ModTime)
	atime = mtime
	if !hdr.AccessTime.IsZero() {
		atime = timespec(hdr.AccessTime)
	}
	return atime, mtime
}

func timespec(t time.Time) unix.Timespec {
	return unix.Timespec{Sec: t.Unix(), Nsec: int64(t.Nanosecond())}
}

// setTimesFD sets the times of the open file fd with utimensat(2) on the
// descriptor itself (a NULL path), which saves the path walk of the
// /proc/self/fd link that unix.UtimesNanoAt would need.
func setTimesFD(fd int, p string, atime, mtime unix.Timespec) error {
	ts := [2]unix.Timespec{atime, mtime}
	_, _, errno := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(fd), 0,
		uintptr(unsafe.Pointer(&ts[0])), 0, 0, 0)
	if errno != 0 {
		return &fs.PathError{Op: "utimensat", Path: p, Err: errno}
	}
	return nil
}

const (
	xattrPrefix        = "SCHILY.xattr."
	overlayOpaqueXattr = "trusted.overlay.opaque"
	selinuxXattr       = "security.selinux"
)

// skipXattr reports whether an xattr from a layer is never set: overlayfs
// control xattrs would change how the snapshot merges, and SELinux labels
// belong to the host's policy.
func skipXattr(name string) bool {
	return strings.HasPrefix(name, "trusted.overlay.") ||
		strings.HasPrefix(name, "user.overlay.") || name == selinuxXattr
}

// setXattrs sets the SCHILY.xattr records of hdr. A file system without
// xattr support, and user xattrs on file types that cannot carry them, are
// logged at Debug and skipped.
func (a *applier) setXattrs(p string, hdr *tar.Header, set func(string, []byte) error) error {
	for key, value := range hdr.PAXRecords {
		name, ok := strings.CutPrefix(key, xattrPrefix)
		if !ok {
			continue
		}
		if skipXattr(name) {
			a.logDebug("skip xattr", p, "xattr", name)
			continue
		}
		err := set(name, []byte(value))
		regular := hdr.Typeflag == tar.TypeReg || hdr.Typeflag == tar.TypeDir
		switch {
		case err == nil:
		case errors.Is(err, unix.ENOTSUP), errors.Is(err, unix.EPERM) && !regular:
			a.logDebug("skip unsupported xattr", p, "xattr", name, "error", err)
		default:
			return &fs.PathError{Op: "setxattr " + name, Path: p, Err: err}
		}
	}
	return nil
}

// clearXattrs removes from fd the xattrs that hdr does not carry, except
// those that skipXattr protects.
func (a *applier) clearXattrs(fd int, p string, hdr *tar.Header) error {
	names, err := listXattrNamesFD(fd, p)
	if err != nil {
		return err
	}
	for _, name := range names {
		if skipXattr(name) {
			continue
		}
		if _, ok := hdr.PAXRecords[xattrPrefix+name]; ok {
			continue
		}
		if err := unix.Fremovexattr(fd, name); err != nil {
			return &fs.PathError{Op: "removexattr " + name, Path: p, Err: err}
		}
	}
	return nil
}

func listXattrNames(path string) ([]string, error) {
	buf := make([]byte, 1024)
	for {
		n, err := unix.Llistxattr(path, buf)
		if err == unix.ERANGE {
			buf = make([]byte, 2*len(buf))
			continue
		}
		if err == unix.ENOTSUP {
			return nil, nil
		}
		if err != nil {
			return nil, &fs.PathError{Op: "listxattr", Path: path, Err: err}
		}
		return splitXattrNames(buf[:n]), nil
	}
}

// listXattrNamesFD lists the xattr names of the open file fd, whose path
// p is only for errors.
func listXattrNamesFD(fd int, p string) ([]string, error) {
	buf := make([]byte, 1024)
	for {
		n, err := unix.Flistxattr(fd, buf)
		if err == unix.ERANGE {
			buf = make([]byte, 2*len(buf))
			continue
		}
		if err == unix.ENOTSUP {
			return nil, nil
		}
		if err != nil {
			return nil, &fs.PathError{Op: "flistxattr", Path: p, Err: err}
		}
		return splitXattrNames(buf[:n]), nil
	}
}

func splitXattrNames(b []byte) []string {
	var names []string
	for name := range strings.SplitSeq(string(b), "\x00") {
		if name != "" {
			names = append(names, name)
		}
	}
	return names
}

// listXattrs returns the xattrs of path, without following a final
// symlink, except those that skipXattr protects.
func listXattrs(path string) (map[string][]byte, error) {
	names, err := listXattrNames(path)
	if err != nil {
		return nil, err
	}
	xattrs := map[string][]byte{}
	for _, name := range names {
		if skipXattr(name) {
			continue
		}
		buf := make([]byte, 256)
		for {
			n, err := unix.Lgetxattr(path, name, buf)
			if err == unix.ERANGE {
				buf = make([]byte, 2*len(buf))
				continue
			}
			if err != nil {
				return nil, &fs.PathError{Op: "getxattr " + name, Path: path, Err: err}
			}
			xattrs[name] = buf[:n]
			break
		}
	}
	return xattrs, nil
}

// createAt calls mk, the system call op that creates base in dirfd, and
// when base exists, removes it and calls mk once more. Trying first saves
// an unlinkat on every new name.
func (a *applier) createAt(dirfd int, base, p, op string, mk func() error) error {
	err := mk()
	if err == unix.EEXIST {
		if err := a.remove(dirfd, base, p); err != nil {
			return err
		}
		err = mk()
	}
	if err != nil {
		return &fs.PathError{Op: op, Path: p, Err: err}
	}
	return nil
}

// remove removes base from dirfd like removeAt and drops what the applier
// cached about p and the paths below it.
func (a *applier) remove(dirfd int, base, p string) error {
	a.forget(p)
	return removeAt(dirfd, base, p)
}

// removeAt removes name from dirfd, recursively when it is a directory. A
// missing name is not an error.
func removeAt(dirfd int, name, p string) error {
	err := unix.Unlinkat(dirfd, name, 0)
	if err == nil || err == unix.ENOENT {
		return nil
	}
	if err != unix.EISDIR {
		return &fs.PathError{Op: "unlinkat", Path: p, Err: err}
	}

	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return &fs.PathError{Op: "openat", Path: p, Err: err}
	}
	f := os.NewFile(uintptr(fd), p)
	defer f.Close()
	// Read every name before removing any, as removing entries while
	// reading a directory may skip some.
	names, err := f.Readdirnames(-1)
	if err != nil {
		return &fs.PathError{Op: "readdir", Path: p, Err: err}
	}
	for _, child := range names {
		if err := removeAt(fd, child, joinName(p, child)); err != nil {
			return err
		}
	}
	if err := unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR); err != nil {
		return &fs.PathError{Op: "unlinkat", Path: p, Err: err}
	}
	return nil
}

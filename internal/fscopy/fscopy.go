// Package fscopy copies a directory tree with everything the kernel keeps
// about each file.
//
// [Copy] keeps owners, modes (setuid, setgid and sticky included), extended
// attributes (security.capability and trusted.* too, which need root to
// write), access and modification times (of directories and symbolic links
// too), hard links within the tree, device nodes, FIFOs, sockets and the
// holes of sparse files. File data goes through FICLONE where the file
// system shares extents, and through copy_file_range(2) otherwise, so that
// the kernel does the copy.
//
// With [WithWorkers], files with a single link are copied by worker
// goroutines while the walk goes on, and the attributes of directories are
// set once every entry exists.
//
// NOTE: change times (ctime) and birth times cannot be set from user space
// and are new on every copy.
package fscopy

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/sys/unix"
)

// Copy copies the tree at src into the existing directory dst, giving dst
// the attributes of src. Both must be on file systems that support the
// attributes src uses. A missing feature, such as xattrs on dst, is an error
// rather than a silent loss.
func Copy(ctx context.Context, dst, src string, opts ...Opt) error {
	c := &copier{ctx: ctx, links: map[inode]string{}, srcRoot: src, dstRoot: dst}
	for _, opt := range opts {
		opt(c)
	}
	var st unix.Stat_t
	if err := unix.Lstat(src, &st); err != nil {
		return &os.PathError{Op: "lstat", Path: src, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return &os.PathError{Op: "copy", Path: src, Err: unix.ENOTDIR}
	}
	c.startWorkers()
	err := c.copyDir(dst, src)
	if werr := c.stopWorkers(); err == nil {
		err = werr
	}
	if err == nil {
		// A worker that saw the context end skipped its files.
		err = ctx.Err()
	}
	if err != nil {
		return err
	}
	// In reverse order of creation, every directory comes after the
	// directories inside it, so no later change touches its times.
	for i := len(c.dirs) - 1; i >= 0; i-- {
		d := &c.dirs[i]
		if err := setAttrs(d.dst, d.src, &d.st); err != nil {
			return err
		}
	}
	return setAttrs(dst, src, &st)
}

// WithWorkers makes Copy copy files with a single link, and set their
// attributes, in n goroutines beside the walk. The [FileFunc] is then
// called from them, one call at a time. With n below 2 Copy copies every
// file itself.
func WithWorkers(n int) Opt {
	return func(c *copier) { c.workers = n }
}

// Opt sets an option of [Copy].
type Opt func(*copier)

// FileFunc is called by [Copy] for each regular file once its copy is
// complete, with the file's path relative to the tree's root, the status
// of the source and the status of the copy after its last change.
type FileFunc func(rel string, src, dst *unix.Stat_t)

// WithFileFunc makes Copy call fn for every regular file it copies,
// including the second and later names of a hard link group.
func WithFileFunc(fn FileFunc) Opt {
	return func(c *copier) { c.fileFunc = fn }
}

type inode struct{ dev, ino uint64 }

type copier struct {
	ctx context.Context
	// links maps the inode of a file with several links to its first
	// copy, so later names become hard links to that copy.
	links    map[inode]string
	fileFunc FileFunc
	srcRoot  string
	dstRoot  string
	// dirs lists the directories created, in order, for their attributes
	// to be set at the end.
	dirs []dirCopy

	workers int
	jobs    chan fileJob
	running sync.WaitGroup
	// mu guards err and the calls of fileFunc.
	mu  sync.Mutex
	err error
}

// dirCopy is a directory whose attributes are still to be set.
type dirCopy struct {
	dst, src string
	st       unix.Stat_t
}

// fileJob is a regular file for a worker to copy.
type fileJob struct {
	dst, src string
	st       unix.Stat_t
}

// jobQueue is how many files wait for a worker: enough to keep them busy
// while the walk reads a directory.
const jobQueue = 256

func (c *copier) startWorkers() {
	if c.workers < 2 {
		return
	}
	c.jobs = make(chan fileJob, jobQueue)
	for range c.workers {
		c.running.Add(1)
		go func() {
			defer c.running.Done()
			for j := range c.jobs {
				if c.failed() != nil {
					continue
				}
				if err := c.ctx.Err(); err != nil {
					c.fail(err)
					continue
				}
				c.fail(c.copyRegular(j.dst, j.src, &j.st))
			}
		}()
	}
}

// stopWorkers waits for the queued files and returns the first error of a
// worker.
func (c *copier) stopWorkers() error {
	if c.jobs == nil {
		return nil
	}
	close(c.jobs)
	c.running.Wait()
	return c.failed()
}

func (c *copier) fail(err error) {
	if err == nil {
		return
	}
	c.mu.Lock()
	if c.err == nil {
		c.err = err
	}
	c.mu.Unlock()
}

func (c *copier) failed() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// copyRegular copies the regular file src to dst with its attributes.
func (c *copier) copyRegular(dst, src string, st *unix.Stat_t) error {
	if err := copyFile(dst, src, st); err != nil {
		return err
	}
	if err := setAttrs(dst, src, st); err != nil {
		return err
	}
	return c.copied(dst, src, st)
}

// copied calls the FileFunc, if any, for the regular file copied from src
// to dst.
func (c *copier) copied(dst, src string, st *unix.Stat_t) error {
	if c.fileFunc == nil {
		return nil
	}
	rel, err := filepath.Rel(c.srcRoot, src)
	if err != nil {
		return err
	}
	var dstSt unix.Stat_t
	if err := unix.Lstat(dst, &dstSt); err != nil {
		return &os.PathError{Op: "lstat", Path: dst, Err: err}
	}
	c.mu.Lock()
	c.fileFunc(rel, st, &dstSt)
	c.mu.Unlock()
	return nil
}

// copyDir copies the entries of src into dst. The attributes of dst are
// set by the caller once all entries exist, because adding them changes
// the directory's modification time.
func (c *copier) copyDir(dst, src string) error {
	entries, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := c.ctx.Err(); err != nil {
			return err
		}
		if err := c.failed(); err != nil {
			return err
		}
		if err := c.copyEntry(filepath.Join(dst, e.Name()), filepath.Join(src, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

func (c *copier) copyEntry(dst, src string) error {
	var st unix.Stat_t
	if err := unix.Lstat(src, &st); err != nil {
		return &os.PathError{Op: "lstat", Path: src, Err: err}
	}
	format := st.Mode & unix.S_IFMT

	if format != unix.S_IFDIR && st.Nlink > 1 {
		key := inode{dev: uint64(st.Dev), ino: st.Ino}
		if first, ok := c.links[key]; ok {
			if err := os.Link(first, dst); err != nil {
				return err
			}
			if format == unix.S_IFREG {
				return c.copied(dst, src, &st)
			}
			return nil
		}
		c.links[key] = dst
	}

	switch format {
	case unix.S_IFDIR:
		if err := os.Mkdir(dst, 0o700); err != nil {
			return err
		}
		c.dirs = append(c.dirs, dirCopy{dst: dst, src: src, st: st})
		return c.copyDir(dst, src)
	case unix.S_IFREG:
		if c.jobs != nil && st.Nlink == 1 {
			c.jobs <- fileJob{dst: dst, src: src, st: st}
			return nil
		}
		return c.copyRegular(dst, src, &st)
	case unix.S_IFLNK:
		target, err := os.Readlink(src)
		if err != nil {
			return err
		}
		if err := os.Symlink(target, dst); err != nil {
			return err
		}
	case unix.S_IFBLK, unix.S_IFCHR, unix.S_IFIFO, unix.S_IFSOCK:
		if err := unix.Mknod(dst, st.Mode, int(st.Rdev)); err != nil {
			return &os.PathError{Op: "mknod", Path: dst, Err: err}
		}
	default:
		return &os.PathError{Op: "copy", Path: src,
			Err: fmt.Errorf("unknown file type %#o", format)}
	}
	return setAttrs(dst, src, &st)
}

// setAttrs gives dst the owner, mode, xattrs and times of src, in that
// order: chown clears setuid, setgid and security.capability, and every
// change but the last touches times.
func setAttrs(dst, src string, st *unix.Stat_t) error {
	if err := unix.Lchown(dst, int(st.Uid), int(st.Gid)); err != nil {
		return &os.PathError{Op: "lchown", Path: dst, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFLNK {
		// chmod(2) follows symbolic links, and Linux ignores their mode.
		if err := unix.Chmod(dst, st.Mode&0o7777); err != nil {
			return &os.PathError{Op: "chmod", Path: dst, Err: err}
		}
	}
	if err := copyXattrs(dst, src); err != nil {
		return err
	}
	ts := []unix.Timespec{st.Atim, st.Mtim}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, dst, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "utimensat", Path: dst, Err: err}
	}
	return nil
}

func copyXattrs(dst, src string) error {
	names, err := listXattrs(src)
	if err != nil {
		return err
	}
	for _, name := range names {
		value, err := getXattr(src, name)
		if err != nil {
			return err
		}
		if err := unix.Lsetxattr(dst, name, value, 0); err != nil {
			return &os.PathError{Op: "lsetxattr " + name, Path: dst, Err: err}
		}
	}
	return nil
}

func listXattrs(path string) ([]string, error) {
	buf := make([]byte, 256)
	for {
		n, err := unix.Llistxattr(path, buf)
		if errors.Is(err, unix.ERANGE) {
			size, err := unix.Llistxattr(path, nil)
			if err != nil {
				return nil, &os.PathError{Op: "llistxattr", Path: path, Err: err}
			}
			buf = make([]byte, size)
			continue
		}
		if errors.Is(err, unix.ENOTSUP) {
			return nil, nil
		}
		if err != nil {
			return nil, &os.PathError{Op: "llistxattr", Path: path, Err: err}
		}
		var names []string
		for start := 0; start < n; {
			end := start
			for end < n && buf[end] != 0 {
				end++
			}
			if end > start {
				names = append(names, string(buf[start:end]))
			}
			start = end + 1
		}
		return names, nil
	}
}

func getXattr(path, name string) ([]byte, error) {
	buf := make([]byte, 256)
	for {
		n, err := unix.Lgetxattr(path, name, buf)
		if errors.Is(err, unix.ERANGE) {
			size, err := unix.Lgetxattr(path, name, nil)
			if err != nil {
				return nil, &os.PathError{Op: "lgetxattr " + name, Path: path, Err: err}
			}
			buf = make([]byte, size)
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "lgetxattr " + name, Path: path, Err: err}
		}
		return buf[:n], nil
	}
}

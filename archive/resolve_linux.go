package archive

import (
	"archive/tar"
	"fmt"
	"io/fs"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// maxSymlinks is the number of symlinks one resolution may follow, as in
// the kernel's path walk.
const maxSymlinks = 40

// node is an entry of the merged view: root alone in native mode, root over
// the lowers in overlay mode.
type node struct {
	exists bool
	mode   uint32
	// layer is the index in applier.layers of the topmost layer holding the
	// entry.
	layer int
	// dirLayers lists, for a directory, the layers whose copies of it
	// merge, topmost first.
	dirLayers []int
}

func (n node) isDir() bool     { return n.exists && n.mode&unix.S_IFMT == unix.S_IFDIR }
func (n node) isSymlink() bool { return n.exists && n.mode&unix.S_IFMT == unix.S_IFLNK }

func (a *applier) rootNode() node {
	n := node{exists: true, mode: unix.S_IFDIR, dirLayers: make([]int, len(a.layers))}
	for i := range a.layers {
		n.dirLayers[i] = i
	}
	return n
}

func isWhiteout(st *unix.Stat_t) bool {
	return st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0
}

func procPath(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }

// lstat stats p in one layer without following a final symlink. Callers
// only pass paths whose parents are real directories in that layer.
func (a *applier) lstat(layer int, p string) (unix.Stat_t, error) {
	var st unix.Stat_t
	err := unix.Fstatat(a.layers[layer], p, &st, unix.AT_SYMLINK_NOFOLLOW)
	return st, err
}

// isOpaque reports whether the directory p in layer carries the overlay
// opaque xattr. A path it cannot open is an error, never "not opaque".
func (a *applier) isOpaque(layer int, p string) (bool, error) {
	name, done, err := a.xattrPath(layer, p)
	if err != nil {
		return false, err
	}
	defer done()
	buf := make([]byte, 4)
	n, err := unix.Lgetxattr(name, overlayOpaqueXattr, buf)
	return err == nil && n == 1 && buf[0] == 'y', nil
}

// xattrPath returns a path to p in layer for the xattr calls, which take
// a path and fail past PATH_MAX. The path is the layer's /proc/self/fd
// link joined to p. When that is too long, xattrPath opens p's parent in
// steps and joins its link to p's base name, and done closes it.
func (a *applier) xattrPath(layer int, p string) (name string, done func(), err error) {
	name = procPath(a.layers[layer]) + "/" + p
	if len(name) < unix.PathMax {
		return name, func() {}, nil
	}
	dir, base := splitName(p)
	fd, err := a.openPathAt(a.layers[layer], dir, unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return "", nil, err
	}
	return procPath(fd) + "/" + base, func() { unix.Close(fd) }, nil
}

// lookup finds p, a child of the directory parent, in the merged view. In
// overlay mode it follows overlayfs's rules: the topmost layer holding p
// wins, a whiteout hides p, and a directory merges with the directories at
// p below it until an opaque one or a non-directory.
func (a *applier) lookup(parent node, p string) (node, error) {
	var n node
	for _, layer := range parent.dirLayers {
		st, err := a.lstat(layer, p)
		if err == unix.ENOENT || err == unix.ENOTDIR {
			continue
		}
		if err != nil {
			return node{}, &fs.PathError{Op: "fstatat", Path: p, Err: err}
		}

		if !n.exists {
			if a.cfg.overlay && isWhiteout(&st) {
				return node{}, nil
			}
			n = node{exists: true, mode: st.Mode, layer: layer}
			if !n.isDir() {
				return n, nil
			}
			n.dirLayers = []int{layer}
			if a.cfg.overlay {
				opaque, err := a.isOpaque(layer, p)
				if err != nil {
					return node{}, err
				}
				if opaque {
					return n, nil
				}
			}
			continue
		}

		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			break
		}
		n.dirLayers = append(n.dirLayers, layer)
		opaque, err := a.isOpaque(layer, p)
		if err != nil {
			return node{}, err
		}
		if opaque {
			break
		}
	}
	return n, nil
}

// lowerHas reports whether the lowers, without root, show an entry at p, a
// child of the directory parent.
func (a *applier) lowerHas(parent node, p string) (bool, error) {
	if !a.cfg.overlay {
		return false, nil
	}
	lower := node{}
	for _, layer := range parent.dirLayers {
		if layer != 0 {
			lower.dirLayers = append(lower.dirLayers, layer)
		}
	}
	n, err := a.lookup(lower, p)
	return n.exists, err
}

func (a *applier) readlink(layer int, p string) (string, error) {
	buf := make([]byte, 256)
	for {
		n, err := unix.Readlinkat(a.layers[layer], p, buf)
		if err != nil {
			return "", &fs.PathError{Op: "readlinkat", Path: p, Err: err}
		}
		if n < len(buf) {
			return string(buf[:n]), nil
		}
		buf = make([]byte, 2*len(buf))
	}
}

type frame struct {
	path string
	node node
}

// walk resolves the directory p in the merged view, component by
// component, following symlinks as if root were "/": an absolute target
// restarts at the root and ".." stops at the root. It returns the resolved
// path, which contains no symlinks, and its node.
//
// With create, walk creates missing directories and, in overlay mode,
// copies lower directories up, so that the result exists in root. A
// non-directory component is then an error. Without create, a missing or
// non-directory component gives a node whose exists is false.
func (a *applier) walk(p string, create bool) (string, node, error) {
	var stack []frame
	cur, n := "", a.rootNode()
	todo := strings.Split(p, "/")
	links := 0
	for len(todo) > 0 {
		c := todo[0]
		todo = todo[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(stack) > 0 {
				cur, n = stack[len(stack)-1].path, stack[len(stack)-1].node
				stack = stack[:len(stack)-1]
			}
			continue
		}

		child := joinName(cur, c)
		cn, cached := a.dirCache[child]
		if !cached {
			var err error
			if cn, err = a.lookup(n, child); err != nil {
				return "", node{}, err
			}
		}
		var err error
		switch {
		case cn.isSymlink():
			links++
			if links > maxSymlinks {
				return "", node{}, &fs.PathError{Op: "resolve", Path: child, Err: unix.ELOOP}
			}
			target, err := a.readlink(cn.layer, child)
			if err != nil {
				return "", node{}, err
			}
			if strings.HasPrefix(target, "/") {
				stack, cur, n = stack[:0], "", a.rootNode()
			}
			todo = append(strings.Split(target, "/"), todo...)
			continue
		case !cn.exists:
			if !create {
				return child, node{}, nil
			}
			if cn, err = a.mkdirImplied(n, cur, c); err != nil {
				return "", node{}, err
			}
		case !cn.isDir():
			if !create {
				return child, node{}, nil
			}
			return "", node{}, &fs.PathError{Op: "resolve", Path: child, Err: unix.ENOTDIR}
		case create && cn.layer != 0:
			if cn, err = a.copyUpDir(cur, c, cn); err != nil {
				return "", node{}, err
			}
		}
		a.dirCache[child] = cn
		stack = append(stack, frame{cur, n})
		cur, n = child, cn
	}
	return cur, n, nil
}

// forget drops the cached nodes of p and of the paths below it, and the
// cached descriptor of the directory that create last used when it is p
// or below p. Every change that removes, replaces, hides or makes opaque
// the directory at p calls it. A path is cached only after all its
// ancestors are, so a p that is not cached has nothing cached below it.
func (a *applier) forget(p string) {
	if a.parentDirFD >= 0 && (p == "" || a.parentDir == p ||
		strings.HasPrefix(a.parentDir, p+"/")) {
		unix.Close(a.parentDirFD)
		a.parentDirFD = -1
	}
	if p == "" {
		clear(a.dirCache)
		return
	}
	if _, ok := a.dirCache[p]; !ok {
		return
	}
	delete(a.dirCache, p)
	// NOTE: this scans the whole cache, which is only slow for a layer
	// that replaces many directories that it resolved before.
	prefix := p + "/"
	for q := range a.dirCache {
		if strings.HasPrefix(q, prefix) {
			delete(a.dirCache, q)
		}
	}
}

// parentFD returns an O_PATH descriptor of the resolved directory p, which
// stays open until the applier opens another one or drops p from its cache. The caller
// must not close it.
func (a *applier) parentFD(p string) (int, error) {
	if a.parentDirFD >= 0 && a.parentDir == p {
		return a.parentDirFD, nil
	}
	fd, err := a.openDir(p)
	if err != nil {
		return -1, err
	}
	if a.parentDirFD >= 0 {
		unix.Close(a.parentDirFD)
	}
	a.parentDir, a.parentDirFD = p, fd
	return fd, nil
}

// pathChunk bounds the length of one path handed to openat2, below
// PATH_MAX, so that deeper paths open in several steps.
const pathChunk = 3072

// openPath opens the in-root path p, which must contain no symlinks, with
// RESOLVE_NO_SYMLINKS so that nothing outside root can ever be reached.
func (a *applier) openPath(p string, flags int) (int, error) {
	return a.openPathAt(a.root(), p, flags)
}

// openPathAt opens p below the layer directory layerFD like openPath.
func (a *applier) openPathAt(layerFD int, p string, flags int) (int, error) {
	resolve := uint64(unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS)
	dirfd, rest := layerFD, p
	for len(rest) > pathChunk {
		i := strings.LastIndexByte(rest[:pathChunk], '/')
		if i <= 0 {
			return -1, &fs.PathError{Op: "openat2", Path: p, Err: unix.ENAMETOOLONG}
		}
		fd, err := unix.Openat2(dirfd, rest[:i], &unix.OpenHow{
			Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
			Resolve: resolve,
		})
		if dirfd != layerFD {
			unix.Close(dirfd)
		}
		if err != nil {
			return -1, &fs.PathError{Op: "openat2", Path: p, Err: err}
		}
		dirfd, rest = fd, rest[i+1:]
	}
	if rest == "" {
		rest = "."
	}
	fd, err := unix.Openat2(dirfd, rest, &unix.OpenHow{
		Flags:   uint64(flags) | unix.O_CLOEXEC | unix.O_NOFOLLOW,
		Resolve: resolve,
	})
	if dirfd != layerFD {
		unix.Close(dirfd)
	}
	if err != nil {
		return -1, &fs.PathError{Op: "openat2", Path: p, Err: err}
	}
	return fd, nil
}

func (a *applier) openDir(p string) (int, error) {
	return a.openPath(p, unix.O_PATH|unix.O_DIRECTORY)
}

// mkdirImplied creates a directory that an entry needs as a parent but
// that no entry listed: mode 0755, owned by the applier, with the mtime of
// the entry that needs it. A directory that
// replaces a whiteout of this layer, or hides a lower entry, is opaque so
// that no lower content shows through it.
func (a *applier) mkdirImplied(parent node, dir, name string) (node, error) {
	p := joinName(dir, name)
	fd, err := a.openDir(dir)
	if err != nil {
		return node{}, err
	}
	defer unix.Close(fd)
	if err := a.touchDir(dir, fd); err != nil {
		return node{}, err
	}
	opaque, err := a.lowerHas(parent, p)
	if err != nil {
		return node{}, err
	}

	err = a.createAt(fd, name, p, "mkdirat", func() error { return unix.Mkdirat(fd, name, 0o700) })
	if err != nil {
		return node{}, err
	}
	if err := unix.Fchmodat(fd, name, 0o755, 0); err != nil {
		return node{}, &fs.PathError{Op: "fchmodat", Path: p, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return node{}, &fs.PathError{Op: "fstatat", Path: p, Err: err}
	}
	a.pending[p] = &dirState{ino: st.Ino, atime: a.entryTime, mtime: a.entryTime}
	if opaque {
		if err := a.setOpaque(p); err != nil {
			return node{}, err
		}
	}
	return node{exists: true, mode: unix.S_IFDIR | 0o755, dirLayers: []int{0}}, nil
}

// copyUpDir creates in root a directory that exists only in a lower layer,
// with the lower directory's owner, mode, times and xattrs, as overlayfs's
// own copy-up does. The mode and times are set by finish.
func (a *applier) copyUpDir(dir, name string, lower node) (node, error) {
	p := joinName(dir, name)
	st, err := a.lstat(lower.layer, p)
	if err != nil {
		return node{}, &fs.PathError{Op: "fstatat", Path: p, Err: err}
	}
	xattrs, err := a.lowerXattrs(lower.layer, p)
	if err != nil {
		return node{}, err
	}

	pfd, err := a.openDir(dir)
	if err != nil {
		return node{}, err
	}
	defer unix.Close(pfd)
	if err := a.touchDir(dir, pfd); err != nil {
		return node{}, err
	}
	if err := unix.Mkdirat(pfd, name, 0o700); err != nil {
		return node{}, &fs.PathError{Op: "mkdirat", Path: p, Err: err}
	}
	fd, err := unix.Openat(pfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return node{}, &fs.PathError{Op: "openat", Path: p, Err: err}
	}
	defer unix.Close(fd)
	if err := copyOwnerAndXattrs(fd, p, &st, xattrs); err != nil {
		return node{}, err
	}

	var up unix.Stat_t
	if err := unix.Fstat(fd, &up); err != nil {
		return node{}, &fs.PathError{Op: "fstat", Path: p, Err: err}
	}
	a.pending[p] = &dirState{
		ino: up.Ino, setMode: true, mode: st.Mode & 0o7777, atime: st.Atim, mtime: st.Mtim,
	}
	n := node{exists: true, mode: st.Mode, dirLayers: append([]int{0}, lower.dirLayers...)}
	return n, nil
}

// copyUpRoot gives root the owner, mode, times and xattrs of the topmost
// lower root. overlayfs shows the upper root's attributes for the merged
// root, so without this a layer without a "./" entry would reset them.
func (a *applier) copyUpRoot() error {
	var st unix.Stat_t
	if err := unix.Fstat(a.layers[1], &st); err != nil {
		return &fs.PathError{Op: "fstat", Path: a.cfg.lowers[0], Err: err}
	}
	// The trailing slash makes the xattr calls follow the /proc link to
	// the directory.
	xattrs, err := listXattrs(procPath(a.layers[1]) + "/")
	if err != nil {
		return err
	}
	fd, err := a.openPath("", unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := a.clearXattrs(fd, "", &tar.Header{}); err != nil {
		return err
	}
	if err := copyOwnerAndXattrs(fd, "", &st, xattrs); err != nil {
		return err
	}
	if err := unix.Fchmod(fd, st.Mode&0o7777); err != nil {
		return &fs.PathError{Op: "fchmod", Path: "", Err: err}
	}
	return setTimesFD(fd, "", st.Atim, st.Mtim)
}

// lowerXattrs returns the xattrs of p in a lower layer, as listXattrs
// does.
func (a *applier) lowerXattrs(layer int, p string) (map[string][]byte, error) {
	name, done, err := a.xattrPath(layer, p)
	if err != nil {
		return nil, err
	}
	defer done()
	return listXattrs(name)
}

func copyOwnerAndXattrs(fd int, p string, st *unix.Stat_t, xattrs map[string][]byte) error {
	if err := unix.Fchown(fd, int(st.Uid), int(st.Gid)); err != nil {
		return &fs.PathError{Op: "fchown", Path: p, Err: err}
	}
	for name, value := range xattrs {
		if err := unix.Fsetxattr(fd, name, value, 0); err != nil {
			return &fs.PathError{Op: "fsetxattr " + name, Path: p, Err: err}
		}
	}
	return nil
}

func (a *applier) setOpaque(p string) error {
	// The directories below p no longer merge with the lowers.
	a.forget(p)
	fd, err := a.openPath(p, unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := unix.Fsetxattr(fd, overlayOpaqueXattr, []byte("y"), 0); err != nil {
		return fmt.Errorf("set opaque xattr on %s: %w", p, err)
	}
	return nil
}

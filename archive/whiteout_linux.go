package archive

import (
	"fmt"
	"io/fs"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/strata-containers/strata/errdefs"
)

// applyWhiteout applies an entry whose base name starts with ".wh." in the
// directory dir. The target's parent resolves like an entry name, but no
// directory is created for it: a whiteout under a missing parent hides
// nothing.
func (a *applier) applyWhiteout(dir, base string) error {
	if base == opaqueMarker {
		return a.applyOpaque(dir)
	}
	if strings.HasPrefix(base, aufsPrefix) {
		return fmt.Errorf("AUFS metadata entry %q: %w", base, errdefs.ErrUnsupported)
	}
	target := strings.TrimPrefix(base, whiteoutPrefix)
	if target == "" || target == "." || target == ".." {
		return fmt.Errorf("malformed whiteout name %q: %w", base, errdefs.ErrInvalidLayer)
	}

	parent, n, err := a.walk(dir, false)
	if err != nil || !n.isDir() {
		return err
	}
	return a.hide(parent, n, target)
}

// applyOpaque hides every child that the lower layers put in dir, keeping
// what this layer wrote there, whether before or after the marker.
func (a *applier) applyOpaque(dir string) error {
	p, n, err := a.walk(dir, false)
	if err != nil || !n.isDir() {
		return err
	}
	if !a.cfg.overlay || p == "" {
		// NOTE: overlayfs builds the root's layer stack without looking
		// for an opaque xattr, so an opaque root gets one whiteout per
		// lower entry instead.
		names, err := a.childNames(n, p)
		if err != nil {
			return err
		}
		for _, name := range names {
			if err := a.hide(p, n, name); err != nil {
				return err
			}
		}
		return nil
	}

	if _, _, err := a.walk(p, true); err != nil {
		return err
	}
	if err := a.pruneUpper(p); err != nil {
		return err
	}
	return a.setOpaque(p)
}

// hide removes name in the resolved directory parent from the merged view,
// except what this layer wrote: a written file stays, and a directory that
// holds written paths keeps those paths and loses the rest.
func (a *applier) hide(parent string, parentNode node, name string) error {
	p := joinName(parent, name)
	st, err := a.lstat(0, p)
	if err != nil && err != unix.ENOENT {
		return &fs.PathError{Op: "fstatat", Path: p, Err: err}
	}

	if err == nil {
		flags := a.paths[p]
		isDir := st.Mode&unix.S_IFMT == unix.S_IFDIR
		if !isDir && flags&pathWritten != 0 {
			return nil
		}
		if isDir && flags != 0 {
			return a.hideInDir(parentNode, p)
		}
		if err := a.removeChild(parent, name); err != nil {
			return err
		}
	}

	lower, err := a.lowerHas(parentNode, p)
	if err != nil || !lower {
		return err
	}
	if _, _, err := a.walk(parent, true); err != nil {
		return err
	}
	fd, err := a.openDir(parent)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := a.touchDir(parent, fd); err != nil {
		return err
	}
	a.forget(p)
	if err := unix.Mknodat(fd, name, unix.S_IFCHR, 0); err != nil {
		return &fs.PathError{Op: "mknodat whiteout", Path: p, Err: err}
	}
	return nil
}

// hideInDir hides the lower content of p, a directory in root that holds
// paths this layer wrote.
func (a *applier) hideInDir(parentNode node, p string) error {
	if !a.cfg.overlay {
		n := node{exists: true, mode: unix.S_IFDIR, dirLayers: []int{0}}
		names, err := a.childNames(n, p)
		if err != nil {
			return err
		}
		for _, name := range names {
			if err := a.hide(p, n, name); err != nil {
				return err
			}
		}
		return nil
	}

	if err := a.pruneUpper(p); err != nil {
		return err
	}
	lower, err := a.lowerHas(parentNode, p)
	if err != nil || !lower {
		return err
	}
	return a.setOpaque(p)
}

// pruneUpper removes from the root directory p everything that this layer
// did not write: whiteouts, copied-up files and copied-up directories. It
// runs before p is made opaque, as an opaque directory needs none of them.
func (a *applier) pruneUpper(p string) error {
	n := node{exists: true, mode: unix.S_IFDIR, dirLayers: []int{0}}
	names, err := a.childNames(n, p)
	if err != nil {
		return err
	}
	for _, name := range names {
		q := joinName(p, name)
		st, err := a.lstat(0, q)
		if err != nil {
			return &fs.PathError{Op: "fstatat", Path: q, Err: err}
		}
		flags := a.paths[q]
		isDir := st.Mode&unix.S_IFMT == unix.S_IFDIR
		switch {
		case !isDir && flags&pathWritten != 0:
		case isDir && flags != 0 && !isWhiteout(&st):
			if err := a.pruneUpper(q); err != nil {
				return err
			}
		default:
			if err := a.removeChild(p, name); err != nil {
				return err
			}
		}
	}
	return nil
}

func (a *applier) removeChild(dir, name string) error {
	fd, err := a.openDir(dir)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := a.touchDir(dir, fd); err != nil {
		return err
	}
	return a.remove(fd, name, joinName(dir, name))
}

// childNames lists the names in directory p across the layers that merge
// into it, whiteouts included.
func (a *applier) childNames(n node, p string) ([]string, error) {
	seen := map[string]bool{}
	var names []string
	dir := p
	if dir == "" {
		dir = "."
	}
	for _, layer := range n.dirLayers {
		fd, err := unix.Openat(a.layers[layer], dir,
			unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err == unix.ENOENT {
			continue
		}
		if err != nil {
			return nil, &fs.PathError{Op: "openat", Path: p, Err: err}
		}
		f := os.NewFile(uintptr(fd), p)
		list, err := f.Readdirnames(-1)
		f.Close()
		if err != nil {
			return nil, &fs.PathError{Op: "readdir", Path: p, Err: err}
		}
		for _, name := range list {
			if !seen[name] {
				seen[name] = true
				names = append(names, name)
			}
		}
	}
	return names, nil
}

package archive

import (
	"archive/tar"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/strata-containers/strata/errdefs"
	"github.com/strata-containers/strata/log"
)

// Flags in applier.paths. Whiteouts and opaque markers hide only what lower
// layers put in place, so the applier records what this layer wrote.
const (
	// pathWritten marks a path that an entry of this layer created.
	pathWritten uint8 = 1 << iota
	// pathHasWritten marks a directory with a written path below it.
	pathHasWritten
)

// dirState is a directory whose mode and times are set after the whole
// layer is applied: creating and removing children changes a directory's
// mtime, and a read-only mode would block later children.
type dirState struct {
	ino          uint64
	setMode      bool
	mode         uint32
	atime, mtime unix.Timespec
}

// applier applies the entries of one layer. layers[0] is root, the only
// layer written to; in overlay mode layers[1:] are the lowers, topmost
// first. All paths are in-root paths as returned by cleanName.
type applier struct {
	ctx     context.Context
	cfg     applyConfig
	layers  []int
	paths   map[string]uint8
	pending map[string]*dirState
	buf     []byte
	// entryTime is the mtime of the entry being applied, which the
	// directories it implies get, so that their times do not depend on
	// when the layer was applied.
	entryTime unix.Timespec
	// links indexes, per lower layer, the paths of inodes with more than
	// one link, built when a hard link first needs a copy-up from it.
	links map[int]map[uint64][]string

	// dirCache holds, by resolved path, the nodes of the directories that
	// walk went through; see forget for how it stays true.
	dirCache map[string]node
	// parentDir is the resolved directory whose O_PATH descriptor
	// parentDirFD create keeps open across entries, -1 when none is.
	parentDir   string
	parentDirFD int

	// files records the checksums of the regular files this layer wrote.
	files *FileSums
	// writer writes small files on other goroutines; nil when
	// WithFileWorkers set none.
	writer *fileWriter
	// flusher is the writeback that WithWriteback started, or nil.
	flusher *writeback
}

// copyBufferSize is the size of the buffer that file content is read into
// and written from.
const copyBufferSize = 1 << 20

func newApplier(ctx context.Context, root string, cfg applyConfig) (*applier, error) {
	a := &applier{
		ctx:         ctx,
		cfg:         cfg,
		paths:       map[string]uint8{},
		pending:     map[string]*dirState{},
		dirCache:    map[string]node{},
		parentDirFD: -1,
		files:       &FileSums{m: map[fileID]fileSum{}},
	}
	for _, dir := range append([]string{root}, cfg.lowers...) {
		fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			a.close()
			return nil, fmt.Errorf("open layer root %s: %w", dir, err)
		}
		a.layers = append(a.layers, fd)
	}
	a.buf = make([]byte, copyBufferSize)
	if cfg.fileWorkers > 0 {
		a.writer = newFileWriter(a, cfg.fileWorkers)
	}
	if cfg.writeback > 0 {
		a.flusher = startWriteback(ctx, root, cfg.writeback)
	}
	if cfg.overlay && len(cfg.lowers) > 0 {
		if err := a.copyUpRoot(); err != nil {
			a.close()
			return nil, classifyFS(err)
		}
	}
	return a, nil
}

func (a *applier) close() {
	if a.writer != nil {
		a.writer.close()
		a.writer = nil
	}
	a.flusher.close()
	if a.parentDirFD >= 0 {
		unix.Close(a.parentDirFD)
		a.parentDirFD = -1
	}
	for _, fd := range a.layers {
		unix.Close(fd)
	}
	a.layers = nil
}

func (a *applier) root() int { return a.layers[0] }

// stopWriteback stops the flushing that WithWriteback started and returns
// the first error of its syncfs calls, such as EIO or ENOSPC from writing
// the layer out.
func (a *applier) stopWriteback() error {
	if err := a.flusher.close(); err != nil {
		return classifyFS(err)
	}
	return nil
}

// waitFiles waits until the queued files are written and returns the
// first error writing one.
func (a *applier) waitFiles() error {
	if a.writer == nil {
		return nil
	}
	return a.writer.wait()
}

// filesFailed returns the first error writing a queued file, without
// waiting for the others.
func (a *applier) filesFailed() error {
	if a.writer == nil {
		return nil
	}
	return a.writer.failed()
}

func (a *applier) applyEntry(hdr *tar.Header, r io.Reader) error {
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		return nil
	}
	if err := a.checkLimits(hdr); err != nil {
		return err
	}
	_, a.entryTime = headerTimes(hdr)
	name, err := cleanName(hdr.Name)
	if err != nil {
		return err
	}
	if d := depth(name); d > a.cfg.limits.MaxDepth {
		return limitError("path depth", int64(d), int64(a.cfg.limits.MaxDepth))
	}

	dir, base := splitName(name)
	if strings.HasPrefix(base, whiteoutPrefix) {
		return a.applyWhiteout(dir, base)
	}
	if name == "" {
		return a.applyRoot(hdr)
	}

	switch hdr.Typeflag {
	case tar.TypeReg, '\x00', tar.TypeGNUSparse, tar.TypeCont, tar.TypeDir,
		tar.TypeSymlink, tar.TypeLink, tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
	default:
		return fmt.Errorf("entry type %q: %w", hdr.Typeflag, errdefs.ErrUnsupported)
	}

	parent, parentNode, err := a.walk(dir, true)
	if err != nil {
		return err
	}
	p := joinName(parent, base)
	if err := a.create(hdr, r, parentNode, parent, base); err != nil {
		return err
	}
	a.markWritten(p)
	return nil
}

func (a *applier) checkLimits(hdr *tar.Header) error {
	l := a.cfg.limits
	if len(hdr.Name) > l.MaxPathLength {
		return limitError("path length", int64(len(hdr.Name)), int64(l.MaxPathLength))
	}
	switch hdr.Typeflag {
	case tar.TypeLink:
		if len(hdr.Linkname) > l.MaxPathLength {
			return limitError("hard link target length",
				int64(len(hdr.Linkname)), int64(l.MaxPathLength))
		}
	case tar.TypeSymlink:
		if len(hdr.Linkname) > l.MaxSymlinkTarget {
			return limitError("symlink target length",
				int64(len(hdr.Linkname)), int64(l.MaxSymlinkTarget))
		}
		if strings.IndexByte(hdr.Linkname, 0) >= 0 {
			return fmt.Errorf("symlink target contains a NUL byte: %w", errdefs.ErrInvalidLayer)
		}
	}
	if hdr.Size > l.MaxSize {
		return limitError("file size", hdr.Size, l.MaxSize)
	}
	return nil
}

// applyRoot applies a "./" or "/" entry. The owner, xattrs, mode and times
// of a directory entry go to the root directory. Any other type would
// replace the root itself, so it is rejected.
func (a *applier) applyRoot(hdr *tar.Header) error {
	if hdr.Typeflag != tar.TypeDir {
		return fmt.Errorf("change type of root to %q: %w", hdr.Typeflag, errdefs.ErrInvalidLayer)
	}
	fd, err := a.openPath("", unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return a.setDirMetadata(fd, "", hdr, true)
}

func (a *applier) markWritten(p string) {
	a.paths[p] |= pathWritten
	for p != "" {
		p, _ = splitName(p)
		if a.paths[p]&pathHasWritten != 0 {
			return
		}
		a.paths[p] |= pathHasWritten
	}
}

// touchDir records the times of directory p before the applier adds or
// removes a child, so that finish can restore them. Directories that the
// layer lists keep the times of their entries instead.
func (a *applier) touchDir(p string, fd int) error {
	if _, ok := a.pending[p]; ok {
		return nil
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return &fs.PathError{Op: "fstat", Path: p, Err: err}
	}
	a.pending[p] = &dirState{ino: st.Ino, atime: st.Atim, mtime: st.Mtim}
	return nil
}

// finish sets the mode and times of every directory the layer listed or
// changed, deepest first. A directory that a later entry removed or
// replaced is skipped: its inode no longer matches.
func (a *applier) finish() error {
	if err := a.waitFiles(); err != nil {
		return err
	}
	dirs := make([]string, 0, len(a.pending))
	for p := range a.pending {
		dirs = append(dirs, p)
	}
	slices.SortFunc(dirs, func(x, y string) int { return cmp.Compare(depth(y), depth(x)) })

	for _, p := range dirs {
		if err := a.restoreDir(p, a.pending[p]); err != nil {
			return classifyFS(err)
		}
	}
	return nil
}

func (a *applier) restoreDir(p string, d *dirState) error {
	fd, err := a.openPath(p, unix.O_RDONLY|unix.O_DIRECTORY)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ELOOP) {
		return nil
	}
	if err != nil {
		return err
	}
	defer unix.Close(fd)

	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return &fs.PathError{Op: "fstat", Path: p, Err: err}
	}
	if st.Ino != d.ino {
		return nil
	}
	if d.setMode {
		if err := unix.Fchmod(fd, d.mode); err != nil {
			return &fs.PathError{Op: "fchmod", Path: p, Err: err}
		}
	}
	return setTimesFD(fd, p, d.atime, d.mtime)
}

// classifyFS adds an errdefs class to a file system error: a full file
// system is [errdefs.ErrNoSpace], and errors that the layer's content
// causes (a missing link target, a non-directory parent, a name too long)
// are [errdefs.ErrInvalidLayer].
func classifyFS(err error) error {
	if err == nil || classified(err) {
		return err
	}
	var errno unix.Errno
	if !errors.As(err, &errno) {
		return err
	}
	switch errno {
	case unix.ENOSPC, unix.EDQUOT:
		return &classError{err: err, class: errdefs.ErrNoSpace}
	case unix.ENOTDIR, unix.ENOENT, unix.EPERM, unix.EEXIST, unix.EISDIR, unix.ELOOP,
		unix.ENAMETOOLONG, unix.EMLINK, unix.EINVAL, unix.EXDEV, unix.ENOTEMPTY:
		return &classError{err: err, class: errdefs.ErrInvalidLayer}
	}
	return err
}

func (a *applier) logDebug(msg, p string, args ...any) {
	log.G(a.ctx).Debug(msg, append([]any{"path", p}, args...)...)
}

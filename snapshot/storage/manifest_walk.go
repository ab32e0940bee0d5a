package storage

import (
	"container/heap"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/strata-containers/strata/snapshot"
)

// maxManifestWorkers caps the goroutines that walk a tree for its
// manifest.
//
// NOTE: 4 is an estimate. One goroutine writes every line, which limits
// what more workers can gain, and the walk was measured on 2 cores only.
const maxManifestWorkers = 4

// maxDirsAhead bounds the directories that workers have started but the
// writer has not reached yet. Their lines are what the parallel walk
// holds in memory beyond what the sequential walk holds.
const maxDirsAhead = 64

// dirFlags opens a directory of the tree without following a symbolic
// link that replaced it.
const dirFlags = unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC

// manifestWorkers returns the number of goroutines that walk a tree for
// its manifest: GOMAXPROCS, capped at maxManifestWorkers.
func manifestWorkers() int {
	return min(runtime.GOMAXPROCS(0), maxManifestWorkers)
}

// treeWalker is the parallel form of the walk of [manifestWriter]. Its
// workers list the directories of the tree, stat their entries and
// checksum the files that digests does not cover, each directory into a
// buffer of its own. The goroutine that called walkParallel, the writer,
// copies those buffers to the manifest in the order of the sequential
// walk, so both walks write the same bytes.
type treeWalker struct {
	m    *manifestWriter
	ctx  context.Context
	tree string

	mu   sync.Mutex
	cond *sync.Cond // signalled when queue grows, ahead shrinks or closed is set
	// queue holds the directories found and not started yet, first in
	// walk order on top, so that workers stay just ahead of the writer.
	queue  dirQueue
	ahead  int // directories started by workers that the writer has not reached
	closed bool

	linksMu sync.Mutex
	links   map[inode]*linkGroup

	wg sync.WaitGroup
}

// dirJob is one directory of the tree. The goroutine that runs the job
// sets out and the fields after it, and the writer reads them only after
// done is closed.
type dirJob struct {
	parent *dirHandle // the directory that contains it, until it is opened
	name   string
	rel    string // path below the tree, "" for the root
	// key places the directory in walk order: the index of each of its
	// path's elements among their sorted siblings, compared with
	// slices.Compare.
	key      []int
	started  bool // guarded by treeWalker.mu
	byWorker bool // guarded by treeWalker.mu
	done     chan struct{}

	out     []byte   // manifest lines of the regular files in the directory
	subdirs []subdir // in walk order
	usage   snapshot.Usage
	files   int
	hashed  int
	err     error // first error, which ended the listing
}

// subdir is a subdirectory whose lines go at offset at of its parent's
// out.
type subdir struct {
	job *dirJob
	at  int
}

// dirHandle is an open directory. Its subdirectories are opened relative
// to it, so that depth is not limited by PATH_MAX, and it is closed when
// its own listing and the opening of its last subdirectory are done.
type dirHandle struct {
	f    *os.File
	fd   int
	refs atomic.Int64
}

func (h *dirHandle) release() {
	if h.refs.Add(-1) == 0 {
		h.f.Close()
	}
}

// linkGroup is an inode that has several links. The goroutine that meets
// it first counts it and computes its checksum, and goroutines that meet
// its other links wait on done and copy digest.
type linkGroup struct {
	done   chan struct{}
	digest string // "" for an inode that is no regular file, or after an error
}

// scratch is one goroutine's read buffer for checksumming files. It is
// allocated at first use, because with digests a worker may never need it.
type scratch struct{ buf []byte }

func (s *scratch) buffer() []byte {
	if s.buf == nil {
		s.buf = make([]byte, 1<<20)
	}
	return s.buf
}

// walkParallel walks tree as walkRoot does, with workers goroutines. It
// returns the error that the sequential walk returns, the first one in
// walk order.
func (m *manifestWriter) walkParallel(tree string, workers int) error {
	fd, err := m.openRoot(tree)
	if err != nil {
		return err
	}
	// The walk's own context lets the writer stop the workers once it has
	// an error.
	ctx, cancel := context.WithCancel(m.ctx)
	w := &treeWalker{m: m, ctx: ctx, tree: tree, links: map[inode]*linkGroup{}}
	w.cond = sync.NewCond(&w.mu)
	for range workers {
		w.wg.Go(w.work)
	}

	var s scratch
	root := &dirJob{started: true, done: make(chan struct{})}
	root.err = w.list(root, fd, &s)
	close(root.done)
	err = w.emit(root, &s)

	cancel()
	w.stop()
	return err
}

// stop ends the workers and then closes the directories that jobs never
// started still hold open.
func (w *treeWalker) stop() {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	w.cond.Broadcast()
	w.wg.Wait()
	for _, j := range w.queue {
		if !j.started {
			j.parent.release()
		}
	}
	w.queue = nil
}

func (w *treeWalker) work() {
	var s scratch
	for j := w.next(); j != nil; j = w.next() {
		w.run(j, &s)
	}
}

// next returns the first queued directory in walk order once fewer than
// maxDirsAhead are ahead of the writer, or nil once the walk stops.
func (w *treeWalker) next() *dirJob {
	w.mu.Lock()
	defer w.mu.Unlock()
	for !w.closed {
		for w.ahead < maxDirsAhead && w.queue.Len() > 0 {
			j := heap.Pop(&w.queue).(*dirJob)
			if j.started {
				continue
			}
			j.started, j.byWorker = true, true
			w.ahead++
			return j
		}
		w.cond.Wait()
	}
	return nil
}

// claim marks j as started by the writer unless a worker has started it.
func (w *treeWalker) claim(j *dirJob) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if j.started {
		return false
	}
	j.started = true
	return true
}

// reach records that the writer has got to j, so that j no longer counts
// toward maxDirsAhead, and wakes a worker.
func (w *treeWalker) reach(j *dirJob) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if j.byWorker {
		w.ahead--
		w.cond.Signal()
	}
}

// run opens the directory of j and lists it.
func (w *treeWalker) run(j *dirJob, s *scratch) {
	defer close(j.done)
	fd, err := unix.Openat(j.parent.fd, j.name, dirFlags, 0)
	j.parent.release()
	j.parent = nil
	if err != nil {
		j.err = &fs.PathError{Op: "openat", Path: filepath.Join(w.tree, j.rel), Err: err}
		return
	}
	j.err = w.list(j, fd, s)
}

// list reads the directory fd into j in the order of walkDir: the
// manifest lines of its regular files, and a queued job for each of its
// subdirectories. fd is closed once the last of those is opened.
func (w *treeWalker) list(j *dirJob, fd int, s *scratch) error {
	h := &dirHandle{f: os.NewFile(uintptr(fd), filepath.Join(w.tree, j.rel)), fd: fd}
	h.refs.Store(1)
	defer h.release()
	names, err := h.f.Readdirnames(-1)
	if err != nil {
		return err
	}
	slices.Sort(names)
	for i, name := range names {
		if err := w.ctx.Err(); err != nil {
			return err
		}
		rel := name
		if j.rel != "" {
			rel = j.rel + "/" + name
		}
		var st unix.Stat_t
		if err := unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return &fs.PathError{Op: "fstatat", Path: filepath.Join(w.tree, rel), Err: err}
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			j.count(&st)
			w.queueDir(j, h, name, rel, i)
		case unix.S_IFREG:
			if err := w.addFile(j, fd, name, rel, &st, s); err != nil {
				return err
			}
		default:
			if st.Nlink == 1 || w.firstLink(&st) {
				j.count(&st)
			}
		}
	}
	return nil
}

// queueDir queues the subdirectory name of j, to be opened through h.
func (w *treeWalker) queueDir(j *dirJob, h *dirHandle, name, rel string, index int) {
	h.refs.Add(1)
	c := &dirJob{
		parent: h, name: name, rel: rel,
		key:  append(slices.Clip(j.key), index),
		done: make(chan struct{}),
	}
	j.subdirs = append(j.subdirs, subdir{job: c, at: len(j.out)})
	w.mu.Lock()
	heap.Push(&w.queue, c)
	w.mu.Unlock()
	w.cond.Signal()
}

func (j *dirJob) count(st *unix.Stat_t) {
	j.usage.Inodes++
	j.usage.Size += st.Blocks * 512
}

// addFile appends the manifest line of the regular file name to j.
func (w *treeWalker) addFile(j *dirJob, dirfd int, name, rel string, st *unix.Stat_t,
	s *scratch,
) error {
	var dgst string
	var err error
	if st.Nlink > 1 {
		dgst, err = w.linkDigest(j, dirfd, name, rel, st, s)
	} else {
		j.count(st)
		dgst, err = w.fileDigest(j, dirfd, name, rel, st, s)
	}
	if err != nil {
		return err
	}
	j.files++
	j.out = strconv.AppendInt(j.out, st.Size, 10)
	j.out = append(j.out, ' ')
	j.out = append(j.out, dgst...)
	j.out = append(j.out, ' ')
	j.out = strconv.AppendQuote(j.out, rel)
	j.out = append(j.out, '\n')
	return nil
}

// linkDigest returns the checksum of a regular file that has several
// links. The first of its links that any goroutine meets counts the inode
// and computes the checksum. Which link that is depends on scheduling, but
// the totals do not, because every link stats the same inode.
func (w *treeWalker) linkDigest(j *dirJob, dirfd int, name, rel string, st *unix.Stat_t,
	s *scratch,
) (string, error) {
	g, first := w.link(st)
	if first {
		defer close(g.done)
		j.count(st)
		dgst, err := w.fileDigest(j, dirfd, name, rel, st, s)
		g.digest = dgst
		return dgst, err
	}
	<-g.done
	if g.digest != "" {
		return g.digest, nil
	}
	// The first link failed, and so does the walk. Reading this link
	// gives the error that the sequential walk returns if this link comes
	// first in walk order.
	return w.fileDigest(j, dirfd, name, rel, st, s)
}

// fileDigest returns the checksum that digests records for a regular
// file, or else reads the file and computes it.
func (w *treeWalker) fileDigest(j *dirJob, dirfd int, name, rel string, st *unix.Stat_t,
	s *scratch,
) (string, error) {
	if w.m.digests != nil {
		if sum, ok := w.m.digests.FileDigest(st.Dev, st.Ino, st.Size); ok {
			return sum, nil
		}
	}
	sum, err := hashAt(dirfd, name, filepath.Join(w.tree, rel), s.buffer())
	if err != nil {
		return "", err
	}
	j.hashed++
	return sum, nil
}

// link returns the link group of st's inode, and whether this call added
// it.
func (w *treeWalker) link(st *unix.Stat_t) (*linkGroup, bool) {
	k := inode{dev: st.Dev, ino: st.Ino}
	w.linksMu.Lock()
	defer w.linksMu.Unlock()
	if g, ok := w.links[k]; ok {
		return g, false
	}
	g := &linkGroup{done: make(chan struct{})}
	w.links[k] = g
	return g, true
}

// firstLink reports whether st, an inode that is not a regular file, is
// the first of its links that the walk meets.
func (w *treeWalker) firstLink(st *unix.Stat_t) bool {
	g, first := w.link(st)
	if first {
		close(g.done)
	}
	return first
}

// emit writes the lines of j and of the directories below it to the
// manifest in walk order, and returns the first error in that order. It
// runs j itself when no worker has started it. A worker waits for room
// ahead of the writer only before it starts a job, so the writer cannot
// wait on a job that waits on the writer.
func (w *treeWalker) emit(j *dirJob, s *scratch) error {
	if w.claim(j) {
		w.run(j, s)
	}
	<-j.done
	w.reach(j)
	m := w.m
	m.usage.Inodes += j.usage.Inodes
	m.usage.Size += j.usage.Size
	m.files += j.files
	m.hashed += j.hashed

	at := 0
	for i, sub := range j.subdirs {
		if _, err := m.w.Write(j.out[at:sub.at]); err != nil {
			return err
		}
		at = sub.at
		if err := w.emit(sub.job, s); err != nil {
			return err
		}
		j.subdirs[i].job = nil
	}
	if _, err := m.w.Write(j.out[at:]); err != nil {
		return err
	}
	j.out, j.subdirs = nil, nil
	return j.err
}

// dirQueue is a min-heap of directories by key, for container/heap.
type dirQueue []*dirJob

func (q dirQueue) Len() int           { return len(q) }
func (q dirQueue) Less(i, j int) bool { return slices.Compare(q[i].key, q[j].key) < 0 }
func (q dirQueue) Swap(i, j int)      { q[i], q[j] = q[j], q[i] }
func (q *dirQueue) Push(x any)        { *q = append(*q, x.(*dirJob)) }

func (q *dirQueue) Pop() any {
	old := *q
	j := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	return j
}

package archive

import (
	"archive/tar"
	"bytes"
	"fmt"
	"hash/crc32"
	"io/fs"
	"sync"

	"golang.org/x/sys/unix"
)

// Sizes of the file writer's queue. A file of at most maxQueuedFile bytes
// is read into a batch and written by a worker. A batch holds up to
// batchFiles files whose content fits in batchBytes and whose headers
// fit in batchBytes more, and batchCount batches exist, so the queue
// holds at most 8 MiB and 256 open files.
const (
	maxQueuedFile = copyBufferSize
	batchBytes    = copyBufferSize
	batchFiles    = 64
	batchCount    = 4
)

// fileWriter writes the content, owner, xattrs, mode and times of small
// regular files on worker goroutines, while the applier goes on with the
// next entries. The applier still creates each file, so every name is
// created and removed in the order of the tar stream. The workers only
// write through the descriptors they are handed.
//
// The applier may remove or replace a name whose file a worker is still
// writing: the worker then writes to the unlinked inode, which is harmless.
// Its checksum, recorded by inode number, cannot land on another file.
// The worker records it before it closes the file, and only that close
// frees the number for reuse. So a file that reuses the number records
// its own checksum later.
type fileWriter struct {
	a    *applier
	jobs chan *fileBatch
	free chan *fileBatch
	// running counts the batches handed to workers and not yet done.
	running sync.WaitGroup
	workers sync.WaitGroup

	cur *fileBatch
	// count is the number of files queued in all.
	count int

	mu  sync.Mutex
	err error
}

type fileBatch struct {
	buf   []byte
	files []queuedFile
	// meta is the headerBytes of the files' headers.
	meta int
}

type queuedFile struct {
	fd   int
	hdr  *tar.Header
	p    string
	data []byte
}

func newFileWriter(a *applier, workers int) *fileWriter {
	w := &fileWriter{
		a:    a,
		jobs: make(chan *fileBatch, batchCount),
		free: make(chan *fileBatch, batchCount),
	}
	for range batchCount {
		w.free <- &fileBatch{buf: make([]byte, 0, batchBytes)}
	}
	w.workers.Add(workers)
	for range workers {
		go w.work()
	}
	return w
}

// reserve returns a slice of hdr.Size bytes in the current batch to read
// the file's content into. It sends the batch to the workers first when
// the file does not fit: its content, or the header that the batch keeps
// until a worker is done, whose PAX records can reach 1 MiB.
func (w *fileWriter) reserve(hdr *tar.Header) []byte {
	size := int(hdr.Size)
	meta := headerBytes(hdr)
	if w.cur != nil && (len(w.cur.files) == batchFiles || cap(w.cur.buf)-len(w.cur.buf) < size ||
		w.cur.meta+meta > batchBytes) {
		w.flush()
	}
	if w.cur == nil {
		w.cur = <-w.free
	}
	w.cur.meta += meta
	n := len(w.cur.buf)
	w.cur.buf = w.cur.buf[:n+size]
	return w.cur.buf[n : n+size : n+size]
}

// headerBytes estimates the memory that hdr holds beyond its fixed fields.
func headerBytes(hdr *tar.Header) int {
	n := len(hdr.Name) + len(hdr.Linkname) + len(hdr.Uname) + len(hdr.Gname)
	for k, v := range hdr.PAXRecords {
		n += len(k) + len(v)
	}
	return n
}

// add queues the file open at fd, whose content is data from reserve. The
// worker closes fd.
func (w *fileWriter) add(fd int, hdr *tar.Header, p string, data []byte) {
	w.cur.files = append(w.cur.files, queuedFile{fd: fd, hdr: hdr, p: p, data: data})
	w.count++
}

// flush hands the current batch to the workers.
func (w *fileWriter) flush() {
	if w.cur == nil || len(w.cur.files) == 0 {
		return
	}
	w.running.Add(1)
	w.jobs <- w.cur
	w.cur = nil
}

// wait writes every queued file and returns the first error of a worker.
func (w *fileWriter) wait() error {
	w.flush()
	w.running.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// failed returns the first error of a worker without waiting.
func (w *fileWriter) failed() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// close writes what is queued and stops the workers.
func (w *fileWriter) close() error {
	err := w.wait()
	close(w.jobs)
	w.workers.Wait()
	return err
}

func (w *fileWriter) work() {
	defer w.workers.Done()
	for b := range w.jobs {
		for _, f := range b.files {
			err := w.write(f)
			unix.Close(f.fd)
			w.fail(f, err)
		}
		b.files = b.files[:0]
		b.buf = b.buf[:0]
		b.meta = 0
		w.free <- b
		w.running.Done()
	}
}

// fail records err, the error writing f, unless an earlier one is.
func (w *fileWriter) fail(f queuedFile, err error) {
	if err == nil {
		return
	}
	w.mu.Lock()
	if w.err == nil {
		w.err = fmt.Errorf("apply entry %q: %w", f.hdr.Name, classifyFS(err))
	}
	w.mu.Unlock()
}

// write does for a queued file what createFile does after it opened one.
// On an error the file stays: the apply fails, and its caller removes
// the whole tree.
func (w *fileWriter) write(f queuedFile) error {
	var st unix.Stat_t
	if err := unix.Fstat(f.fd, &st); err != nil {
		return &fs.PathError{Op: "fstat", Path: f.p, Err: err}
	}
	sum := crc32.Update(0, castagnoli, f.data)
	// A whole copy buffer of zeros is a hole, as in writeContent.
	if len(f.data) == copyBufferSize && bytes.Equal(f.data, zeroBlock[:]) {
		if err := unix.Ftruncate(f.fd, int64(len(f.data))); err != nil {
			return &fs.PathError{Op: "ftruncate", Path: f.p, Err: err}
		}
	} else if err := pwriteAll(f.fd, f.data, 0); err != nil {
		return &fs.PathError{Op: "pwrite", Path: f.p, Err: err}
	}
	if err := w.a.finishFile(f.fd, f.p, f.hdr, &st); err != nil {
		return err
	}
	w.a.files.add(st.Dev, st.Ino, f.hdr.Size, sum)
	return nil
}

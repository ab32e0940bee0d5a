package archive

import (
	"context"
	"io/fs"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/strata-containers/strata/log"
)

// writeback calls syncfs(2) on the file system of a layer's root at a
// fixed interval while the layer is applied. The kernel then writes the
// layer's data out on another core while the applier goes on, and the
// syncfs that a snapshotter calls before its commit has less left to
// write. It changes nothing that a reader of the files can see.
type writeback struct {
	stop  chan struct{}
	done  chan struct{}
	syncs atomic.Int64
	// err is the first error of syncfs, read after done is closed. The
	// kernel reports a writeback error to one syncfs only, so this one
	// must reach the caller in place of the commit's.
	err error
}

// startWriteback starts flushing the file system that holds root every
// interval. A root that cannot be opened only loses the flushing, which
// is an optimisation.
func startWriteback(ctx context.Context, root string, every time.Duration) *writeback {
	fd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		log.G(ctx).Debug("no writeback while applying", "path", root, "error", err)
		return nil
	}
	w := &writeback{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		defer unix.Close(fd)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-w.stop:
				return
			case <-t.C:
				w.syncs.Add(1)
				if err := unix.Syncfs(fd); err != nil {
					w.err = &fs.PathError{Op: "syncfs", Path: root, Err: err}
					return
				}
			}
		}
	}()
	return w
}

// close stops the flushing, waits for a syncfs in progress and returns
// the first error of syncfs.
func (w *writeback) close() error {
	if w == nil {
		return nil
	}
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
	return w.err
}

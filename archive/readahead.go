package archive

import (
	"hash"
	"io"
	"sync"
	"sync/atomic"
)

// Sizes of the buffer between the decompressing goroutine and the tar
// reader: readAheadChunks chunks of readAheadChunkSize bytes, 4 MiB in all,
// which bounds the memory a layer takes whatever its size.
const (
	readAheadChunkSize = 512 << 10
	readAheadChunks    = 8
)

// readAhead decompresses the layer stream on one goroutine, hashes it for
// the diff ID on another, and hands the bytes to Read through a bounded
// set of chunks. Inflate, the diff ID's sha256 and the applier's file
// system calls then share the cores instead of running one after another:
// on a layer of a few big files inflate is the longest stage, on a layer
// of many small files the applier is.
type readAhead struct {
	free  chan *block
	full  chan chunk
	toSum chan chunk
	done  chan struct{}
	wg    sync.WaitGroup
	// stopOnce lets stop run both on success and in a deferred call.
	stopOnce sync.Once

	// cur is the chunk that Read is consuming, and off its read offset.
	cur chunk
	off int
	err error

	// h is written by the hashing goroutine and n by the reading one;
	// both are safe to read after stop.
	h   hash.Hash
	n   int64
	max int64
}

// block is a buffer that both Read and the hashing goroutine use, and
// that goes back to the free list when the second of them is done.
type block struct {
	buf  []byte
	refs atomic.Int32
}

type chunk struct {
	b   *block
	n   int
	err error
}

// newReadAhead starts reading r. The caller must call stop, which waits
// for the goroutines, before it closes r or reads h.
func newReadAhead(r io.Reader, h hash.Hash, max int64) *readAhead {
	ra := &readAhead{
		free:  make(chan *block, readAheadChunks),
		full:  make(chan chunk, readAheadChunks),
		toSum: make(chan chunk, readAheadChunks),
		done:  make(chan struct{}),
		h:     h,
		max:   max,
	}
	for range readAheadChunks {
		ra.free <- &block{buf: make([]byte, readAheadChunkSize)}
	}
	ra.wg.Add(2)
	go ra.fill(r)
	go ra.sum()
	return ra
}

func (ra *readAhead) release(b *block) {
	if b.refs.Add(-1) == 0 {
		ra.free <- b
	}
}

func (ra *readAhead) fill(r io.Reader) {
	defer ra.wg.Done()
	defer close(ra.toSum)
	for {
		var b *block
		select {
		case b = <-ra.free:
		case <-ra.done:
			return
		}
		// Filling the chunk before handing it on keeps the channel
		// operations few; inflaters return at most a window per Read.
		n, err := 0, error(nil)
		for n < len(b.buf) && err == nil {
			var m int
			m, err = r.Read(b.buf[n:])
			n += m
		}
		ra.n += int64(n)
		if (err == nil || err == io.EOF) && ra.n > ra.max {
			err = limitError("uncompressed size", ra.n, ra.max)
		}
		c := chunk{b: b, n: n, err: err}
		b.refs.Store(2)
		// toSum has a slot for each of the readAheadChunks blocks, and a
		// block is reused only after the hasher took it, so this send
		// cannot block.
		ra.toSum <- c
		select {
		case ra.full <- c:
		case <-ra.done:
			return
		}
		if err != nil {
			return
		}
	}
}

func (ra *readAhead) sum() {
	defer ra.wg.Done()
	for c := range ra.toSum {
		ra.h.Write(c.b.buf[:c.n])
		ra.release(c.b)
	}
}

// Read returns the next bytes of the decompressed stream.
func (ra *readAhead) Read(p []byte) (int, error) {
	for ra.off == ra.cur.n {
		if ra.err != nil {
			return 0, ra.err
		}
		if ra.cur.b != nil {
			ra.release(ra.cur.b)
		}
		ra.cur, ra.off = <-ra.full, 0
		ra.err = ra.cur.err
	}
	n := copy(p, ra.cur.b.buf[ra.off:ra.cur.n])
	ra.off += n
	return n, nil
}

// stop ends the goroutines and waits for them. After a Read that returned
// io.EOF, h then holds the digest of the whole stream.
func (ra *readAhead) stop() {
	ra.stopOnce.Do(func() { close(ra.done) })
	ra.wg.Wait()
}

package unpack

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-containers/strata/archive"
	"github.com/strata-containers/strata/archive/compression"
	"github.com/strata-containers/strata/content"
	"github.com/strata-containers/strata/log"
	"github.com/strata-containers/strata/snapshot"
)

// Sizes of the buffer that one layer is decompressed into ahead of its
// apply: prefetchChunks chunks of prefetchChunkSize bytes, 4 MiB in all.
// Once the buffer is full the decompressing goroutine blocks until the
// layer's apply starts to read, so a layer of any size takes this much
// memory plus its decoder's state.
const (
	prefetchChunkSize = 512 << 10
	prefetchChunks    = 8
)

// prefetch decompresses one layer blob on its own goroutine into a bounded
// buffer, so that its inflate runs while the layer below it is applied and
// committed. The apply of the layer still starts only after the layer
// below is applied, and it computes the diff ID over the bytes it reads
// from the buffer, which are the whole decompressed stream.
type prefetch struct {
	desc   ocispec.Descriptor
	kind   compression.Kind
	free   chan []byte
	full   chan prefetchChunk
	done   chan struct{}
	wg     sync.WaitGroup
	closed sync.Once

	// report is the progress function, set when the apply starts, that
	// the decompressing goroutine calls with the compressed bytes read.
	report atomic.Pointer[func(int64)]
	read   atomic.Int64
	// reportMu keeps calls of report from overlapping: the first one
	// comes from the apply's goroutine, the later ones from fill.
	reportMu sync.Mutex

	cur prefetchChunk
	off int
	err error
}

type prefetchChunk struct {
	buf []byte
	n   int
	err error
}

// startPrefetch starts decompressing desc from p. It returns nil unless
// the media type declares gzip. An uncompressed layer has nothing to
// inflate, and an unknown media type is for the apply to reject. A zstd
// decoder's window takes up to 8 MiB on common layers and up to 128 MiB
// on others, and measured on the debian-zstd image a second decoder
// running ahead raised peak RSS from 31 MiB to 62 MiB, while zstd
// decompresses several times faster than gzip and gains little from it.
func startPrefetch(ctx context.Context, p content.Provider, desc ocispec.Descriptor,
	opts []compression.Option,
) *prefetch {
	kind, err := compression.FromMediaType(desc.MediaType)
	if err != nil || kind != compression.Gzip {
		return nil
	}
	pf := &prefetch{
		desc: desc,
		kind: kind,
		free: make(chan []byte, prefetchChunks),
		full: make(chan prefetchChunk, prefetchChunks),
		done: make(chan struct{}),
	}
	for range prefetchChunks {
		pf.free <- make([]byte, prefetchChunkSize)
	}
	pf.wg.Add(1)
	go pf.fill(ctx, p, opts)
	return pf
}

func (pf *prefetch) fill(ctx context.Context, p content.Provider, opts []compression.Option) {
	defer pf.wg.Done()
	ra, err := p.ReaderAt(ctx, pf.desc)
	if err != nil {
		pf.send(prefetchChunk{err: err})
		return
	}
	defer ra.Close()

	stream, kind, err := compression.DecompressStream(blobStream(ra, pf.progress), opts...)
	if err != nil {
		pf.send(prefetchChunk{err: err})
		return
	}
	defer stream.Close()
	if kind != pf.kind {
		log.G(ctx).Debug("layer compression differs from its media type",
			"mediatype", pf.desc.MediaType, "detected", kind.String(), "digest", pf.desc.Digest)
	}
	if kind == compression.Gzip {
		log.G(ctx).Debug("inflate layer", "decoder", compression.Decoder(stream),
			"digest", pf.desc.Digest)
	}

	for {
		var buf []byte
		select {
		case buf = <-pf.free:
		case <-pf.done:
			return
		}
		n, err := 0, error(nil)
		for n < len(buf) && err == nil {
			var m int
			m, err = stream.Read(buf[n:])
			n += m
		}
		if !pf.send(prefetchChunk{buf: buf, n: n, err: err}) || err != nil {
			return
		}
	}
}

// send hands c to the reader and reports false once the prefetch is
// closed.
func (pf *prefetch) send(c prefetchChunk) bool {
	select {
	case pf.full <- c:
		return true
	case <-pf.done:
		return false
	}
}

func (pf *prefetch) progress(n int64) {
	pf.read.Store(n)
	if fn := pf.report.Load(); fn != nil {
		pf.reportMu.Lock()
		(*fn)(n)
		pf.reportMu.Unlock()
	}
}

// begin makes the decompressing goroutine report progress to fn from now
// on, and reports whether the decompressed stream can be applied as a
// plain tar stream. It cannot when the blob failed to open or decompress
// in its first bytes, or when the decompressed bytes start with the magic
// number of a compression, which Apply would detect and decompress again.
// The caller then closes pf and applies the blob directly, so that the
// layer fails or succeeds exactly as it would have without the prefetch.
func (pf *prefetch) begin(fn func(int64)) bool {
	if fn != nil {
		pf.reportMu.Lock()
		pf.report.Store(&fn)
		fn(pf.read.Load())
		pf.reportMu.Unlock()
	}
	pf.cur = <-pf.full
	pf.err = pf.cur.err
	if pf.cur.n < 4 {
		return false
	}
	return compression.Detect(pf.cur.buf[:4]) == compression.Uncompressed
}

// Read returns the next decompressed bytes. It must be called only after
// begin reported true.
func (pf *prefetch) Read(p []byte) (int, error) {
	for pf.off == pf.cur.n {
		if pf.err != nil {
			return 0, pf.err
		}
		if pf.cur.buf != nil {
			pf.free <- pf.cur.buf
		}
		pf.cur, pf.off = <-pf.full, 0
		pf.err = pf.cur.err
	}
	n := copy(p, pf.cur.buf[pf.off:pf.cur.n])
	pf.off += n
	return n, nil
}

// close stops the decompressing goroutine and waits for it. It is safe to
// call more than once.
func (pf *prefetch) close() {
	if pf == nil {
		return
	}
	pf.closed.Do(func() { close(pf.done) })
	pf.wg.Wait()
}

// errNoPrefetch is returned by applyPrefetched when the prefetched stream
// cannot be used and the layer has to be applied from its blob.
var errNoPrefetch = errors.New("prefetched stream not usable")

// prefetcher starts the prefetches of the layers above the one that
// ApplyLayers applies, up to ahead layers above it.
type prefetcher struct {
	ctx      context.Context
	sn       snapshot.Snapshotter
	fa       *fsApplier
	layers   []Layer
	chainIDs []digest.Digest
	ahead    int
	pending  map[int]*prefetch
	next     int
}

// newPrefetcher returns a prefetcher for layers. It starts nothing when
// ahead is 0 or a is not the applier of [NewApplier], because only that
// applier's content provider can be read ahead.
func newPrefetcher(ctx context.Context, sn snapshot.Snapshotter, a Applier, layers []Layer,
	chainIDs []digest.Digest, ahead int,
) *prefetcher {
	fa, _ := a.(*fsApplier)
	if fa == nil {
		ahead = 0
	}
	return &prefetcher{
		ctx: ctx, sn: sn, fa: fa, layers: layers, chainIDs: chainIDs,
		ahead: ahead, pending: map[int]*prefetch{}, next: 1,
	}
}

// take returns the prefetch of layer i, or nil, and hands it to the
// caller, which must close it.
func (p *prefetcher) take(i int) *prefetch {
	pf := p.pending[i]
	delete(p.pending, i)
	return pf
}

// schedule starts the prefetches of the layers above layer i, up to
// p.ahead of them, skipping layers whose chain is committed already.
func (p *prefetcher) schedule(i int) {
	if p.ahead == 0 || p.fa == nil {
		// Sequential, or an applier whose blobs cannot be read ahead.
		return
	}
	// Layer i is being applied already: read ahead only above it.
	p.next = max(p.next, i+1)
	for ; p.next <= i+p.ahead && p.next < len(p.layers); p.next++ {
		if p.committed(p.chainIDs[p.next].String()) {
			continue
		}
		if pf := startPrefetch(p.ctx, p.fa.provider, p.layers[p.next].Blob,
			archive.DecompressOptions(p.fa.opts...)); pf != nil {
			p.pending[p.next] = pf
		}
	}
}

// committed reports whether chainID has a committed snapshot that is not
// marked broken. An error counts as not committed, because the prefetch
// only saves time and the apply checks again under the chain's lock.
func (p *prefetcher) committed(chainID string) bool {
	info, err := p.sn.Stat(p.ctx, chainID)
	if err != nil || info.Kind != snapshot.KindCommitted {
		return false
	}
	_, broken := info.Labels[LabelBroken]
	return !broken
}

// closeAll closes the prefetches that were not taken.
func (p *prefetcher) closeAll() {
	for i, pf := range p.pending {
		pf.close()
		delete(p.pending, i)
	}
}

package unpack

import (
	"context"
	"runtime"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Progress reports how far ApplyLayers has come.
type Progress struct {
	// Index is the layer's position, 0 for the bottom layer.
	Index int
	// Total is the number of layers in the image.
	Total int
	// Layer is the layer's blob.
	Layer ocispec.Descriptor
	// ChainID is the chain ID of the layers up to and including this one.
	ChainID digest.Digest
	// Bytes is the number of compressed bytes of the blob read so far.
	Bytes int64
	// Done is set once the layer is committed or found already unpacked.
	Done bool
	// Skipped is set with Done when the chain was committed already.
	Skipped bool
}

// Locker serialises work on one chain ID. Lock blocks until the caller
// holds the chain or ctx ends, and returns the function that releases it.
type Locker interface {
	Lock(ctx context.Context, chainID string) (unlock func(), err error)
}

// TryLocker is a [Locker] that can also take a chain's lock without
// waiting. TryLock reports false, with a nil error and a nil unlock, when
// another unpacker holds the chain. [RemoveLeftovers] needs it to tell the
// leftovers of dead unpackers from extractions in progress.
type TryLocker interface {
	Locker
	TryLock(ctx context.Context, chainID string) (unlock func(), ok bool, err error)
}

// Opt sets an option of [ApplyLayers].
type Opt func(*config)

type config struct {
	progress    func(Progress)
	locker      Locker
	maxParallel int
}

// maxParallelDefault bounds the default of [WithMaxParallel]: each layer
// decompressed ahead takes a 4 MiB buffer and its decoder, and a layer
// more than a few ahead is rarely reached before its buffer fills.
const maxParallelDefault = 4

// DefaultMaxParallel returns the number of layers that ApplyLayers works
// on at once unless [WithMaxParallel] sets it: the number of CPUs the Go
// runtime uses, at most 4.
func DefaultMaxParallel() int {
	return min(runtime.GOMAXPROCS(0), maxParallelDefault)
}

func newConfig(opts []Opt) *config {
	c := &config{progress: func(Progress) {}, locker: noLocker{}, maxParallel: DefaultMaxParallel()}
	for _, o := range opts {
		o(c)
	}
	return c
}

// WithMaxParallel sets how many layers ApplyLayers reads at once: the one
// it applies and up to n-1 above it that it decompresses ahead, each into
// a buffer of 4 MiB. A layer is applied only after the layer below it is
// applied. With n >= 2, a locker and a snapshotter that is a
// [snapshot.ActivePreparer], the commit of the layer below (its manifest,
// flush and record) also runs while the layer is applied, and the layer
// is committed only after it. With n = 1 the layers are read,
// applied and committed strictly one after another. n < 1 keeps the
// default, [DefaultMaxParallel].
func WithMaxParallel(n int) Opt {
	return func(c *config) {
		if n >= 1 {
			c.maxParallel = n
		}
	}
}

// WithProgress makes ApplyLayers call fn as each layer advances and when it
// is done. fn runs on the unpacking goroutine and should return quickly.
func WithProgress(fn func(Progress)) Opt {
	return func(c *config) {
		if fn != nil {
			c.progress = fn
		}
	}
}

// WithLocker makes ApplyLayers hold a lock on each chain ID while it checks
// for and extracts that chain, so that concurrent unpackers extract every
// chain once. See [NewFileLocker].
func WithLocker(l Locker) Opt {
	return func(c *config) {
		if l != nil {
			c.locker = l
		}
	}
}

type noLocker struct{}

func (noLocker) Lock(context.Context, string) (func(), error) { return func() {}, nil }

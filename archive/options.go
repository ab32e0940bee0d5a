package archive

import (
	"runtime"
	"time"

	"github.com/strata-containers/strata/archive/compression"
)

// Limits bounds what one layer may contain. Apply fails with
// [errdefs.ErrLimit] as soon as an entry crosses one, before writing that
// entry. A zero field keeps its default from [DefaultLimits].
type Limits struct {
	// MaxPathLength is the max length in bytes of an entry name or a hard
	// link target.
	MaxPathLength int
	// MaxDepth is the max number of components in a cleaned entry name.
	MaxDepth int
	// MaxSymlinkTarget is the max length in bytes of a symlink target.
	MaxSymlinkTarget int
	// MaxEntries is the max number of tar entries, counting whiteouts.
	MaxEntries int64
	// MaxSize is the max number of uncompressed bytes in the layer stream,
	// and also the max logical size of one file, which for a sparse file
	// can exceed the bytes stored for it.
	MaxSize int64
}

// DefaultLimits returns the limits Apply uses unless [WithLimits] changes
// them. They are far above what real images contain: PATH_MAX for names and
// link targets, 1024 path components, 4 Mi entries and 1 TiB of data.
func DefaultLimits() Limits {
	return Limits{
		MaxPathLength:    4096,
		MaxDepth:         1024,
		MaxSymlinkTarget: 4095,
		MaxEntries:       4 << 20,
		MaxSize:          1 << 40,
	}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxPathLength > 0 {
		d.MaxPathLength = l.MaxPathLength
	}
	if l.MaxDepth > 0 {
		d.MaxDepth = l.MaxDepth
	}
	if l.MaxSymlinkTarget > 0 {
		d.MaxSymlinkTarget = l.MaxSymlinkTarget
	}
	if l.MaxEntries > 0 {
		d.MaxEntries = l.MaxEntries
	}
	if l.MaxSize > 0 {
		d.MaxSize = l.MaxSize
	}
	return d
}

// ApplyOpt configures [Apply].
type ApplyOpt func(*applyConfig)

type applyConfig struct {
	lowers    []string
	overlay   bool
	mediaType string
	limits    Limits
	// decompress holds the options of compression.DecompressStream.
	decompress []compression.Option
	// fileWorkers is the number of goroutines that write small files,
	// -1 until WithFileWorkers sets it.
	fileWorkers int
	// writeback is the interval of WithWriteback, 0 for none.
	writeback time.Duration
}

// WithOverlay makes Apply write into root as the upper directory of an
// overlayfs snapshot whose lower directories are lowers, topmost first as
// in overlayfs's lowerdir= option. Whiteouts become overlay whiteouts (char
// device 0:0), opaque directories get the xattr trusted.overlay.opaque=y,
// and lookups of parents, hard link targets and whiteout targets see the
// merged view of root over lowers. Apply never writes into lowers.
func WithOverlay(lowers []string) ApplyOpt {
	return func(c *applyConfig) {
		c.overlay = true
		c.lowers = append([]string(nil), lowers...)
	}
}

// WithMediaType passes the media type of the layer's descriptor. Apply
// rejects encrypted and unknown media types with [errdefs.ErrUnsupported]
// and accepts every OCI and Docker layer type. The compression is still
// detected from the stream's magic bytes, whatever the media type declares.
func WithMediaType(mediaType string) ApplyOpt {
	return func(c *applyConfig) { c.mediaType = mediaType }
}

// WithLimits replaces the default [Limits]; zero fields keep their
// defaults.
func WithLimits(l Limits) ApplyOpt {
	return func(c *applyConfig) { c.limits = l }
}

// WithGzipProgram makes Apply inflate gzip layers by running the program
// at path, such as igzip from [compression.FindGzipProgram], in a child
// process; see [compression.WithGzipProgram]. An empty path keeps the
// in-process decoder, which is the default.
func WithGzipProgram(path string) ApplyOpt {
	return func(c *applyConfig) {
		c.decompress = append(c.decompress, compression.WithGzipProgram(path))
	}
}

// WithGzipLibrary makes Apply inflate gzip layers in process with
// libisal when it loads, before any program of [WithGzipProgram]; see
// [compression.WithGzipLibrary].
func WithGzipLibrary() ApplyOpt {
	return func(c *applyConfig) {
		c.decompress = append(c.decompress, compression.WithGzipLibrary())
	}
}

// DecompressOptions returns the options of [compression.DecompressStream]
// that opts set, for a caller that decompresses a layer ahead of its
// Apply and must do it as Apply would.
func DecompressOptions(opts ...ApplyOpt) []compression.Option {
	var cfg applyConfig
	for _, opt := range opts {
		opt(&cfg)
	}
	return cfg.decompress
}

// WithFileWorkers sets the number of goroutines that write the content and
// metadata of small regular files while Apply goes on reading the next
// entries. The default is [DefaultFileWorkers]. 0 writes every file on
// the goroutine that calls Apply. Names are created and removed in the
// order of the stream either way, and Apply returns after every file is
// written.
func WithFileWorkers(n int) ApplyOpt {
	return func(c *applyConfig) { c.fileWorkers = max(n, 0) }
}

// DefaultFileWorkers returns the number of goroutines that [Apply] writes
// small files on unless [WithFileWorkers] changes it: one less than the
// CPUs Go uses, at least 1 and at most 4.
func DefaultFileWorkers() int {
	return min(max(runtime.GOMAXPROCS(0)-1, 1), 4)
}

// WithWriteback makes Apply call syncfs(2) on the file system of root
// every interval while it applies. The kernel then writes the layer out
// on another core during the apply, so a syncfs after Apply, such as the
// one a snapshotter makes before its commit, has less left to write.
// Apply makes no promise of durability itself. 0, the default, flushes
// nothing.
func WithWriteback(every time.Duration) ApplyOpt {
	return func(c *applyConfig) { c.writeback = max(every, 0) }
}

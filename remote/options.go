package remote

import (
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-containers/strata/archive"
	"github.com/strata-containers/strata/oci"
	"github.com/strata-containers/strata/snapshot"
	"github.com/strata-containers/strata/unpack"
)

// DefaultMaxConcurrentDownloads is how many layer blobs [Pull] downloads at
// once unless [WithMaxConcurrentDownloads] sets another number.
const DefaultMaxConcurrentDownloads = 3

// Default retry policy: 5 attempts per request, waiting 500ms, 1s, 2s and
// 4s between them.
const (
	DefaultRetryAttempts = 5
	DefaultRetryDelay    = 500 * time.Millisecond
	maxRetryDelay        = 10 * time.Second
)

// Opt sets an option of [Pull].
type Opt func(*config)

type config struct {
	platform      ocispec.Platform
	username      string
	password      string
	hasCreds      bool
	caFiles       []string
	insecure      bool
	maxDownloads  int
	retryAttempts int
	retryDelay    time.Duration
	progress      func(Progress)

	snapshotter   snapshot.Snapshotter
	unpackOptions []unpack.Opt
	applyOptions  []archive.ApplyOpt
}

func newConfig(opts []Opt) config {
	cfg := config{
		platform:      oci.Host(),
		maxDownloads:  DefaultMaxConcurrentDownloads,
		retryAttempts: DefaultRetryAttempts,
		retryDelay:    DefaultRetryDelay,
		progress:      func(Progress) {},
	}
	for _, o := range opts {
		o(&cfg)
	}
	return cfg
}

// WithPlatform makes Pull pick the manifest for p from an index instead of
// the host's.
func WithPlatform(p ocispec.Platform) Opt {
	return func(c *config) { c.platform = p }
}

// WithCredentials makes Pull authenticate as username with password,
// instead of using the credentials in the Docker config file. The registry
// gets them as HTTP basic auth, or they are traded for a bearer token at
// the token server the registry names.
func WithCredentials(username, password string) Opt {
	return func(c *config) {
		c.username, c.password, c.hasCreds = username, password, true
	}
}

// WithCAFile adds the PEM certificates in path to the system roots that
// verify the registry's TLS certificate.
func WithCAFile(path string) Opt {
	return func(c *config) { c.caFiles = append(c.caFiles, path) }
}

// WithInsecure allows plain HTTP, and HTTPS without certificate
// verification, for the registry of the pull. Without it Pull uses only
// HTTPS with verified certificates, for loopback addresses too.
func WithInsecure() Opt {
	return func(c *config) { c.insecure = true }
}

// WithMaxConcurrentDownloads sets how many layer blobs download at once.
// Values below 1 count as 1.
func WithMaxConcurrentDownloads(n int) Opt {
	return func(c *config) { c.maxDownloads = max(n, 1) }
}

// WithRetry sets how many times in all each request is tried when it fails
// for a reason that may pass: a 5xx, 408 or 429 status, or a connection
// refused, reset, cut short or timed out. delay is the wait before the
// first retry, and it doubles after each one up to 10s. A blob download cut
// short resumes where it stopped. attempts below 1 count as 1.
func WithRetry(attempts int, delay time.Duration) Opt {
	return func(c *config) {
		c.retryAttempts, c.retryDelay = max(attempts, 1), delay
	}
}

// WithProgress makes Pull call fn as each layer downloads and unpacks.
// Calls never overlap, but they come from several goroutines, so fn should
// return quickly.
func WithProgress(fn func(Progress)) Opt {
	return func(c *config) {
		if fn != nil {
			c.progress = fn
		}
	}
}

// WithUnpack makes Pull unpack the image into sn while it downloads: each
// layer is applied as soon as its blob and the layers below it are ready,
// and layers whose chain sn already holds committed are not downloaded.
// opts go to [unpack.ApplyLayers]; pass [unpack.WithLocker] with the
// store's locker so that concurrent unpackers extract each chain once. An
// [unpack.WithProgress] among opts is replaced by Pull's own, which reports
// through [WithProgress].
func WithUnpack(sn snapshot.Snapshotter, opts ...unpack.Opt) Opt {
	return func(c *config) {
		c.snapshotter, c.unpackOptions = sn, opts
	}
}

// WithApplyOptions passes opts to [archive.Apply] for each layer that
// [WithUnpack] applies, such as [archive.WithGzipProgram]. The store
// package's Store.ApplyOptions returns those of a store.
func WithApplyOptions(opts ...archive.ApplyOpt) Opt {
	return func(c *config) { c.applyOptions = append(c.applyOptions, opts...) }
}

// State is the stage a layer has reached in a pull.
type State int

// The stages of a layer, in order. A layer that is neither downloaded nor
// unpacked by this pull because it is stored already goes straight to
// StateDownloaded or StateDone with Cached set.
const (
	// StateWaiting: the layer is queued for download.
	StateWaiting State = iota
	// StateDownloading: Bytes of the blob are stored.
	StateDownloading
	// StateDownloaded: the whole blob is stored and verified.
	StateDownloaded
	// StateExtracting: Bytes of the blob have been read by the applier.
	StateExtracting
	// StateDone: the layer's chain is committed in the snapshotter, or,
	// without WithUnpack, the blob is stored.
	StateDone
)

func (s State) String() string {
	switch s {
	case StateWaiting:
		return "waiting"
	case StateDownloading:
		return "downloading"
	case StateDownloaded:
		return "downloaded"
	case StateExtracting:
		return "extracting"
	case StateDone:
		return "done"
	}
	return "unknown"
}

// Progress reports the state of one layer of a pull.
type Progress struct {
	// Index is the layer's position, 0 for the bottom layer.
	Index int
	// Total is the number of layers in the image.
	Total int
	// Layer is the layer's blob descriptor.
	Layer ocispec.Descriptor
	State State
	// Bytes counts the blob's bytes: stored so far while downloading, read
	// so far while extracting.
	Bytes int64
	// Resumed is the number of bytes kept from an interrupted earlier
	// download, set while downloading.
	Resumed int64
	// Cached is set when the blob was stored already (StateDownloaded), or
	// when the layer's chain was unpacked already (StateDone), so this pull
	// did not do that work.
	Cached bool
}

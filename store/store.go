// Package store ties strata's parts together into the embedded default: one
// root directory that holds a content store, the image names and the
// snapshots of every snapshotter, with no daemon.
//
// The layout under the root:
//
//	content/blobs/<alg>/<hex>   blobs, named by digest
//	content/ingest/             partial ingests
//	metadata.db                 image names (bbolt)
//	snapshots/<snapshotter>/    each snapshotter's own directories and bbolt file
//	locks/                      one flock file per chain ID being extracted
//
// Several processes may open the same root at once: no file is held open
// between operations, and each chain is extracted under its own lock. Open
// removes what crashed processes left (see [Store.Recover]); docs/store.md
// describes the locking protocol and the crash cases in full.
package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/strata-containers/strata/archive/compression"
	"github.com/strata-containers/strata/content"
	"github.com/strata-containers/strata/content/local"
	"github.com/strata-containers/strata/errdefs"
	"github.com/strata-containers/strata/image"
	"github.com/strata-containers/strata/log"
	"github.com/strata-containers/strata/remote"
	"github.com/strata-containers/strata/snapshot"
	"github.com/strata-containers/strata/snapshot/native"
	"github.com/strata-containers/strata/snapshot/overlay"
	"github.com/strata-containers/strata/unpack"
)

// Snapshotter names.
const (
	Overlayfs = "overlayfs"
	Native    = "native"
)

// ResumeWindow is how long recovery keeps an idle partial registry
// download, so that the next pull of the blob resumes it.
const ResumeWindow = 24 * time.Hour

// DefaultSnapshotter is the snapshotter a store unpacks into unless
// [WithSnapshotter] picks another.
const DefaultSnapshotter = Overlayfs

// Snapshotters lists the names [WithSnapshotter] accepts.
var Snapshotters = []string{Overlayfs, Native}

// Store is an open strata root.
type Store struct {
	root        string
	snapshotter string
	cfg         config
	content     content.Store
	local       *local.Store
	images      *image.Store
	locker      unpack.TryLocker

	mu           sync.Mutex
	snapshotters map[string]snapshot.Snapshotter
}

// Opt sets an option of [Open].
type Opt func(*config)

type config struct {
	snapshotter string
	sync        bool
	recover     bool
	existing    bool
	maxParallel int
	gzipProgram string
	gzipLibrary bool
}

// WithSnapshotter selects the snapshotter that Unpack and Mount use.
func WithSnapshotter(name string) Opt {
	return func(c *config) { c.snapshotter = name }
}

// WithSync sets whether each committed snapshot's data is flushed to disk
// with syncfs(2) before its commit record is written. It is on by default.
// Turning it off makes unpacking faster on slow disks, at the price that a
// power loss can leave committed snapshots with truncated or empty files;
// 'strata check' finds those and --repair makes the next unpack extract
// them again.
func WithSync(sync bool) Opt {
	return func(c *config) { c.sync = sync }
}

// WithMaxParallel sets the max number of layers that Unpack works on at
// once; see [unpack.WithMaxParallel]. 1 applies the layers strictly one
// after another, and n < 1 keeps [unpack.DefaultMaxParallel]. It also
// bounds the goroutines that copy a parent for the native snapshotter; see
// [native.WithCopyWorkers].
func WithMaxParallel(n int) Opt {
	return func(c *config) { c.maxParallel = n }
}

// WithGzipProgram sets the program that inflates gzip layers in a child
// process when libisal does not load or [WithGzipLibrary] is off; see
// [compression.WithGzipProgram]. The default is igzip when
// [compression.FindGzipProgram] finds it on PATH at Open; an empty path
// selects Go's decoder.
func WithGzipProgram(path string) Opt {
	return func(c *config) { c.gzipProgram = path }
}

// WithGzipLibrary sets whether gzip layers inflate in process with
// libisal when it loads, before any program of [WithGzipProgram]; see
// [compression.WithGzipLibrary]. It is on by default.
func WithGzipLibrary(on bool) Opt {
	return func(c *config) { c.gzipLibrary = on }
}

// WithExisting makes Open fail with an error wrapping errdefs.ErrNotFound
// when the root directory does not exist, instead of creating it, for callers that only
// read the store, so that a mistyped root is an error and not an empty
// store.
func WithExisting() Opt {
	return func(c *config) { c.existing = true }
}

// WithoutRecovery makes Open leave what crashed processes left in the root
// (see [Store.Recover]), for callers such as 'strata check' that report it
// before they remove it.
func WithoutRecovery() Opt {
	return func(c *config) { c.recover = false }
}

// Open opens the store at root, creating it when it does not exist.
func Open(ctx context.Context, root string, opts ...Opt) (*Store, error) {
	cfg := config{snapshotter: DefaultSnapshotter, sync: true, recover: true,
		gzipProgram: compression.FindGzipProgram(), gzipLibrary: true}
	for _, o := range opts {
		o(&cfg)
	}
	if !slices.Contains(Snapshotters, cfg.snapshotter) {
		return nil, fmt.Errorf("open store: unknown snapshotter %q, use one of %v: %w",
			cfg.snapshotter, Snapshotters, errdefs.ErrInvalidArgument)
	}
	root, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", root, err)
	}
	if cfg.existing {
		// Only a missing root counts: a process killed as it opened a new
		// store may have left the root with nothing in it yet.
		if _, err := os.Stat(root); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("open store %s: no strata store there; check --root or STRATA_ROOT: %w",
				root, errdefs.ErrNotFound)
		}
	}
	if err := os.MkdirAll(root, 0o711); err != nil {
		return nil, fmt.Errorf("open store %s: %w", root, err)
	}

	// Partial registry downloads stay resumable for a day; recovery
	// removes every other idle ingest at once.
	cs, err := local.New(filepath.Join(root, "content"),
		local.WithResumable(remote.IngestRefPrefix, ResumeWindow))
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", root, err)
	}
	is, err := image.NewStore(filepath.Join(root, "metadata.db"))
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", root, err)
	}
	locker, err := unpack.NewFileLocker(filepath.Join(root, "locks"))
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", root, err)
	}
	s := &Store{
		root:         root,
		cfg:          cfg,
		snapshotter:  cfg.snapshotter,
		content:      cs,
		local:        cs,
		images:       is,
		locker:       locker.(unpack.TryLocker),
		snapshotters: map[string]snapshot.Snapshotter{},
	}
	if cfg.recover {
		// A store whose leftovers cannot be removed now is still usable;
		// the next command tries again.
		if _, err := s.Recover(ctx); err != nil {
			log.G(ctx).Warn("recover store", "path", root, "error", err)
		}
	}
	return s, nil
}

// Root returns the store's root directory.
func (s *Store) Root() string { return s.root }

// Content returns the store's content store.
func (s *Store) Content() content.Store { return s.content }

// Images returns the store's image name store.
func (s *Store) Images() *image.Store { return s.images }

// Snapshotter returns the snapshotter that the store unpacks into, opening
// it on first use.
func (s *Store) Snapshotter(ctx context.Context) (snapshot.Snapshotter, error) {
	return s.snapshotterNamed(ctx, s.snapshotter)
}

// SnapshotterName returns the name of the snapshotter the store unpacks into.
func (s *Store) SnapshotterName() string { return s.snapshotter }

func (s *Store) snapshotterNamed(ctx context.Context, name string) (snapshot.Snapshotter, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sn, ok := s.snapshotters[name]; ok {
		return sn, nil
	}
	dir := filepath.Join(s.root, "snapshots", name)
	var (
		sn  snapshot.Snapshotter
		err error
	)
	switch name {
	case Overlayfs:
		opts := []overlay.Opt{overlay.WithSync(s.cfg.sync)}
		if !s.cfg.recover {
			opts = append(opts, overlay.WithoutRecovery())
		}
		sn, err = overlay.New(dir, opts...)
	case Native:
		opts := []native.Opt{native.WithSync(s.cfg.sync), native.WithCopyWorkers(s.cfg.maxParallel)}
		if !s.cfg.recover {
			opts = append(opts, native.WithoutRecovery())
		}
		sn, err = native.New(dir, opts...)
	default:
		err = fmt.Errorf("unknown snapshotter %q: %w", name, errdefs.ErrInvalidArgument)
	}
	if err != nil {
		return nil, fmt.Errorf("open snapshotter %s: %w", name, err)
	}
	s.snapshotters[name] = sn
	return sn, nil
}

// Close releases the snapshotters the store opened.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var first error
	for name, sn := range s.snapshotters {
		if err := sn.Close(); err != nil && first == nil {
			first = fmt.Errorf("close snapshotter %s: %w", name, err)
		}
	}
	s.snapshotters = map[string]snapshot.Snapshotter{}
	return first
}

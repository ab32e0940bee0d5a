package remote

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-containers/strata/content"
	"github.com/strata-containers/strata/errdefs"
	"github.com/strata-containers/strata/identity"
	"github.com/strata-containers/strata/image"
	"github.com/strata-containers/strata/log"
	"github.com/strata-containers/strata/mount"
	"github.com/strata-containers/strata/oci"
	"github.com/strata-containers/strata/snapshot"
	"github.com/strata-containers/strata/unpack"
)

// maxIndexDepth bounds how many nested indexes Pull follows.
const maxIndexDepth = 8

// Result describes a pulled image.
type Result struct {
	// Image is the stored record: the full reference as its name, and the
	// descriptor of the manifest picked for the platform as its target.
	Image image.Image
	// Resolved is the manifest with its config and layers.
	Resolved oci.Image
	// ChainID names the committed snapshot of the whole image, with
	// [WithUnpack].
	ChainID digest.Digest
	// Transferred counts the blob bytes received from the registry for the
	// config and layers, not counting manifests and indexes.
	Transferred int64
}

// Pull fetches the image reference from its registry into cs and records
// it in is under its full reference (see [ParseReference]). From an index
// it picks the manifest for the host's platform, or for [WithPlatform].
// Every manifest, config and layer blob is checked against its size and
// digest before it is committed. A mismatch stores nothing of the blob and
// returns an error wrapping errdefs.ErrDigestMismatch that names the blob
// and both digests. The image record is written last, once every blob
// it needs is stored and, with [WithUnpack], the image is unpacked.
//
// A download cut short is retried with an HTTP Range request for the rest.
// A download left by a killed pull resumes the same way on the next pull. A 401,
// 403 or 404 fails at once with an error wrapping [ErrUnauthorized],
// [ErrDenied] or errdefs.ErrNotFound.
func Pull(ctx context.Context, cs content.Store, is *image.Store, reference string, opts ...Opt) (Result, error) {
	cfg := newConfig(opts)
	ref, err := ParseReference(reference)
	if err != nil {
		return Result{}, err
	}
	if err := image.ValidateName(ref.String()); err != nil {
		return Result{}, fmt.Errorf("pull %s: %w", ref, err)
	}
	res, err := pull(ctx, cs, is, ref, &cfg)
	if err != nil {
		return Result{}, fmt.Errorf("pull %s: %w", ref, err)
	}
	return res, nil
}

func pull(ctx context.Context, cs content.Store, is *image.Store, ref Reference, cfg *config) (Result, error) {
	c, err := newClient(ctx, ref, cfg)
	if err != nil {
		return Result{}, err
	}
	mdesc, err := c.resolve(ctx, cs)
	if err != nil {
		return Result{}, err
	}
	log.G(ctx).Debug("resolved image", "ref", ref.String(), "digest", mdesc.Digest)

	m, err := oci.ReadManifest(ctx, cs, mdesc)
	if err != nil {
		return Result{}, err
	}
	if _, err := c.fetchBlob(ctx, cs, m.Config, func(int64, int64) {}); err != nil {
		return Result{}, fmt.Errorf("fetch image config: %w", err)
	}
	img, err := oci.Resolve(ctx, cs, mdesc)
	if err != nil {
		return Result{}, err
	}

	res := Result{Resolved: img}
	res.ChainID, err = c.pullLayers(ctx, cs, img)
	res.Transferred = c.transferred.Load()
	if err != nil {
		return Result{}, err
	}
	res.Image, err = is.Put(ctx, image.Image{Name: ref.String(), Target: mdesc})
	if err != nil {
		return Result{}, err
	}
	return res, nil
}

// resolve fetches the manifest the reference names, following indexes to
// the entry for the configured platform, and returns its descriptor. Every
// manifest and index on the way is stored.
func (c *client) resolve(ctx context.Context, cs content.Store) (ocispec.Descriptor, error) {
	want := ocispec.Descriptor{Digest: c.ref.Digest(), Size: -1}
	id := c.ref.identifier()
	var platform *ocispec.Platform
	for range maxIndexDepth {
		desc, data, err := c.fetchManifest(ctx, cs, id, want)
		if err != nil {
			return desc, err
		}
		if oci.Classify(desc.MediaType) == oci.KindManifest {
			desc.Platform = platform
			return desc, nil
		}
		idx, err := oci.DecodeIndex(data)
		if err != nil {
			return desc, fmt.Errorf("index %s: %w", desc.Digest, err)
		}
		next, err := oci.SelectManifest(idx, c.cfg.platform)
		if err != nil {
			return desc, fmt.Errorf("index %s: %w", desc.Digest, err)
		}
		if oci.IsSchema1(next.MediaType) {
			return desc, fmt.Errorf("index %s: entry %s is a Docker schema 1 manifest, which strata "+
				"does not read: %w", desc.Digest, next.Digest, errdefs.ErrUnsupported)
		}
		want, id, platform = next, next.Digest.String(), next.Platform
	}
	return ocispec.Descriptor{}, fmt.Errorf("follow indexes: more than %d nested: %w", maxIndexDepth, errdefs.ErrLimit)
}

// layerState is the outcome of one layer's download. done is closed once
// err is set.
type layerState struct {
	done chan struct{}
	err  error
}

// reporter serialises progress calls from the download goroutines and the
// unpacker.
type reporter struct {
	mu    sync.Mutex
	fn    func(Progress)
	total int
}

func (r *reporter) report(p Progress) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p.Total = r.total
	r.fn(p)
}

// pullLayers downloads the layers of img, at most cfg.maxDownloads at once
// and bottom first, and with WithUnpack applies each one as soon as it and
// the layers below it are ready. It returns the top chain ID when it
// unpacked.
func (c *client) pullLayers(ctx context.Context, cs content.Store, img oci.Image) (digest.Digest, error) {
	rep := &reporter{fn: c.cfg.progress, total: len(img.Layers)}
	start, err := c.firstMissingChain(ctx, img)
	if err != nil {
		return "", err
	}
	for i := range start {
		rep.report(Progress{Index: i, Layer: img.Layers[i].Descriptor, State: StateDone, Cached: true})
	}

	dctx, cancel := context.WithCancel(ctx)
	defer cancel()
	states := make([]*layerState, len(img.Layers))
	for i := start; i < len(states); i++ {
		states[i] = &layerState{done: make(chan struct{})}
		rep.report(Progress{Index: i, Layer: img.Layers[i].Descriptor, State: StateWaiting})
	}
	var wg sync.WaitGroup
	wg.Go(func() { c.dispatch(dctx, cancel, cs, img, states, start, rep) })

	var chainID digest.Digest
	var applyErr error
	if c.cfg.snapshotter != nil {
		chainID, applyErr = c.unpack(dctx, cs, img, states, rep)
		if applyErr != nil {
			cancel()
		}
	}
	wg.Wait()

	if err := ctx.Err(); err != nil {
		return "", err
	}
	// A download failure comes first: the unpacker only saw its echo.
	for _, st := range states {
		if st != nil && st.err != nil && !errors.Is(st.err, context.Canceled) {
			return "", st.err
		}
	}
	return chainID, applyErr
}

// dispatch starts the downloads of layers start and up in order, each once
// a download slot is free, and waits for them. The first failure cancels
// the others.
func (c *client) dispatch(ctx context.Context, cancel context.CancelFunc, cs content.Store, img oci.Image,
	states []*layerState, start int, rep *reporter) {
	slots := make(chan struct{}, c.cfg.maxDownloads)
	var wg sync.WaitGroup
	defer wg.Wait()
	for i := start; i < len(states); i++ {
		st := states[i]
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			st.err = ctx.Err()
			close(st.done)
			continue
		}
		wg.Go(func() {
			defer func() { <-slots }()
			st.err = c.fetchLayer(ctx, cs, img.Layers[i].Descriptor, i, rep)
			if st.err != nil {
				cancel()
			}
			close(st.done)
		})
	}
}

// fetchLayer downloads one layer blob and reports its progress.
func (c *client) fetchLayer(ctx context.Context, cs content.Store, desc ocispec.Descriptor, i int, rep *reporter) error {
	cached, err := c.fetchBlob(ctx, cs, desc, func(n, resumed int64) {
		rep.report(Progress{Index: i, Layer: desc, State: StateDownloading, Bytes: n, Resumed: resumed})
	})
	if err != nil {
		return fmt.Errorf("layer %d: %w", i, err)
	}
	rep.report(Progress{Index: i, Layer: desc, State: StateDownloaded, Bytes: desc.Size, Cached: cached})
	if c.cfg.snapshotter == nil {
		rep.report(Progress{Index: i, Layer: desc, State: StateDone, Bytes: desc.Size, Cached: cached})
	}
	return nil
}

// firstMissingChain returns the index of the lowest layer that needs its
// blob: with WithUnpack, the one above the highest chain the snapshotter
// holds committed, else 0.
func (c *client) firstMissingChain(ctx context.Context, img oci.Image) (int, error) {
	sn := c.cfg.snapshotter
	if sn == nil || len(img.Layers) == 0 {
		return 0, nil
	}
	chainIDs := identity.ChainIDs(img.DiffIDs())
	for i := len(chainIDs) - 1; i >= 0; i-- {
		info, err := sn.Stat(ctx, chainIDs[i].String())
		if errors.Is(err, errdefs.ErrNotFound) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("stat snapshot %s: %w", chainIDs[i], err)
		}
		if info.Kind == snapshot.KindCommitted {
			log.G(ctx).Debug("layers already unpacked, not downloading them",
				"chainid", chainIDs[i], "layers", i+1)
			return i + 1, nil
		}
	}
	return 0, nil
}

// unpack applies the layers of img with [unpack.ApplyLayers], each once its
// download is done.
func (c *client) unpack(ctx context.Context, cs content.Store, img oci.Image, states []*layerState,
	rep *reporter) (digest.Digest, error) {
	layers := make([]unpack.Layer, len(img.Layers))
	ready := map[digest.Digest]*layerState{}
	for i, l := range img.Layers {
		layers[i] = unpack.Layer{Blob: l.Descriptor, DiffID: l.DiffID}
		if states[i] != nil && ready[l.Descriptor.Digest] == nil {
			ready[l.Descriptor.Digest] = states[i]
		}
	}
	a := &waitApplier{inner: unpack.NewApplier(cs, c.cfg.applyOptions...), ready: ready, client: c, store: cs}
	opts := append(slices.Clone(c.cfg.unpackOptions), unpack.WithProgress(func(p unpack.Progress) {
		state := StateExtracting
		if p.Done {
			state = StateDone
		}
		rep.report(Progress{Index: p.Index, Layer: p.Layer, State: state, Bytes: p.Bytes, Cached: p.Skipped})
	}))
	return unpack.ApplyLayers(ctx, c.cfg.snapshotter, a, layers, opts...)
}

// waitApplier applies a layer once its blob is downloaded. A layer that
// was not scheduled for download, because its chain was committed when the
// pull began but is gone now, is downloaded on the spot.
type waitApplier struct {
	inner  unpack.Applier
	ready  map[digest.Digest]*layerState
	client *client
	store  content.Store
}

func (a *waitApplier) Apply(ctx context.Context, desc ocispec.Descriptor, mounts []mount.Mount, progress func(int64)) (digest.Digest, error) {
	if err := a.wait(ctx, desc); err != nil {
		return "", err
	}
	return a.inner.Apply(ctx, desc, mounts, progress)
}

// ApplyDigests is Apply, passing on the file digests of an inner applier
// that records them, so that the commit need not read the files back.
func (a *waitApplier) ApplyDigests(ctx context.Context, desc ocispec.Descriptor, mounts []mount.Mount,
	progress func(int64)) (digest.Digest, snapshot.FileDigests, error) {
	if err := a.wait(ctx, desc); err != nil {
		return "", nil, err
	}
	if da, ok := a.inner.(unpack.DigestApplier); ok {
		return da.ApplyDigests(ctx, desc, mounts, progress)
	}
	dgst, err := a.inner.Apply(ctx, desc, mounts, progress)
	return dgst, nil, err
}

// wait blocks until the blob desc is in the store.
func (a *waitApplier) wait(ctx context.Context, desc ocispec.Descriptor) error {
	if st, ok := a.ready[desc.Digest]; ok {
		select {
		case <-st.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		return st.err
	}
	_, err := a.client.fetchBlob(ctx, a.store, desc, func(int64, int64) {})
	return err
}

var _ unpack.DigestApplier = (*waitApplier)(nil)

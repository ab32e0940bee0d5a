package unpack

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"syscall"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-containers/strata/errdefs"
	"github.com/strata-containers/strata/identity"
	"github.com/strata-containers/strata/log"
	"github.com/strata-containers/strata/mount"
	"github.com/strata-containers/strata/snapshot"
)

// Layer is one layer of an image: its blob and the diff ID that the image
// config lists for it.
type Layer struct {
	Blob   ocispec.Descriptor
	DiffID digest.Digest
}

// LabelExtractFor is the label an extraction snapshot carries: the chain ID
// it is being extracted for. Recovery uses it to find leftovers.
const LabelExtractFor = "strata.io/extract-for"

// LabelBroken marks a committed snapshot that 'strata check --repair' found
// damaged but could not remove because snapshots in use are built on it.
// Its value describes the damage. The next unpack of the chain removes and
// extracts it again once nothing is built on it.
const LabelBroken = "strata.io/broken"

// maxRestarts bounds how often ApplyLayers starts over when a parent chain
// is removed between its commit and the Prepare on it.
const maxRestarts = 3

// extractPrefix starts the key of every extraction snapshot.
const extractPrefix = "extract-"

// IsExtractKey reports whether key names an extraction snapshot, which only
// exists while a layer is being applied and is never a valid parent.
func IsExtractKey(key string) bool {
	return len(key) > len(extractPrefix) && key[:len(extractPrefix)] == extractPrefix
}

// ApplyLayers applies layers, bottom first, onto snapshots of sn and returns
// the chain ID of the top layer, which names the committed snapshot holding
// the whole tree. Layers whose chain is already committed are skipped.
//
// A layer whose uncompressed digest differs from its diff ID fails with an
// error wrapping errdefs.ErrDigestMismatch that names the layer and both
// digests. On any failure the extraction snapshot is removed and the
// snapshots committed for the layers below stay valid.
func ApplyLayers(ctx context.Context, sn snapshot.Snapshotter, a Applier, layers []Layer, opts ...Opt) (digest.Digest, error) {
	if len(layers) == 0 {
		return "", fmt.Errorf("apply layers: image has no layers: %w", errdefs.ErrInvalidArgument)
	}
	cfg := newConfig(opts)

	diffIDs := make([]digest.Digest, len(layers))
	for i, l := range layers {
		if err := l.DiffID.Validate(); err != nil {
			return "", fmt.Errorf("apply layer %s: invalid diff ID %q: %w", l.Blob.Digest, l.DiffID, errdefs.ErrInvalidArgument)
		}
		if alg := l.DiffID.Algorithm(); alg != digest.SHA256 {
			// The applier hashes with sha256; comparing its digest with a
			// diff ID of another algorithm would always fail as a mismatch.
			return "", fmt.Errorf("apply layer %s: diff ID %s uses %s, and strata computes sha256 diff IDs only: %w",
				l.Blob.Digest, l.DiffID, alg, errdefs.ErrUnsupported)
		}
		diffIDs[i] = l.DiffID
	}
	chainIDs := identity.ChainIDs(diffIDs)

	for restarts := 0; ; restarts++ {
		err := applyChain(ctx, sn, a, layers, chainIDs, cfg)
		if errors.Is(err, errParentGone) && restarts < maxRestarts {
			log.G(ctx).Info("parent chain removed during unpack, starting over", "error", err)
			continue
		}
		if err != nil {
			return "", err
		}
		return chainIDs[len(chainIDs)-1], nil
	}
}

// errParentGone marks a Prepare that failed because the parent chain was
// removed after this unpacker found or committed it.
var errParentGone = errors.New("parent chain removed")

func applyChain(ctx context.Context, sn snapshot.Snapshotter, a Applier, layers []Layer,
	chainIDs []digest.Digest, cfg *config,
) (err error) {
	ahead := newPrefetcher(ctx, sn, a, layers, chainIDs, cfg.maxParallel-1)
	defer ahead.closeAll()
	// below is the layer under the current one while its commit runs in
	// the background; see pipelined.
	var below *pendingCommit
	background := pipelined(sn, cfg)
	defer func() {
		if rerr := below.release(ctx, cfg.progress); err == nil && rerr != nil {
			err = classify(rerr)
		}
	}()
	for i, l := range layers {
		var parent string
		if i > 0 {
			parent = chainIDs[i-1].String()
		}
		pf := ahead.take(i)
		ahead.schedule(i)
		p := Progress{Index: i, Total: len(layers), Layer: l.Blob, ChainID: chainIDs[i]}
		lc := layerCommit{below: below, pipelined: background}
		below = nil
		res, err := applyLayer(ctx, sn, a, l, chainIDs[i].String(), parent, cfg, p, pf, lc)
		pf.close()
		// The layer below is released only now: after applyLayer removed
		// a failed extraction snapshot prepared on it, and after the
		// prefetch of this layer stopped calling the progress function.
		if rerr := lc.below.release(ctx, cfg.progress); rerr != nil && !errors.Is(err, rerr) {
			err = errors.Join(err, rerr)
		}
		if err != nil {
			return classify(err)
		}
		if res.pending != nil {
			below = res.pending
			continue
		}
		p.Done, p.Skipped = true, !res.applied
		p.Bytes = l.Blob.Size
		cfg.progress(p)
	}
	return nil
}

// pipelined reports whether ApplyLayers commits each layer on its own
// goroutine while it applies the next layer onto the extraction snapshot
// below. That needs a snapshotter that can prepare on an active parent,
// and a chain lock that keeps other unpackers off the chain until its
// background commit is done. The tree of the layer below is complete
// before the next layer's apply starts, so the work that depends on lower
// layers (parents through lower symlinks, copy-ups, whiteouts) reads the
// same tree as it does without the pipeline.
func pipelined(sn snapshot.Snapshotter, cfg *config) bool {
	if _, ok := sn.(snapshot.ActivePreparer); !ok || cfg.maxParallel < 2 {
		return false
	}
	_, unlocked := cfg.locker.(noLocker)
	return !unlocked
}

// layerCommit holds the layer below, whose commit may still be running,
// and whether applyLayer commits in the background. applyLayer waits for
// the commit below before its own, and its caller releases it.
type layerCommit struct {
	below     *pendingCommit
	pipelined bool
}

// layerResult is the outcome of applyLayer: whether it applied the layer
// itself, and its commit when that still runs.
type layerResult struct {
	applied bool
	pending *pendingCommit
}

// classify adds errdefs.ErrNoSpace to an error caused by a full file system
// that no layer below has classified, so that callers can tell the user to
// free space.
func classify(err error) error {
	if errors.Is(err, errdefs.ErrNoSpace) {
		return err
	}
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return fmt.Errorf("%w: %w", errdefs.ErrNoSpace, err)
	}
	return err
}

// applyLayer makes sure the committed snapshot chainID exists, extracting
// layer l onto parent when it does not. It reports whether it applied the
// layer itself. With lc.below it prepares the extraction snapshot on the
// layer below's extraction snapshot, and commits its own only after that
// one is committed.
//
// NOTE: it is longer than the other functions here because its deferred
// cleanup covers every step from the lock to the commit.
func applyLayer(ctx context.Context, sn snapshot.Snapshotter, a Applier, l Layer, chainID, parent string,
	cfg *config, p Progress, pf *prefetch, lc layerCommit,
) (res layerResult, err error) {
	logger := log.G(ctx).With("chainid", chainID, "digest", l.Blob.Digest)

	unlock, err := cfg.locker.Lock(ctx, chainID)
	if err != nil {
		return res, fmt.Errorf("lock chain %s: %w", chainID, err)
	}
	handedOff := false
	defer func() {
		if !handedOff {
			unlock()
		}
	}()

	if ok, err := committed(ctx, sn, chainID); err != nil || ok {
		if ok {
			logger.Debug("layer already unpacked")
		}
		if err == nil {
			err = lc.below.wait()
		}
		return res, err
	}

	// Holding the chain's lock, any extraction snapshot for it is a leftover
	// of an unpacker that died. Without a locker another goroutine may be
	// extracting the chain right now, so nothing can be called a leftover.
	if _, ok := cfg.locker.(noLocker); !ok {
		if err := removeLeftovers(ctx, sn, chainID); err != nil {
			return res, err
		}
	}

	// A commit below that failed already would fail this layer after its
	// whole apply.
	if err := lc.below.failed(); err != nil {
		return res, err
	}
	key, err := newExtractKey(chainID)
	if err != nil {
		return res, err
	}
	mounts, err := prepare(ctx, sn, key, chainID, parent, lc.below)
	if err != nil && lc.below != nil && lc.below.err != nil && errors.Is(err, lc.below.err) {
		return res, err // the commit below failed, not this prepare
	}
	if err != nil {
		return res, fmt.Errorf("prepare snapshot for layer %s: %w", l.Blob.Digest, err)
	}
	killPoint("prepared")

	// Every path below removes the extraction snapshot unless it was
	// committed or handed to a background commit, so a failure never
	// leaves a half-applied tree behind.
	done := false
	defer func() {
		if done {
			return
		}
		// The caller's context may be cancelled already; cleanup must
		// still run.
		rctx := context.WithoutCancel(ctx)
		if rerr := sn.Remove(rctx, key); rerr != nil {
			logger.Warn("remove extraction snapshot", "key", key, "error", rerr)
		}
	}()

	start := time.Now()
	diffID, digests, err := apply(ctx, a, l.Blob, mounts, pf, func(n int64) {
		killPoint("apply")
		p.Bytes = n
		cfg.progress(p)
	})
	if err != nil {
		return res, fmt.Errorf("apply layer %s: %w", l.Blob.Digest, err)
	}
	if diffID != l.DiffID {
		return res, fmt.Errorf("apply layer %s: uncompressed digest %s does not match diff ID %s in the image config: %w",
			l.Blob.Digest, diffID, l.DiffID, errdefs.ErrDigestMismatch)
	}
	killPoint("applied")

	// The layer below must be committed before this one can be.
	if err := lc.below.wait(); err != nil {
		return res, err
	}
	if lc.pipelined {
		done, handedOff = true, true
		res.applied = true
		res.pending = startCommit(ctx, sn, key, chainID, digests, unlock, logger, p, start)
		return res, nil
	}

	// The committed snapshot keeps none of the extraction's labels.
	err = commitLayer(ctx, sn, chainID, key, digests, logger, start)
	if errors.Is(err, errdefs.ErrAlreadyExists) {
		// Another unpacker committed the same chain while this one worked;
		// its snapshot is as good as ours.
		logger.Debug("chain committed by another unpacker")
		return res, nil
	}
	if err != nil {
		return res, fmt.Errorf("commit layer %s as %s: %w", l.Blob.Digest, chainID, err)
	}
	done = true
	res.applied = true
	return res, nil
}

// commitLayer commits the extraction snapshot key as chainID and, on
// success, logs the layer as applied, start being when its apply began.
func commitLayer(ctx context.Context, sn snapshot.Snapshotter, chainID, key string,
	digests snapshot.FileDigests, logger *slog.Logger, start time.Time,
) error {
	if err := commit(ctx, sn, chainID, key, digests); err != nil {
		return err
	}
	killPoint("committed")
	logger.Debug("layer applied", "duration", time.Since(start))
	return nil
}

// prepare creates the extraction snapshot key for chainID: on the
// extraction snapshot of the layer below when its commit is still
// running, else on the committed chain parent.
func prepare(ctx context.Context, sn snapshot.Snapshotter, key, chainID, parent string,
	below *pendingCommit,
) ([]mount.Mount, error) {
	labels := map[string]string{LabelExtractFor: chainID}
	if below != nil {
		ap, ok := sn.(snapshot.ActivePreparer)
		if !ok {
			return nil, fmt.Errorf("prepare on extraction snapshot %s: %w", below.key, errdefs.ErrNotImplemented)
		}
		mounts, err := ap.PrepareOnActive(ctx, key, below.key, snapshot.WithLabels(labels))
		if !errors.Is(err, errdefs.ErrNotFound) {
			return mounts, err
		}
		// The commit below finished first and renamed its key to its
		// chain ID. A failed commit keeps the key until release; its
		// error is the one to report.
		if err := below.wait(); err != nil {
			return nil, err
		}
		parent = below.chainID
	}
	mounts, err := sn.Prepare(ctx, key, parent, snapshot.WithLabels(labels))
	if errors.Is(err, errdefs.ErrNotFound) && parent != "" {
		return nil, fmt.Errorf("parent %s: %w: %w", parent, errParentGone, err)
	}
	return mounts, err
}

// apply applies desc with a, asking a [DigestApplier] for the digests of
// the files it wrote. It reads the stream that pf decompressed ahead when
// pf is not nil and its stream can be used.
func apply(ctx context.Context, a Applier, desc ocispec.Descriptor, mounts []mount.Mount,
	pf *prefetch, progress func(int64),
) (digest.Digest, snapshot.FileDigests, error) {
	if fa, ok := a.(*fsApplier); ok && pf != nil {
		dgst, digests, err := fa.applyPrefetched(ctx, pf, mounts, progress)
		if !errors.Is(err, errNoPrefetch) {
			return dgst, digests, err
		}
		pf.close()
	}
	if da, ok := a.(DigestApplier); ok {
		return da.ApplyDigests(ctx, desc, mounts, progress)
	}
	dgst, err := a.Apply(ctx, desc, mounts, progress)
	return dgst, nil, err
}

// commit commits key as name, handing digests to a
// [snapshot.DigestCommitter].
func commit(ctx context.Context, sn snapshot.Snapshotter, name, key string,
	digests snapshot.FileDigests,
) error {
	if dc, ok := sn.(snapshot.DigestCommitter); ok && digests != nil {
		return dc.CommitDigests(ctx, name, key, digests)
	}
	return sn.Commit(ctx, name, key)
}

// removeLeftovers removes the extraction snapshots for chainID. The caller
// must hold the chain's lock, so that none of them is in use.
func removeLeftovers(ctx context.Context, sn snapshot.Snapshotter, chainID string) error {
	var keys []string
	err := sn.Walk(ctx, func(_ context.Context, info snapshot.Info) error {
		if IsExtractKey(info.Name) && info.Labels[LabelExtractFor] == chainID {
			keys = append(keys, info.Name)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("find leftover extractions of %s: %w", chainID, err)
	}
	for _, k := range keys {
		if _, err := removeExtraction(ctx, sn, k); err != nil {
			return fmt.Errorf("remove leftover extraction snapshot %q: %w", k, err)
		}
	}
	return nil
}

// committed reports whether a committed snapshot named chainID exists. One
// labelled [LabelBroken] is removed so that the caller, which holds the
// chain's lock, extracts it again.
func committed(ctx context.Context, sn snapshot.Snapshotter, chainID string) (bool, error) {
	info, err := sn.Stat(ctx, chainID)
	if errors.Is(err, errdefs.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("stat snapshot %s: %w", chainID, err)
	}
	if info.Kind != snapshot.KindCommitted {
		return false, fmt.Errorf("snapshot %s is %s, not committed: %w", chainID, info.Kind, errdefs.ErrFailedPrecondition)
	}
	reason, broken := info.Labels[LabelBroken]
	if !broken {
		return true, nil
	}
	err = sn.Remove(ctx, chainID)
	if errors.Is(err, errdefs.ErrFailedPrecondition) {
		return false, fmt.Errorf("snapshot %s is broken (%s) and snapshots in use are built on it: "+
			"unmount them and run 'strata check --repair': %w", chainID, reason, err)
	}
	if err != nil {
		return false, fmt.Errorf("remove broken snapshot %s: %w", chainID, err)
	}
	log.G(ctx).Info("removed broken snapshot to extract it again", "chainid", chainID, "reason", reason)
	return false, nil
}

// newExtractKey returns a key no other unpacker uses, so that concurrent
// extractions of the same chain never collide.
func newExtractKey(chainID string) (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("make extraction key: %w", err)
	}
	return fmt.Sprintf("%s%d-%s %s", extractPrefix, time.Now().UnixNano(), hex.EncodeToString(b[:]), chainID), nil
}

package unpack

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
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
) error {
	ahead := newPrefetcher(ctx, sn, a, layers, chainIDs, cfg.maxParallel-1)
	defer ahead.closeAll()
	for i, l := range layers {
		var parent string
		if i > 0 {
			parent = chainIDs[i-1].String()
		}
		pf := ahead.take(i)
		ahead.schedule(i)
		p := Progress{Index: i, Total: len(layers), Layer: l.Blob, ChainID: chainIDs[i]}
		applied, err := applyLayer(ctx, sn, a, l, chainIDs[i].String(), parent, cfg, p, pf)
		pf.close()
		if err != nil {
			return classify(err)
		}
		p.Done, p.Skipped = true, !applied
		p.Bytes = l.Blob.Size
		cfg.progress(p)
	}
	return nil
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
// layer itself.
func applyLayer(ctx context.Context, sn snapshot.Snapshotter, a Applier, l Layer, chainID, parent string,
	cfg *config, p Progress, pf *prefetch,
) (bool, error) {
	logger := log.G(ctx).With("chainid", chainID, "digest", l.Blob.Digest)

	unlock, err := cfg.locker.Lock(ctx, chainID)
	if err != nil {
		return false, fmt.Errorf("lock chain %s: %w", chainID, err)
	}
	defer unlock()

	if ok, err := committed(ctx, sn, chainID); err != nil || ok {
		if ok {
			logger.Debug("layer already unpacked")
		}
		return false, err
	}

	// Holding the chain's lock, any extraction snapshot for it is a leftover
	// of an unpacker that died. Without a locker another goroutine may be
	// extracting the chain right now, so nothing can be called a leftover.
	if _, ok := cfg.locker.(noLocker); !ok {
		if err := removeLeftovers(ctx, sn, chainID); err != nil {
			return false, err
		}
	}

	key, err := newExtractKey(chainID)
	if err != nil {
		return false, err
	}
	labels := map[string]string{LabelExtractFor: chainID}
	mounts, err := sn.Prepare(ctx, key, parent, snapshot.WithLabels(labels))
	if errors.Is(err, errdefs.ErrNotFound) && parent != "" {
		return false, fmt.Errorf("prepare snapshot for layer %s on %s: %w: %w",
			l.Blob.Digest, parent, errParentGone, err)
	}
	if err != nil {
		return false, fmt.Errorf("prepare snapshot for layer %s: %w", l.Blob.Digest, err)
	}
	killPoint("prepared")

	// Every path below removes the extraction snapshot unless it was
	// committed, so a failure never leaves a half-applied tree behind.
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
		return false, fmt.Errorf("apply layer %s: %w", l.Blob.Digest, err)
	}
	if diffID != l.DiffID {
		return false, fmt.Errorf("apply layer %s: uncompressed digest %s does not match diff ID %s in the image config: %w",
			l.Blob.Digest, diffID, l.DiffID, errdefs.ErrDigestMismatch)
	}

	killPoint("applied")

	// The committed snapshot keeps none of the extraction's labels.
	err = commit(ctx, sn, chainID, key, digests)
	if errors.Is(err, errdefs.ErrAlreadyExists) {
		// Another unpacker committed the same chain while this one worked;
		// its snapshot is as good as ours.
		logger.Debug("chain committed by another unpacker")
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("commit layer %s as %s: %w", l.Blob.Digest, chainID, err)
	}
	done = true
	killPoint("committed")
	logger.Debug("layer applied", "duration", time.Since(start))
	return true, nil
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
		log.G(ctx).Info("remove leftover extraction snapshot", "key", k, "chainid", chainID)
		if err := sn.Remove(ctx, k); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
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

package unpack_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/opencontainers/go-digest"

	"github.com/strata-containers/strata/archive/compression"
	"github.com/strata-containers/strata/archive/tartest"
	"github.com/strata-containers/strata/errdefs"
	"github.com/strata-containers/strata/identity"
	"github.com/strata-containers/strata/internal/fstree"
	"github.com/strata-containers/strata/internal/testutil"
	"github.com/strata-containers/strata/mount"
	"github.com/strata-containers/strata/snapshot"
	"github.com/strata-containers/strata/snapshot/overlay"
	"github.com/strata-containers/strata/unpack"
)

// heldCommits is an overlay snapshotter whose commits, with hold set,
// wait until a snapshot is prepared on the active snapshot being
// committed, or a second has passed, so that a test observes the next layer
// applied while the one below is committed, on every run. failAt, when set,
// is the name whose commit fails after that wait.
type heldCommits struct {
	*overlay.Snapshotter
	hold     bool
	onActive atomic.Int32
	prepared chan struct{}
	failAt   string
	// late makes PrepareOnActive wait until its parent is committed, so
	// that ApplyLayers must fall back to Prepare on the chain ID.
	late bool
}

func newHeldCommits(t *testing.T) *heldCommits {
	t.Helper()
	testutil.RequiresOverlay(t)
	sn, err := overlay.New(testutil.TempDir(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sn.Close() })
	return &heldCommits{Snapshotter: sn, hold: true, prepared: make(chan struct{}, 64)}
}

func (s *heldCommits) PrepareOnActive(ctx context.Context, key, parent string,
	opts ...snapshot.Opt,
) ([]mount.Mount, error) {
	for s.late {
		if _, err := s.Stat(ctx, parent); errors.Is(err, errdefs.ErrNotFound) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	mounts, err := s.Snapshotter.PrepareOnActive(ctx, key, parent, opts...)
	if err == nil {
		s.onActive.Add(1)
		s.prepared <- struct{}{}
	}
	return mounts, err
}

func (s *heldCommits) Commit(ctx context.Context, name, key string, opts ...snapshot.Opt) error {
	return s.CommitDigests(ctx, name, key, nil, opts...)
}

func (s *heldCommits) CommitDigests(ctx context.Context, name, key string,
	digests snapshot.FileDigests, opts ...snapshot.Opt,
) error {
	if s.hold {
		select {
		case <-s.prepared:
		case <-time.After(time.Second):
		}
	}
	if name == s.failAt {
		return errors.New("commit failed on purpose")
	}
	return s.Snapshotter.CommitDigests(ctx, name, key, digests, opts...)
}

// unpackLocked unpacks img onto sn with a file locker, as a store does.
// After the unpack it checks that every chain's lock is free and that each
// layer was reported done exactly once, also when the unpack failed at a
// layer, for the layers below it.
func unpackLocked(t *testing.T, sn snapshot.Snapshotter, img prefetchImage, maxParallel int,
) (digest.Digest, error) {
	t.Helper()
	locker, err := unpack.NewFileLocker(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	done := map[int]int{}
	chain, err := unpack.ApplyLayers(context.Background(), sn, unpack.NewApplier(img.store),
		img.layers, unpack.WithLocker(locker), unpack.WithMaxParallel(maxParallel),
		unpack.WithProgress(func(p unpack.Progress) {
			if p.Done {
				done[p.Index]++
			}
		}))

	var diffIDs []digest.Digest
	for _, l := range img.layers {
		diffIDs = append(diffIDs, l.DiffID)
	}
	for i, c := range identity.ChainIDs(diffIDs) {
		unlock, ok, lerr := locker.(unpack.TryLocker).TryLock(context.Background(), c.String())
		if lerr != nil || !ok {
			t.Errorf("lock of chain %d after the unpack: held %v, error %v; want free", i, !ok, lerr)
			continue
		}
		unlock()
	}
	for i, n := range done {
		if n != 1 {
			t.Errorf("layer %d reported done %d times, want once", i, n)
		}
	}
	if err == nil && len(done) != len(img.layers) {
		t.Errorf("%d layers reported done, want %d", len(done), len(img.layers))
	}
	return chain, err
}

// overlayTree mounts a view of chain and walks it.
func overlayTree(t *testing.T, sn snapshot.Snapshotter, chain digest.Digest) []fstree.Entry {
	t.Helper()
	ctx := context.Background()
	key := "view-" + chain.Encoded()
	mounts, err := sn.View(ctx, key, chain.String())
	if err != nil {
		t.Fatalf("view %s: %v", chain, err)
	}
	defer sn.Remove(ctx, key)
	target := t.TempDir()
	if err := mount.All(mounts, target); err != nil {
		t.Fatalf("mount %s: %v", chain, err)
	}
	defer mount.UnmountAll(target)
	tree, err := fstree.Walk(target)
	if err != nil {
		t.Fatalf("walk %s: %v", chain, err)
	}
	return tree
}

// snapshotNames returns the names of sn's snapshots by kind.
func snapshotNames(t *testing.T, sn snapshot.Snapshotter) map[snapshot.Kind][]string {
	t.Helper()
	names := map[snapshot.Kind][]string{}
	err := sn.Walk(context.Background(), func(_ context.Context, info snapshot.Info) error {
		names[info.Kind] = append(names[info.Kind], info.Name)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// TestPipelinedCommitSameTree unpacks four layers with each commit running
// while the layer above is applied, and compares the result with a strictly
// sequential unpack.
func TestPipelinedCommitSameTree(t *testing.T) {
	tars := prefetchTars(t, 4)
	img := newPrefetchImage(t, tars, gzipAll(t, tars), gzipTypes(len(tars)))

	piped := newHeldCommits(t)
	chain, err := unpackLocked(t, piped, img, 4)
	if err != nil {
		t.Fatalf("pipelined unpack: %v", err)
	}
	if n := piped.onActive.Load(); n != 3 {
		t.Errorf("%d layers prepared on the extraction snapshot below, want 3", n)
	}
	seq := newHeldCommits(t)
	seq.hold = false
	seqChain, err := unpackLocked(t, seq, img, 1)
	if err != nil {
		t.Fatalf("sequential unpack: %v", err)
	}
	if n := seq.onActive.Load(); n != 0 {
		t.Errorf("max-parallel 1 prepared %d layers on an active parent, want 0", n)
	}
	if chain != seqChain {
		t.Fatalf("chain %s, sequential %s", chain, seqChain)
	}
	if diff := cmp.Diff(overlayTree(t, seq, chain), overlayTree(t, piped, chain)); diff != "" {
		t.Errorf("pipelined tree differs from sequential (-want +got):\n%s", diff)
	}

	names := snapshotNames(t, piped)
	if len(names[snapshot.KindCommitted]) != 4 || len(names[snapshot.KindActive]) != 0 {
		t.Errorf("snapshots left: %v, want 4 committed and no active", names)
	}
	res, err := piped.Check(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range res.Problems {
		t.Errorf("check: %s %s: %s", p.Kind, p.Path, p.Detail)
	}
}

// TestPipelinedCommitFailure fails the commit of the second layer while
// the third is applied on it: both extraction snapshots are removed, the
// first layer stays committed, and a second unpack finishes the job.
func TestPipelinedCommitFailure(t *testing.T) {
	tars := prefetchTars(t, 3)
	img := newPrefetchImage(t, tars, gzipAll(t, tars), gzipTypes(len(tars)))
	chains := identity.ChainIDs([]digest.Digest{
		img.layers[0].DiffID, img.layers[1].DiffID, img.layers[2].DiffID})

	sn := newHeldCommits(t)
	sn.failAt = chains[1].String()
	_, err := unpackLocked(t, sn, img, 4)
	if err == nil || !strings.Contains(err.Error(), "commit failed on purpose") {
		t.Fatalf("unpack error = %v, want the failed commit", err)
	}
	if !strings.Contains(err.Error(), img.layers[1].Blob.Digest.String()) {
		t.Errorf("error %q does not name layer %s", err, img.layers[1].Blob.Digest)
	}
	if n := sn.onActive.Load(); n != 2 {
		t.Errorf("%d layers prepared on the extraction snapshot below, want 2", n)
	}
	names := snapshotNames(t, sn)
	want := map[snapshot.Kind][]string{snapshot.KindCommitted: {chains[0].String()}}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("snapshots after the failed commit (-want +got):\n%s", diff)
	}

	sn.failAt = ""
	chain, err := unpackLocked(t, sn, img, 4)
	if err != nil {
		t.Fatalf("second unpack: %v", err)
	}
	if chain != chains[2] {
		t.Errorf("chain %s, want %s", chain, chains[2])
	}
}

// TestPipelinedApplyFailure gives the top layer a wrong diff ID: its
// extraction snapshot is removed while the commit below it completes.
func TestPipelinedApplyFailure(t *testing.T) {
	tars := prefetchTars(t, 3)
	img := newPrefetchImage(t, tars, gzipAll(t, tars), gzipTypes(len(tars)))
	chains := identity.ChainIDs([]digest.Digest{
		img.layers[0].DiffID, img.layers[1].DiffID, img.layers[2].DiffID})
	img.layers[2].DiffID = digest.FromString("not the layer")

	sn := newHeldCommits(t)
	_, err := unpackLocked(t, sn, img, 4)
	if !errors.Is(err, errdefs.ErrDigestMismatch) {
		t.Fatalf("unpack error = %v, want ErrDigestMismatch", err)
	}
	if n := sn.onActive.Load(); n != 2 {
		t.Errorf("%d layers prepared on the extraction snapshot below, want 2", n)
	}
	names := snapshotNames(t, sn)
	want := map[snapshot.Kind][]string{
		snapshot.KindCommitted: {chains[0].String(), chains[1].String()},
	}
	if diff := cmp.Diff(want, names, sortStrings); diff != "" {
		t.Errorf("snapshots after the failed apply (-want +got):\n%s", diff)
	}
}

// gzipAll compresses each tar with gzip.
func gzipAll(t *testing.T, tars [][]byte) [][]byte {
	t.Helper()
	blobs := make([][]byte, len(tars))
	for i, tar := range tars {
		blobs[i] = tartest.Gzip(t, tar)
	}
	return blobs
}

// gzipTypes returns n gzip layer media types.
func gzipTypes(n int) []string {
	types := make([]string, n)
	for i := range types {
		types[i] = compression.MediaTypeOCILayerGzip
	}
	return types
}

var sortStrings = cmpopts.SortSlices(func(a, b string) bool { return a < b })

// TestPipelinedPrepareFallback lets every commit below finish before the
// layer above is prepared on it: ApplyLayers then prepares on the
// committed chain instead, with the same result.
func TestPipelinedPrepareFallback(t *testing.T) {
	tars := prefetchTars(t, 4)
	img := newPrefetchImage(t, tars, gzipAll(t, tars), gzipTypes(len(tars)))

	sn := newHeldCommits(t)
	sn.hold, sn.late = false, true
	chain, err := unpackLocked(t, sn, img, 4)
	if err != nil {
		t.Fatalf("unpack: %v", err)
	}
	if n := sn.onActive.Load(); n != 0 {
		t.Errorf("%d layers prepared on an active parent, want 0 after every fallback", n)
	}
	names := snapshotNames(t, sn)
	if len(names[snapshot.KindCommitted]) != 4 || len(names[snapshot.KindActive]) != 0 {
		t.Errorf("snapshots left: %v, want 4 committed and no active", names)
	}

	seq := newHeldCommits(t)
	seq.hold = false
	seqChain, err := unpackLocked(t, seq, img, 1)
	if err != nil {
		t.Fatalf("sequential unpack: %v", err)
	}
	if chain != seqChain {
		t.Fatalf("chain %s, sequential %s", chain, seqChain)
	}
	if diff := cmp.Diff(overlayTree(t, seq, chain), overlayTree(t, sn, chain)); diff != "" {
		t.Errorf("tree after fallbacks differs from sequential (-want +got):\n%s", diff)
	}
}

// TestPipelinedCancelKeepsBelow cancels the unpack while the second layer
// is applied: the first layer, applied in full, is still committed.
func TestPipelinedCancelKeepsBelow(t *testing.T) {
	tars := prefetchTars(t, 3)
	img := newPrefetchImage(t, tars, gzipAll(t, tars), gzipTypes(len(tars)))
	chains := identity.ChainIDs([]digest.Digest{
		img.layers[0].DiffID, img.layers[1].DiffID, img.layers[2].DiffID})
	locker, err := unpack.NewFileLocker(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}

	sn := newHeldCommits(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, err = unpack.ApplyLayers(ctx, sn, unpack.NewApplier(img.store), img.layers,
		unpack.WithLocker(locker), unpack.WithMaxParallel(4),
		unpack.WithProgress(func(p unpack.Progress) {
			if p.Index == 1 && !p.Done {
				cancel()
			}
		}))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("unpack error = %v, want context.Canceled", err)
	}
	names := snapshotNames(t, sn)
	want := map[snapshot.Kind][]string{snapshot.KindCommitted: {chains[0].String()}}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("snapshots after the cancel (-want +got):\n%s", diff)
	}
}

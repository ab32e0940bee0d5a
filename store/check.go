package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-containers/strata/content"
	"github.com/strata-containers/strata/errdefs"
	"github.com/strata-containers/strata/identity"
	"github.com/strata-containers/strata/snapshot"
	"github.com/strata-containers/strata/snapshot/storage"
	"github.com/strata-containers/strata/unpack"
)

// Kinds of [Problem] found outside the snapshot directories; the others
// are the storage.Problem* kinds.
const (
	ProblemCorruptBlob        = "corrupt-blob"
	ProblemMissingBlob        = "missing-blob"
	ProblemStaleIngest        = "stale-ingest"
	ProblemLeftoverExtraction = "leftover-extraction"
)

// Problem is one fault that [Store.Check] finds.
type Problem struct {
	Kind        string        `json:"kind"`
	Snapshotter string        `json:"snapshotter,omitempty"`
	Snapshot    string        `json:"snapshot,omitempty"`
	Image       string        `json:"image,omitempty"`
	Digest      digest.Digest `json:"digest,omitempty"`
	Path        string        `json:"path,omitempty"`
	Detail      string        `json:"detail"`
	// Repaired is set when --repair removed the fault.
	Repaired bool `json:"repaired"`
}

// CheckReport is the outcome of [Store.Check].
type CheckReport struct {
	// Healthy is set when every problem found was repaired, or none was
	// found.
	Healthy   bool      `json:"healthy"`
	Blobs     int       `json:"blobs"`
	Snapshots int       `json:"snapshots"`
	Files     int       `json:"files"`
	Problems  []Problem `json:"problems"`
}

// Check verifies the store: the digest of every blob, that every image's
// manifest, config and layer blobs exist, leftovers of crashed processes,
// the snapshot records against their directories, and every committed
// snapshot's files against the manifest recorded before its commit.
//
// With repair it removes leftovers and corrupt blobs. It removes damaged
// snapshots with the snapshots built on them, so that the next unpack
// extracts them again. A damaged snapshot under a view or an active
// snapshot is labelled [unpack.LabelBroken] instead and stays a problem.
// Missing blobs are never repaired: the image must be imported again.
func (s *Store) Check(ctx context.Context, repair bool) (CheckReport, error) {
	var rep CheckReport
	if err := s.checkBlobs(ctx, &rep, repair); err != nil {
		return rep, err
	}
	if err := s.checkImages(ctx, &rep); err != nil {
		return rep, err
	}
	if err := s.checkIngests(ctx, &rep, repair); err != nil {
		return rep, err
	}
	names, err := s.presentSnapshotters()
	if err != nil {
		return rep, fmt.Errorf("check %s: %w", s.root, err)
	}
	for _, name := range names {
		if err := s.checkSnapshotter(ctx, name, &rep, repair); err != nil {
			return rep, err
		}
	}
	rep.Healthy = !slices.ContainsFunc(rep.Problems, func(p Problem) bool { return !p.Repaired })
	if rep.Problems == nil {
		rep.Problems = []Problem{}
	}
	return rep, nil
}

func (s *Store) checkBlobs(ctx context.Context, rep *CheckReport, repair bool) error {
	var corrupt []Problem
	err := s.content.Walk(ctx, func(info content.Info) error {
		rep.Blobs++
		got, err := blobDigest(ctx, s.content, info)
		if err != nil {
			return err
		}
		if got != info.Digest {
			path, _ := s.local.BlobPath(info.Digest)
			corrupt = append(corrupt, Problem{Kind: ProblemCorruptBlob, Digest: info.Digest,
				Path: path, Detail: fmt.Sprintf("content hashes to %s", got)})
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("check blobs: %w", err)
	}
	for _, p := range corrupt {
		if repair {
			err := s.content.Delete(ctx, p.Digest)
			if err != nil && !errors.Is(err, errdefs.ErrNotFound) {
				return fmt.Errorf("repair blob %s: %w", p.Digest, err)
			}
			p.Repaired = true
			p.Detail += "; removed, import the image again"
		}
		rep.Problems = append(rep.Problems, p)
	}
	return nil
}

func blobDigest(ctx context.Context, p content.Provider, info content.Info) (digest.Digest, error) {
	ra, err := p.ReaderAt(ctx, ocispec.Descriptor{Digest: info.Digest, Size: info.Size})
	if err != nil {
		return "", err
	}
	defer ra.Close()
	got, err := info.Digest.Algorithm().FromReader(content.NewReader(ra))
	if err != nil {
		return "", fmt.Errorf("read blob %s: %w", info.Digest, err)
	}
	return got, nil
}

func (s *Store) checkImages(ctx context.Context, rep *CheckReport) error {
	imgs, err := s.images.List(ctx)
	if err != nil {
		return fmt.Errorf("check images: %w", err)
	}
	for _, img := range imgs {
		resolved, err := s.Resolve(ctx, img.Name)
		if err != nil {
			rep.Problems = append(rep.Problems, Problem{Kind: ProblemMissingBlob, Image: img.Name,
				Digest: img.Target.Digest, Detail: err.Error() + "; import the image again"})
			continue
		}
		unpacked := s.unpackedDepth(ctx, resolved.DiffIDs())
		for i, l := range resolved.Layers {
			if i < unpacked {
				// A pull skips the blobs of layers that are unpacked
				// already, so their absence is no problem.
				continue
			}
			if _, err := s.content.Info(ctx, l.Descriptor.Digest); err != nil {
				rep.Problems = append(rep.Problems, Problem{Kind: ProblemMissingBlob,
					Image: img.Name, Digest: l.Descriptor.Digest,
					Detail: "layer blob: " + err.Error() + "; import the image again"})
			}
		}
	}
	return nil
}

// unpackedDepth returns how many of the bottom layers of an image with
// diffIDs are committed in the store's snapshotter.
func (s *Store) unpackedDepth(ctx context.Context, diffIDs []digest.Digest) int {
	sn, err := s.Snapshotter(ctx)
	if err != nil {
		return 0
	}
	chainIDs := identity.ChainIDs(diffIDs)
	for i := len(chainIDs) - 1; i >= 0; i-- {
		if info, err := sn.Stat(ctx, chainIDs[i].String()); err == nil && info.Kind == snapshot.KindCommitted {
			return i + 1
		}
	}
	return 0
}

func (s *Store) checkIngests(ctx context.Context, rep *CheckReport, repair bool) error {
	count := s.local.StaleIngests
	if repair {
		count = s.local.RemoveStaleIngests
	}
	n, err := count(ctx, 0)
	if err != nil {
		return fmt.Errorf("check ingests: %w", err)
	}
	if n > 0 {
		rep.Problems = append(rep.Problems, Problem{Kind: ProblemStaleIngest,
			Path: s.local.Root() + "/ingest", Repaired: repair,
			Detail: fmt.Sprintf("%d partial ingests that no process writes", n)})
	}
	return nil
}

func (s *Store) checkSnapshotter(ctx context.Context, name string, rep *CheckReport, repair bool) error {
	sn, err := s.snapshotterNamed(ctx, name)
	if err != nil {
		return fmt.Errorf("check snapshotter %s: %w", name, err)
	}
	c, ok := sn.(checker)
	if !ok {
		return fmt.Errorf("check snapshotter %s: %w", name, errdefs.ErrNotImplemented)
	}

	find := unpack.FindLeftovers
	if repair {
		find = unpack.RemoveLeftovers
	}
	keys, err := find(ctx, sn, s.locker)
	if err != nil {
		return fmt.Errorf("check snapshotter %s: %w", name, err)
	}
	slices.Sort(keys)
	for _, k := range keys {
		rep.Problems = append(rep.Problems, Problem{Kind: ProblemLeftoverExtraction,
			Snapshotter: name, Snapshot: k, Repaired: repair,
			Detail: "extraction snapshot of an unpacker that did not finish"})
	}

	res, err := c.Check(ctx)
	if err != nil {
		return fmt.Errorf("check snapshotter %s: %w", name, err)
	}
	rep.Snapshots += res.Snapshots
	rep.Files += res.Files
	found := make([]Problem, 0, len(res.Problems))
	for _, p := range res.Problems {
		found = append(found, Problem{Kind: p.Kind, Snapshotter: name, Snapshot: p.Key,
			Path: p.Path, Detail: p.Detail})
	}
	if repair {
		if err := s.repairSnapshots(ctx, sn, c, found); err != nil {
			return fmt.Errorf("repair snapshotter %s: %w", name, err)
		}
	}
	rep.Problems = append(rep.Problems, found...)
	return nil
}

// repairSnapshots removes leftover directories and damaged snapshots, and
// marks each problem it fixed.
func (s *Store) repairSnapshots(ctx context.Context, sn snapshot.Snapshotter, c checker,
	problems []Problem,
) error {
	if slices.ContainsFunc(problems, func(p Problem) bool { return p.Kind == storage.ProblemLeftover }) {
		if _, err := c.Recover(ctx); err != nil {
			return err
		}
	}
	tree, err := snapshotTree(ctx, sn)
	if err != nil {
		return err
	}
	outcome := map[string]error{}
	for i := range problems {
		p := &problems[i]
		if p.Kind == storage.ProblemLeftover {
			p.Repaired = true
			continue
		}
		err, done := outcome[p.Snapshot]
		if !done {
			err = s.removeDamaged(ctx, sn, c, tree, p.Snapshot, p.Detail)
			outcome[p.Snapshot] = err
		}
		if err == nil {
			p.Repaired = true
			p.Detail += "; removed, the next unpack extracts it again"
		} else if errors.Is(err, errdefs.ErrFailedPrecondition) {
			p.Detail += "; " + err.Error()
		} else {
			return err
		}
	}
	return nil
}

// removeDamaged removes the snapshot key and every snapshot built on it,
// children first. When one of those is a view or an active snapshot, a
// mount or an unpack in progress, it removes nothing, labels a committed
// key [unpack.LabelBroken] and returns an error of class
// ErrFailedPrecondition.
func (s *Store) removeDamaged(ctx context.Context, sn snapshot.Snapshotter, c checker,
	tree map[string][]snapshot.Info, key, reason string,
) error {
	var order []snapshot.Info // descendants, deepest last
	queue := []string{key}
	for len(queue) > 0 {
		children := tree[queue[0]]
		queue = queue[1:]
		for _, ch := range children {
			order = append(order, ch)
			queue = append(queue, ch.Name)
		}
	}
	var inUse []string
	for _, info := range order {
		if info.Kind != snapshot.KindCommitted {
			inUse = append(inUse, info.Name)
		}
	}
	if len(inUse) > 0 {
		info, err := sn.Stat(ctx, key)
		if err == nil && info.Kind == snapshot.KindCommitted {
			if err := c.Label(ctx, key, map[string]string{unpack.LabelBroken: reason}); err != nil {
				return err
			}
		}
		return fmt.Errorf("in use by %s: unmount and run 'strata check --repair' again: %w",
			strings.Join(inUse, ", "), errdefs.ErrFailedPrecondition)
	}
	for i := len(order) - 1; i >= 0; i-- {
		if err := sn.Remove(ctx, order[i].Name); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			return fmt.Errorf("remove snapshot %s built on damaged %s: %w", order[i].Name, key, err)
		}
	}
	if err := sn.Remove(ctx, key); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
		return fmt.Errorf("remove damaged snapshot %s: %w", key, err)
	}
	return nil
}

// snapshotTree returns the snapshots of sn by the name of their parent.
func snapshotTree(ctx context.Context, sn snapshot.Snapshotter) (map[string][]snapshot.Info, error) {
	tree := map[string][]snapshot.Info{}
	err := sn.Walk(ctx, func(_ context.Context, info snapshot.Info) error {
		if info.Parent != "" {
			tree[info.Parent] = append(tree[info.Parent], info)
		}
		return nil
	})
	return tree, err
}

package storage

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/strata-containers/strata/snapshot"
)

// The kinds of [Problem].
const (
	// ProblemLeftover is a directory a crashed process left: a staging or
	// removal directory, or a snapshot directory that no record names.
	ProblemLeftover = "leftover-directory"
	// ProblemMissingDirectory is a record whose directory is gone.
	ProblemMissingDirectory = "missing-directory"
	// ProblemDanglingParent is a record whose parent record is gone.
	ProblemDanglingParent = "dangling-parent"
	// ProblemMissingManifest is a committed snapshot without a manifest.
	ProblemMissingManifest = "missing-manifest"
	// ProblemCorruptFile is a committed snapshot with a file that differs
	// from its manifest.
	ProblemCorruptFile = "corrupt-file"
)

// Problem is one fault that [Check] finds.
type Problem struct {
	Kind string
	// Key names the snapshot at fault; it is empty for a leftover.
	Key string
	// Path is the directory or file at fault.
	Path   string
	Detail string
}

// CheckResult is what [Check] found.
type CheckResult struct {
	Snapshots int
	Files     int
	Problems  []Problem
}

// record is one snapshot record as Check reads it.
type record struct {
	key, id, parent string
	kind            snapshot.Kind
}

// Check compares the records in ms with the directories of dirs, and the
// files of every committed snapshot with its manifest. It reads the
// records in one short transaction and verifies the files outside it, then
// drops problems of snapshots removed meanwhile.
func Check(ctx context.Context, ms *MetaStore, dirs *Dirs) (CheckResult, error) {
	var (
		res     CheckResult
		records []record
	)
	err := ms.View(ctx, func(ctx context.Context) error {
		var err error
		if records, err = readRecords(ctx); err != nil {
			return err
		}
		lo, err := dirs.findLeftovers(ctx, func(string) error { return nil })
		for _, group := range [][]string{lo.Staging, lo.Trash, lo.Orphans} {
			for _, p := range group {
				res.Problems = append(res.Problems, Problem{Kind: ProblemLeftover, Path: p,
					Detail: "left by a process that did not finish"})
			}
		}
		return err
	})
	if err != nil {
		return res, fmt.Errorf("check snapshots in %s: %w", dirs.dir, err)
	}

	byKey := make(map[string]record, len(records))
	for _, r := range records {
		byKey[r.key] = r
	}
	var found []Problem
	for _, r := range records {
		res.Snapshots++
		problems, files, err := checkRecord(ctx, dirs, r, byKey)
		if err != nil {
			return res, err
		}
		res.Files += files
		found = append(found, problems...)
	}
	if len(found) == 0 {
		return res, nil
	}

	// A snapshot removed while it was checked shows as missing files.
	err = ms.View(ctx, func(ctx context.Context) error {
		now, err := readRecords(ctx)
		if err != nil {
			return err
		}
		still := map[string]string{}
		for _, r := range now {
			still[r.key] = r.id
		}
		for _, p := range found {
			if id, ok := still[p.Key]; ok && id == byKey[p.Key].id {
				res.Problems = append(res.Problems, p)
			}
		}
		return nil
	})
	return res, err
}

func checkRecord(ctx context.Context, dirs *Dirs, r record, byKey map[string]record,
) ([]Problem, int, error) {
	dir := dirs.Path(r.id)
	var problems []Problem
	if r.parent != "" {
		if _, ok := byKey[r.parent]; !ok {
			problems = append(problems, Problem{Kind: ProblemDanglingParent, Key: r.key,
				Path: dir, Detail: fmt.Sprintf("parent %s has no record", r.parent)})
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "fs")); errors.Is(err, fs.ErrNotExist) {
		problems = append(problems, Problem{Kind: ProblemMissingDirectory, Key: r.key,
			Path: dir, Detail: "the snapshot's fs directory does not exist"})
		return problems, 0, nil
	} else if err != nil {
		return nil, 0, fmt.Errorf("check snapshot %s: %w", r.key, err)
	}
	if r.kind != snapshot.KindCommitted {
		return problems, 0, nil
	}

	files, bad, err := VerifyManifest(ctx, dir)
	if errors.Is(err, fs.ErrNotExist) {
		problems = append(problems, Problem{Kind: ProblemMissingManifest, Key: r.key,
			Path: filepath.Join(dir, ManifestName), Detail: "no manifest to verify the files against"})
		return problems, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("check snapshot %s: %w", r.key, err)
	}
	for _, b := range bad {
		rel, _, _ := strings.Cut(b, ": ")
		problems = append(problems, Problem{Kind: ProblemCorruptFile, Key: r.key,
			Path: filepath.Join(dir, "fs", rel), Detail: b})
	}
	return problems, files, nil
}

func readRecords(ctx context.Context) ([]record, error) {
	tx, err := transaction(ctx)
	if err != nil {
		return nil, err
	}
	snapshots, _ := buckets(tx)
	if snapshots == nil {
		return nil, nil
	}
	var out []record
	err = snapshots.ForEachBucket(func(k []byte) error {
		b := snapshots.Bucket(k)
		id, err := readID(b)
		if err != nil {
			return fmt.Errorf("read snapshot %s: %w", k, err)
		}
		out = append(out, record{key: string(k), id: formatID(id),
			parent: string(b.Get(keyParent)), kind: readKind(b)})
		return nil
	})
	return out, err
}

// SetLabels sets labels on the snapshot key, replacing values of the same
// names, and records the update time. It needs a read-write transaction in
// ctx.
func SetLabels(ctx context.Context, key string, labels map[string]string) error {
	tx, err := transaction(ctx)
	if err != nil {
		return err
	}
	b, err := snapshotBucket(tx, key)
	if err != nil {
		return fmt.Errorf("label snapshot: %w", err)
	}
	lb, err := b.CreateBucketIfNotExists(bucketLabels)
	if err != nil {
		return fmt.Errorf("label snapshot %s: %w", key, err)
	}
	for k, v := range labels {
		if err := lb.Put([]byte(k), []byte(v)); err != nil {
			return fmt.Errorf("label snapshot %s: put label %q: %w", key, k, err)
		}
	}
	updated, err := time.Now().UTC().MarshalBinary()
	if err != nil {
		return fmt.Errorf("label snapshot %s: %w", key, err)
	}
	return b.Put(keyUpdated, updated)
}

package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/strata-containers/strata/snapshot/storage"
	"github.com/strata-containers/strata/unpack"
)

// checker is the part of the store's snapshotters, beyond
// [snapshot.Snapshotter], that recovery and checks use.
type checker interface {
	Recover(ctx context.Context) ([]string, error)
	Check(ctx context.Context) (storage.CheckResult, error)
	Label(ctx context.Context, key string, labels map[string]string) error
}

// Recovered lists what [Store.Recover] removed.
type Recovered struct {
	// Ingests is the number of partial ingests removed.
	Ingests int
	// Extractions are the keys of extraction snapshots removed, prefixed
	// with the snapshotter's name and a slash.
	Extractions []string
	// Directories are the snapshot directories removed.
	Directories []string
}

// Recover removes what processes that were killed left in the root:
// partial ingests that no writer holds, extraction snapshots whose chain no
// unpacker holds, and snapshot directories that no live process is building
// and no record names. Everything that a live process works on is kept, so
// it is safe while other processes use the root. [Open] calls it unless
// [WithoutRecovery] is given.
//
// An interrupted import starts its blobs again. A partial registry download
// stays for [ResumeWindow] so that the next pull resumes it.
func (s *Store) Recover(ctx context.Context) (Recovered, error) {
	var rec Recovered
	n, err := s.local.RemoveStaleIngests(ctx, 0)
	rec.Ingests = n
	if err != nil {
		return rec, fmt.Errorf("recover %s: %w", s.root, err)
	}
	names, err := s.presentSnapshotters()
	if err != nil {
		return rec, fmt.Errorf("recover %s: %w", s.root, err)
	}
	for _, name := range names {
		sn, err := s.snapshotterNamed(ctx, name)
		if err != nil {
			// A snapshotter this kernel cannot run has nothing in use.
			continue
		}
		keys, err := unpack.RemoveLeftovers(ctx, sn, s.locker)
		for _, k := range keys {
			rec.Extractions = append(rec.Extractions, name+"/"+k)
		}
		if err != nil {
			return rec, fmt.Errorf("recover %s: %w", s.root, err)
		}
		if c, ok := sn.(checker); ok {
			dirs, err := c.Recover(ctx)
			rec.Directories = append(rec.Directories, dirs...)
			if err != nil {
				return rec, fmt.Errorf("recover %s: %w", s.root, err)
			}
		}
	}
	slices.Sort(rec.Extractions)
	return rec, nil
}

// presentSnapshotters returns the names of the snapshotters that have a
// directory under the root.
func (s *Store) presentSnapshotters() ([]string, error) {
	var names []string
	for _, name := range Snapshotters {
		_, err := os.Stat(filepath.Join(s.root, "snapshots", name))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		names = append(names, name)
	}
	return names, nil
}

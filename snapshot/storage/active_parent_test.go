package storage

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	bolt "go.etcd.io/bbolt"

	"github.com/strata-containers/strata/errdefs"
	"github.com/strata-containers/strata/snapshot"
)

// TestActiveParentCommitOrder prepares a child on an active parent and
// checks that the child cannot be committed first, that the parent cannot
// be removed under it, and that the parent's commit renames the child's
// parent.
func TestActiveParentCommitOrder(t *testing.T) {
	ms, _ := newTestStore(t)
	var parent, child Snapshot
	err := update(t, ms, func(ctx context.Context) error {
		var err error
		if parent, err = CreateSnapshot(ctx, snapshot.KindActive, "parent-key", ""); err != nil {
			return err
		}
		child, err = CreateSnapshotOnActive(ctx, "child-key", "parent-key")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{parent.ID}, child.ParentIDs); diff != "" {
		t.Errorf("parent IDs of the child (-want +got):\n%s", diff)
	}

	err = update(t, ms, func(ctx context.Context) error {
		_, err := CommitActive(ctx, "child-key", "child", snapshot.Usage{})
		return err
	})
	if !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Errorf("commit of the child before its parent: %v, want ErrFailedPrecondition", err)
	}
	err = update(t, ms, func(ctx context.Context) error {
		_, _, err := Remove(ctx, "parent-key")
		return err
	})
	if !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Errorf("remove of the parent under the child: %v, want ErrFailedPrecondition", err)
	}

	err = update(t, ms, func(ctx context.Context) error {
		if _, err := CommitActive(ctx, "parent-key", "parent", snapshot.Usage{}); err != nil {
			return err
		}
		_, info, _, err := GetInfo(ctx, "child-key")
		if err != nil {
			return err
		}
		if info.Parent != "parent" {
			t.Errorf("child's parent after the parent's commit = %q, want %q", info.Parent, "parent")
		}
		got, err := GetSnapshot(ctx, "child-key")
		if err != nil {
			return err
		}
		if diff := cmp.Diff([]string{parent.ID}, got.ParentIDs); diff != "" {
			t.Errorf("parent IDs of the child after the commit (-want +got):\n%s", diff)
		}
		_, err = CommitActive(ctx, "child-key", "child", snapshot.Usage{})
		return err
	})
	if err != nil {
		t.Fatalf("commit parent, then child: %v", err)
	}
}

// TestActiveParentKinds checks which parents CreateSnapshotOnActive takes:
// an active one only.
func TestActiveParentKinds(t *testing.T) {
	ms, _ := newTestStore(t)
	err := update(t, ms, func(ctx context.Context) error {
		if _, err := CreateSnapshot(ctx, snapshot.KindActive, "a", ""); err != nil {
			return err
		}
		if _, err := CommitActive(ctx, "a", "committed", snapshot.Usage{}); err != nil {
			return err
		}
		_, err := CreateSnapshot(ctx, snapshot.KindView, "view", "committed")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		parent string
		want   error
	}{
		{"committed", errdefs.ErrFailedPrecondition},
		{"view", errdefs.ErrFailedPrecondition},
		{"missing", errdefs.ErrNotFound},
		{"", errdefs.ErrInvalidArgument},
	} {
		err := update(t, ms, func(ctx context.Context) error {
			_, err := CreateSnapshotOnActive(ctx, "child-of-"+tc.parent, tc.parent)
			return err
		})
		if !errors.Is(err, tc.want) {
			t.Errorf("on parent %q: %v, want %v", tc.parent, err, tc.want)
		}
	}
}

// TestChildKeysIndex checks that the parents index contains each child's
// key through its commit. Entries with an empty or stale value, as older
// stores contain, must still resolve.
func TestChildKeysIndex(t *testing.T) {
	ms, _ := newTestStore(t)
	err := update(t, ms, func(ctx context.Context) error {
		if _, err := CreateSnapshot(ctx, snapshot.KindActive, "base-key", ""); err != nil {
			return err
		}
		if _, err := CommitActive(ctx, "base-key", "base", snapshot.Usage{}); err != nil {
			return err
		}
		for _, k := range []string{"a-key", "b-key", "c-key"} {
			if _, err := CreateSnapshot(ctx, snapshot.KindActive, k, "base"); err != nil {
				return err
			}
		}
		_, err := CommitActive(ctx, "a-key", "a", snapshot.Usage{})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	// children runs edit on the parents index, with the ID of every
	// snapshot by key, and returns the sorted children of base.
	children := func(edit func(parents *bolt.Bucket, ids map[string]uint64)) []string {
		t.Helper()
		var keys []string
		err := update(t, ms, func(ctx context.Context) error {
			tx, err := transaction(ctx)
			if err != nil {
				return err
			}
			snapshots, parents := buckets(tx)
			ids := map[string]uint64{}
			for _, key := range []string{"base", "a", "b-key", "c-key"} {
				if ids[key], err = readID(snapshots.Bucket([]byte(key))); err != nil {
					return err
				}
			}
			edit(parents, ids)
			keys, err = childKeys(tx, ids["base"])
			slices.Sort(keys)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return keys
	}
	want := []string{"a", "b-key", "c-key"}

	got := children(func(parents *bolt.Bucket, ids map[string]uint64) {
		for _, key := range []string{"a", "b-key"} {
			if v := string(parents.Get(parentKey(ids["base"], ids[key]))); v != key {
				t.Errorf("index value for %s = %q, want the key", key, v)
			}
		}
	})
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("children from the index (-want +got):\n%s", diff)
	}

	got = children(func(parents *bolt.Bucket, ids map[string]uint64) {
		if err := parents.Put(parentKey(ids["base"], ids["b-key"]), nil); err != nil {
			t.Fatal(err)
		}
		if err := parents.Put(parentKey(ids["base"], ids["c-key"]), []byte("a")); err != nil {
			t.Fatal(err)
		}
	})
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("children with an empty and a stale index value (-want +got):\n%s", diff)
	}
}

package storage

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

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

package storage

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/strata-containers/strata/errdefs"
	"github.com/strata-containers/strata/snapshot"
)

func newTestStore(t *testing.T) (*MetaStore, *Dirs) {
	t.Helper()
	root := t.TempDir()
	ms, err := NewMetaStore(filepath.Join(root, "metadata.db"))
	if err != nil {
		t.Fatal(err)
	}
	dirs, err := NewDirs(root)
	if err != nil {
		t.Fatal(err)
	}
	return ms, dirs
}

func update(t *testing.T, ms *MetaStore, fn func(ctx context.Context) error) error {
	t.Helper()
	return ms.Update(context.Background(), fn)
}

func TestChainIDsAndCommit(t *testing.T) {
	ms, _ := newTestStore(t)
	var ids []string
	parent := ""
	for _, name := range []string{"a", "b", "c"} {
		err := update(t, ms, func(ctx context.Context) error {
			s, err := CreateSnapshot(ctx, snapshot.KindActive, "key-"+name, parent)
			if err != nil {
				return err
			}
			if diff := cmp.Diff(ids, s.ParentIDs); diff != "" {
				t.Errorf("parent IDs of %s (-want +got):\n%s", name, diff)
			}
			id, err := CommitActive(ctx, "key-"+name, name, snapshot.Usage{Inodes: 2, Size: 8})
			if err != nil {
				return err
			}
			if id != s.ID {
				t.Errorf("commit changed ID from %s to %s", s.ID, id)
			}
			ids = append([]string{id}, ids...)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		parent = name
	}
	if diff := cmp.Diff([]string{"3", "2", "1"}, ids); diff != "" {
		t.Errorf("IDs (-want +got):\n%s", diff)
	}

	err := ms.View(context.Background(), func(ctx context.Context) error {
		s, err := GetSnapshot(ctx, "c")
		if err != nil {
			return err
		}
		want := Snapshot{ID: "3", Kind: snapshot.KindCommitted, ParentIDs: []string{"2", "1"}}
		if diff := cmp.Diff(want, s); diff != "" {
			t.Errorf("GetSnapshot (-want +got):\n%s", diff)
		}
		_, _, usage, err := GetInfo(ctx, "c")
		if usage != (snapshot.Usage{Inodes: 2, Size: 8}) {
			t.Errorf("usage = %+v, want the one recorded at commit", usage)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestIDNotReusedAfterRemove(t *testing.T) {
	ms, _ := newTestStore(t)
	var first, second Snapshot
	err := update(t, ms, func(ctx context.Context) error {
		var err error
		first, err = CreateSnapshot(ctx, snapshot.KindActive, "a", "")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	err = update(t, ms, func(ctx context.Context) error {
		_, _, err := Remove(ctx, "a")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	err = update(t, ms, func(ctx context.Context) error {
		var err error
		second, err = CreateSnapshot(ctx, snapshot.KindActive, "a", "")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if first.ID == second.ID {
		t.Errorf("ID %s handed out twice", first.ID)
	}
}

func TestRemoveWithChildrenFails(t *testing.T) {
	ms, _ := newTestStore(t)
	err := update(t, ms, func(ctx context.Context) error {
		if _, err := CreateSnapshot(ctx, snapshot.KindActive, "a", ""); err != nil {
			return err
		}
		if _, err := CommitActive(ctx, "a", "base", snapshot.Usage{}); err != nil {
			return err
		}
		_, err := CreateSnapshot(ctx, snapshot.KindView, "v", "base")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	err = update(t, ms, func(ctx context.Context) error {
		_, _, err := Remove(ctx, "base")
		return err
	})
	if !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Errorf("remove of parent returned %v, want ErrFailedPrecondition", err)
	}
	err = update(t, ms, func(ctx context.Context) error {
		if _, _, err := Remove(ctx, "v"); err != nil {
			return err
		}
		_, _, err := Remove(ctx, "base")
		return err
	})
	if err != nil {
		t.Errorf("remove child then parent: %v", err)
	}
}

func TestWriteInReadOnlyTransaction(t *testing.T) {
	ms, _ := newTestStore(t)
	err := ms.View(context.Background(), func(ctx context.Context) error {
		_, err := CreateSnapshot(ctx, snapshot.KindActive, "a", "")
		return err
	})
	if !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Errorf("create in read-only transaction returned %v, want ErrFailedPrecondition", err)
	}
	_, err = GetSnapshot(context.Background(), "a")
	if !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Errorf("get without transaction returned %v, want ErrFailedPrecondition", err)
	}
}

func TestRecoverKeepsLiveStaging(t *testing.T) {
	ms, dirs := newTestStore(t)
	ctx := context.Background()
	// A staging directory without its lock file, as a killed builder of an
	// older version or one killed before the lock was taken leaves it.
	dead := dirs.Path("new-dead")
	if err := os.MkdirAll(filepath.Join(dead, "fs", "locked"), 0o700); err != nil {
		t.Fatal(err)
	}
	// A mode-0000 directory inside must not stop the removal.
	if err := os.Chmod(filepath.Join(dead, "fs", "locked"), 0); err != nil {
		t.Fatal(err)
	}
	live, err := dirs.Stage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	removed, err := dirs.Recover(ctx, ms)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{dead}, removed); diff != "" {
		t.Errorf("recover with a live staging directory (-want +got):\n%s", diff)
	}
	if _, err := os.Stat(live.Path()); err != nil {
		t.Errorf("live staging directory: %v", err)
	}
	live.Close(ctx)
	if _, err := os.Stat(live.Path()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("staging directory after Close: %v, want it removed", err)
	}
}

func TestRecoverRemovesOrphan(t *testing.T) {
	ms, dirs := newTestStore(t)
	ctx := context.Background()
	err := update(t, ms, func(ctx context.Context) error {
		_, err := CreateSnapshot(ctx, snapshot.KindActive, "a", "")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"1", "7"} {
		if err := os.MkdirAll(filepath.Join(dirs.Path(id), "fs"), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	lo, err := dirs.FindLeftovers(ctx, ms)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{dirs.Path("7")}, lo.Orphans); diff != "" {
		t.Errorf("orphans (-want +got):\n%s", diff)
	}
	if _, err := dirs.Recover(ctx, ms); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(filepath.Dir(dirs.Path("1")))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if diff := cmp.Diff([]string{"1"}, names); diff != "" {
		t.Errorf("snapshot directories after recover (-want +got):\n%s", diff)
	}
}

func TestStagingReplacesOrphan(t *testing.T) {
	ms, dirs := newTestStore(t)
	// A directory for the next ID without a record, as a crash between
	// rename and commit leaves it.
	if err := os.MkdirAll(filepath.Join(dirs.Path("1"), "fs", "stale"), 0o700); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st, err := dirs.Stage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close(ctx)
	err = ms.Update(ctx, func(ctx context.Context) error {
		s, err := CreateSnapshot(ctx, snapshot.KindActive, "a", "")
		if err != nil {
			return err
		}
		return st.Rename(s.ID)
	})
	if err != nil {
		t.Fatal(err)
	}
	st.Done()
	if _, err := os.Stat(filepath.Join(dirs.Path("1"), "fs", "stale")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("orphan content survived: %v", err)
	}
}

func TestStagingRemovedOnFailure(t *testing.T) {
	ms, dirs := newTestStore(t)
	ctx := context.Background()
	st, err := dirs.Stage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	err = ms.Update(ctx, func(ctx context.Context) error {
		s, err := CreateSnapshot(ctx, snapshot.KindActive, "a", "")
		if err != nil {
			return err
		}
		if err := st.Rename(s.ID); err != nil {
			return err
		}
		return errors.New("fail after rename")
	})
	if err == nil {
		t.Fatal("update did not fail")
	}
	st.Close(ctx)
	// The failed transaction did not use up ID 1, so Close leaves the
	// renamed directory to Recover, which checks that no record names it.
	if _, err := dirs.Recover(ctx, ms); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(filepath.Dir(dirs.Path("1")))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Errorf("snapshots directory keeps %d entries after a failed create", len(entries))
	}
}

package unpack

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/strata-containers/strata/errdefs"
	"github.com/strata-containers/strata/internal/testutil"
	"github.com/strata-containers/strata/snapshot"
	"github.com/strata-containers/strata/snapshot/native"
	"github.com/strata-containers/strata/snapshot/overlay"
)

func pinSnapshotters(t *testing.T) map[string]func(root string) (snapshot.Snapshotter, error) {
	t.Helper()
	out := map[string]func(string) (snapshot.Snapshotter, error){
		"native": func(root string) (snapshot.Snapshotter, error) { return native.New(root) },
	}
	if os.Geteuid() == 0 {
		out["overlayfs"] = func(root string) (snapshot.Snapshotter, error) { return overlay.New(root) }
	}
	return out
}

// commitWithFile commits a snapshot name on nothing, holding one file.
func commitWithFile(t *testing.T, sn snapshot.Snapshotter, name string) {
	t.Helper()
	ctx := context.Background()
	mounts, err := sn.Prepare(ctx, "prep-"+name, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(mounts[0].Source, "file"), make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := sn.Commit(ctx, name, "prep-"+name); err != nil {
		t.Fatal(err)
	}
}

// TestRemoveRacingPrepare runs Remove of a parent against Prepare of a
// child on it. Exactly one may win: either the child exists on a parent
// that exists, or the parent is gone and the Prepare failed with
// ErrNotFound.
func TestRemoveRacingPrepare(t *testing.T) {
	for name, newSn := range pinSnapshotters(t) {
		t.Run(name, func(t *testing.T) {
			sn, err := newSn(testutil.TempDir(t))
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			for i := range 20 {
				parent, child := fmt.Sprintf("p%d", i), fmt.Sprintf("c%d", i)
				commitWithFile(t, sn, parent)
				var wg sync.WaitGroup
				var prepErr, rmErr error
				wg.Add(2)
				go func() {
					defer wg.Done()
					_, prepErr = sn.Prepare(ctx, child, parent)
				}()
				go func() {
					defer wg.Done()
					rmErr = sn.Remove(ctx, parent)
				}()
				wg.Wait()

				_, childErr := sn.Stat(ctx, child)
				_, parentErr := sn.Stat(ctx, parent)
				switch {
				case prepErr == nil && rmErr == nil:
					t.Fatalf("round %d: both Prepare and Remove succeeded", i)
				case prepErr == nil:
					if !errors.Is(rmErr, errdefs.ErrFailedPrecondition) {
						t.Errorf("round %d: Remove lost with %v, want ErrFailedPrecondition", i, rmErr)
					}
					if childErr != nil || parentErr != nil {
						t.Errorf("round %d: child %v, parent %v; want both present", i, childErr, parentErr)
					}
				case rmErr == nil:
					if !errors.Is(prepErr, errdefs.ErrNotFound) {
						t.Errorf("round %d: Prepare lost with %v, want ErrNotFound", i, prepErr)
					}
					if !errors.Is(childErr, errdefs.ErrNotFound) || !errors.Is(parentErr, errdefs.ErrNotFound) {
						t.Errorf("round %d: child %v, parent %v; want both gone", i, childErr, parentErr)
					}
				default:
					t.Errorf("round %d: Prepare %v and Remove %v both failed", i, prepErr, rmErr)
				}
			}
		})
	}
}

// TestRemoveLeftoversSkipsHeldChain leaves two extraction snapshots and
// holds the lock of one chain: only the other is a leftover.
func TestRemoveLeftoversSkipsHeldChain(t *testing.T) {
	sn, err := native.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	locker, err := NewFileLocker(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, chain := range []string{"sha256:aa", "sha256:bb"} {
		labels := snapshot.WithLabels(map[string]string{LabelExtractFor: chain})
		if _, err := sn.Prepare(ctx, "extract-1 "+chain, "", labels); err != nil {
			t.Fatal(err)
		}
	}
	unlock, err := locker.Lock(ctx, "sha256:aa")
	if err != nil {
		t.Fatal(err)
	}
	removed, err := RemoveLeftovers(ctx, sn, locker.(TryLocker))
	unlock()
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 1 || removed[0] != "extract-1 sha256:bb" {
		t.Errorf("removed %q, want only the extraction of the free chain", removed)
	}
	if _, err := sn.Stat(ctx, "extract-1 sha256:aa"); err != nil {
		t.Errorf("extraction of the held chain: %v, want it kept", err)
	}
}

// TestRemoveLeftoversChildFirst leaves an extraction snapshot prepared on
// another one, as a pipelined unpacker that died does. Removing the
// leftovers of the lower chain removes the child first.
func TestRemoveLeftoversChildFirst(t *testing.T) {
	testutil.RequiresOverlay(t)
	sn, err := overlay.New(testutil.TempDir(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	lower, upper := "extract-1 sha256:aa", "extract-2 sha256:bb"
	labels := func(chain string) snapshot.Opt {
		return snapshot.WithLabels(map[string]string{LabelExtractFor: chain})
	}
	if _, err := sn.Prepare(ctx, lower, "", labels("sha256:aa")); err != nil {
		t.Fatal(err)
	}
	if _, err := sn.PrepareOnActive(ctx, upper, lower, labels("sha256:bb")); err != nil {
		t.Fatal(err)
	}

	if err := removeLeftovers(ctx, sn, "sha256:aa"); err != nil {
		t.Fatalf("remove leftovers: %v", err)
	}
	for _, key := range []string{lower, upper} {
		if _, err := sn.Stat(ctx, key); !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("stat %q after removal: %v, want ErrNotFound", key, err)
		}
	}
}

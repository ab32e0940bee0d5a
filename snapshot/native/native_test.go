package native

import (
	"testing"

	"github.com/strata-containers/strata/snapshot"
	"github.com/strata-containers/strata/snapshot/snapshottest"
)

func TestNative(t *testing.T) {
	snapshottest.Run(t, func(t *testing.T, root string) snapshot.Snapshotter {
		t.Helper()
		sn, err := New(root)
		if err != nil {
			t.Fatalf("new native snapshotter: %v", err)
		}
		return sn
	})
}

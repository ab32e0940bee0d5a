package unpack

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-containers/strata/errdefs"
	"github.com/strata-containers/strata/mount"
	"github.com/strata-containers/strata/snapshot"
	"github.com/strata-containers/strata/snapshot/native"
)

// failApplier fails every Apply, counting the calls.
type failApplier struct{ calls int }

func (a *failApplier) Apply(context.Context, ocispec.Descriptor, []mount.Mount, func(int64)) (digest.Digest, error) {
	a.calls++
	return "", errors.New("apply failed on purpose")
}

// TestApplyLayersRejectsSHA512DiffID checks that a diff ID of another
// algorithm than sha256 is rejected as unsupported before anything is
// prepared, rather than compared with a sha256 digest as a mismatch.
func TestApplyLayersRejectsSHA512DiffID(t *testing.T) {
	sn, err := native.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	diffID := digest.SHA512.FromString("layer")
	blob := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip,
		Digest: digest.FromString("blob"), Size: 4}
	a := &failApplier{}

	_, err = ApplyLayers(context.Background(), sn, a, []Layer{{Blob: blob, DiffID: diffID}})
	if !errors.Is(err, errdefs.ErrUnsupported) {
		t.Fatalf("ApplyLayers error = %v, want errdefs.ErrUnsupported", err)
	}
	if !strings.Contains(err.Error(), diffID.String()) {
		t.Errorf("error %q does not name the diff ID", err)
	}
	if a.calls != 0 {
		t.Errorf("applier called %d times, want 0", a.calls)
	}
	if n := countSnapshots(t, sn); n != 0 {
		t.Errorf("%d snapshots left, want 0", n)
	}
}

// TestApplyLayersRemovesFailedExtraction checks that a failed apply
// leaves no extraction snapshot and commits nothing.
func TestApplyLayersRemovesFailedExtraction(t *testing.T) {
	sn, err := native.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	blob := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip,
		Digest: digest.FromString("blob"), Size: 4}
	a := &failApplier{}

	_, err = ApplyLayers(context.Background(), sn, a,
		[]Layer{{Blob: blob, DiffID: digest.FromString("layer")}})
	if err == nil || !strings.Contains(err.Error(), blob.Digest.String()) {
		t.Fatalf("ApplyLayers error = %v, want one naming layer %s", err, blob.Digest)
	}
	if a.calls != 1 {
		t.Errorf("applier called %d times, want 1", a.calls)
	}
	if n := countSnapshots(t, sn); n != 0 {
		t.Errorf("%d snapshots left after a failed apply, want 0", n)
	}
}

func countSnapshots(t *testing.T, sn snapshot.Snapshotter) int {
	t.Helper()
	n := 0
	err := sn.Walk(context.Background(), func(context.Context, snapshot.Info) error {
		n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

package archive

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/strata-containers/strata/archive/tartest"
	"github.com/strata-containers/strata/internal/layercases"
)

// FuzzApply applies a random set of layers, built by
// layercases.FuzzLayers, in both modes. Nothing may change outside the
// root, both modes must agree on success, and on success the merged
// overlay must equal the native tree.
func FuzzApply(f *testing.F) {
	for _, seed := range layercases.FuzzSeeds {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		requireRoot(t)
		s := newSandbox(t)
		defer s.Check(t)
		var ls [][]byte
		for _, l := range layercases.FuzzLayers(data) {
			ls = append(ls, tartest.Tar(t, l...))
		}
		native, nerr := applyNativeUntil(t, s, ls)
		uppers, oerr := applyOverlayUntil(t, s, ls)
		if (nerr == nil) != (oerr == nil) || nerr != nil && nerr.layer != oerr.layer {
			t.Fatalf("modes disagree: native error %v, overlay error %v", nerr, oerr)
		}
		if nerr != nil {
			return
		}
		compareTrees(t, native, mountLayers(t, s, uppers))
	})
}

// layerError is the error of the first layer of a set that failed.
type layerError struct {
	layer int
	err   error
}

func (e *layerError) Error() string { return fmt.Sprintf("layer %d: %v", e.layer, e.err) }

// applyNativeUntil applies the layers natively up to the first that fails
// and returns that layer's error.
func applyNativeUntil(t *testing.T, s *sandbox, layers [][]byte) (string, *layerError) {
	t.Helper()
	root := newRoot(t, s, "snap-native")
	for i, layer := range layers {
		if _, err := Apply(context.Background(), root, bytes.NewReader(layer)); err != nil {
			return root, &layerError{i, err}
		}
	}
	return root, nil
}

// applyOverlayUntil applies the layers in overlay mode up to the first
// that fails and returns that layer's error.
func applyOverlayUntil(t *testing.T, s *sandbox, layers [][]byte) ([]string, *layerError) {
	t.Helper()
	var uppers []string
	for i, layer := range layers {
		upper := newRoot(t, s, fmt.Sprintf("snap-upper%d", i))
		_, err := Apply(context.Background(), upper, bytes.NewReader(layer),
			WithOverlay(reversed(uppers)))
		uppers = append(uppers, upper)
		if err != nil {
			return uppers, &layerError{i, err}
		}
	}
	return uppers, nil
}

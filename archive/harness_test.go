package archive

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/strata-containers/strata/archive/tartest"
	"github.com/strata-containers/strata/internal/layercases"
)

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("applying owners, devices and trusted xattrs, and mounting overlayfs, need root")
	}
}

type sandbox = layercases.Sandbox

var newSandbox = layercases.NewSandbox

// newRoot creates a snapshot root directory in the sandbox. Every root
// starts with the same mode and times, as a snapshotter's base snapshot
// would, so that trees compare equal.
func newRoot(t *testing.T, s *sandbox, name string) string {
	t.Helper()
	root := s.Path(name)
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	ts := []unix.Timespec{unix.NsecToTimespec(tartest.DefaultModTime.UnixNano()),
		unix.NsecToTimespec(tartest.DefaultModTime.UnixNano())}
	if err := unix.UtimesNano(root, ts); err != nil {
		t.Fatal(err)
	}
	return root
}

// applyNative applies the layers in order into one plain directory, named
// name in the sandbox, and returns it with the error of the last layer.
// Earlier layers must apply.
func applyNative(t *testing.T, s *sandbox, layers [][]byte, name string, opts ...ApplyOpt) (string, error) {
	t.Helper()
	root := newRoot(t, s, name)
	for i, layer := range layers {
		_, err := Apply(context.Background(), root, bytes.NewReader(layer), opts...)
		if i == len(layers)-1 {
			return root, err
		}
		if err != nil {
			t.Fatalf("apply layer %d natively: %v", i, err)
		}
	}
	return root, nil
}

// applyOverlay applies layer i into its own upper directory over the
// uppers of layers 0..i-1, as an overlay snapshotter does, and returns the
// uppers with the error of the last layer.
func applyOverlay(t *testing.T, s *sandbox, layers [][]byte) ([]string, error) {
	t.Helper()
	var uppers []string
	for i, layer := range layers {
		upper := newRoot(t, s, fmt.Sprintf("snap-upper%d", i))
		_, err := Apply(context.Background(), upper, bytes.NewReader(layer),
			WithOverlay(reversed(uppers)))
		uppers = append(uppers, upper)
		if i == len(layers)-1 {
			return uppers, err
		}
		if err != nil {
			t.Fatalf("apply layer %d in overlay mode: %v", i, err)
		}
	}
	return uppers, nil
}

// reversed returns the uppers topmost first, the order of lowerdir=.
func reversed(uppers []string) []string {
	lowers := []string{}
	for j := len(uppers) - 1; j >= 0; j-- {
		lowers = append(lowers, uppers[j])
	}
	return lowers
}

// mountLayers mounts the uppers read-only as the lower layers of an
// overlayfs and returns the merged directory, unmounted at cleanup.
func mountLayers(t *testing.T, s *sandbox, uppers []string) string {
	t.Helper()
	merged := s.Path("snap-merged")
	if err := os.Mkdir(merged, 0o755); err != nil {
		t.Fatal(err)
	}
	lowers := reversed(uppers)
	if len(lowers) == 1 {
		// overlayfs needs two lower layers when it has no upper.
		empty := newRoot(t, s, "snap-empty")
		lowers = append(lowers, empty)
	}
	opts := "lowerdir=" + strings.Join(lowers, ":")
	if err := unix.Mount("overlay", merged, "overlay", unix.MS_RDONLY, opts); err != nil {
		t.Fatalf("mount overlay %s: %v", opts, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(merged, 0); err != nil {
			t.Errorf("unmount %s: %v", merged, err)
		}
	})
	return merged
}

func tarLayers(t *testing.T, s *sandbox, tc layercases.Case) [][]byte {
	t.Helper()
	ls := tc.Layers(t, s)
	out := make([][]byte, len(ls))
	for i, l := range ls {
		out[i] = tartest.Tar(t, l...)
	}
	return out
}

// wantErrorNames checks that err quotes the entry name p.
func wantErrorNames(t *testing.T, mode string, err error, p string) {
	t.Helper()
	if p == "" || err == nil {
		return
	}
	if q := fmt.Sprintf("%q", p); !strings.Contains(err.Error(), q) {
		t.Errorf("%s apply: error %q does not name the entry %s", mode, err, q)
	}
}

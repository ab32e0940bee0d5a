package remote_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/opencontainers/go-digest"

	"github.com/strata-containers/strata/errdefs"
	"github.com/strata-containers/strata/identity"
	"github.com/strata-containers/strata/internal/testimages"
	"github.com/strata-containers/strata/oci"
	"github.com/strata-containers/strata/remote"
	"github.com/strata-containers/strata/unpack"
)

func TestPullOCIAndDockerSchema2(t *testing.T) {
	for _, tc := range []struct {
		name      string
		args      []string
		mediaType string
	}{
		{"oci", nil, "application/vnd.oci.image.manifest.v1+json"},
		{"docker", []string{"--format", "v2s2"}, oci.MediaTypeDockerManifest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, ref := pushed(t, "busybox", tc.args...)
			s := openStore(t)
			ctx := context.Background()

			res := mustPull(t, s, ref)
			if res.Image.Name != ref {
				t.Errorf("image name = %q, want %q", res.Image.Name, ref)
			}
			if res.Image.Target.MediaType != tc.mediaType {
				t.Errorf("target media type = %q, want %q", res.Image.Target.MediaType, tc.mediaType)
			}
			got, err := s.Images().Get(ctx, ref)
			if err != nil {
				t.Fatal(err)
			}
			if got.Target.Digest != res.Image.Target.Digest {
				t.Errorf("stored target %s, result %s", got.Target.Digest, res.Image.Target.Digest)
			}
			want := res.Resolved.Manifest.Config.Size
			for _, l := range res.Resolved.Layers {
				want += l.Descriptor.Size
				if _, err := s.Content().Info(ctx, l.Descriptor.Digest); err != nil {
					t.Errorf("layer %s not stored: %v", l.Descriptor.Digest, err)
				}
			}
			if res.Transferred != want {
				t.Errorf("transferred %d bytes, want config and layers: %d", res.Transferred, want)
			}

			// The pulled image unpacks like an imported one.
			chainID, err := s.Unpack(ctx, ref)
			if err != nil {
				t.Fatal(err)
			}
			if want := identity.ChainID(res.Resolved.DiffIDs()); chainID != want {
				t.Errorf("unpacked chain ID %s, want %s", chainID, want)
			}

			again := mustPull(t, s, ref)
			if again.Transferred != 0 {
				t.Errorf("second pull transferred %d bytes, want 0", again.Transferred)
			}
		})
	}
}

func TestPullOCIDigestMatchesLayout(t *testing.T) {
	_, ref := pushed(t, "busybox")
	desc, _ := layoutManifest(t, testimages.Path(t, "busybox"))
	s := openStore(t)
	byDigest := strings.TrimSuffix(ref, ":1") + "@" + desc.Digest.String()
	res := mustPull(t, s, byDigest)
	if res.Image.Target.Digest != desc.Digest {
		t.Errorf("pulled %s, want the layout's manifest %s", res.Image.Target.Digest, desc.Digest)
	}
	if res.Image.Name != byDigest {
		t.Errorf("image name = %q, want %q", res.Image.Name, byDigest)
	}

	wrong := strings.TrimSuffix(ref, ":1") + "@" + digest.FromString("other").String()
	_, err := pull(t, s, wrong)
	if !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("pull of an unknown digest: error %v, want ErrNotFound", err)
	}
}

func TestPullNotFound(t *testing.T) {
	reg, _ := pushed(t, "busybox")
	s := openStore(t)
	for _, ref := range []string{reg.Host + "/x/busybox:nope", reg.Host + "/x/missing:1"} {
		_, err := pull(t, s, ref)
		if !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("pull %s: error %v, want ErrNotFound", ref, err)
			continue
		}
		if !strings.Contains(err.Error(), ref) {
			t.Errorf("error %q does not name %s", err, ref)
		}
	}
}

func TestPullUnpackDebian(t *testing.T) {
	_, ref := pushed(t, "debian")
	s := openOverlayStore(t)
	ctx := context.Background()
	sn, err := s.Snapshotter(ctx)
	if err != nil {
		t.Fatal(err)
	}
	locker, err := unpack.NewFileLocker(s.Root() + "/locks")
	if err != nil {
		t.Fatal(err)
	}

	var events []remote.Progress
	res := mustPull(t, s, ref, remote.WithMaxConcurrentDownloads(2),
		remote.WithUnpack(sn, unpack.WithLocker(locker)),
		remote.WithProgress(func(p remote.Progress) { events = append(events, p) }))
	if want := identity.ChainID(res.Resolved.DiffIDs()); res.ChainID != want {
		t.Errorf("chain ID %s, want %s", res.ChainID, want)
	}
	if _, err := sn.Stat(ctx, res.ChainID.String()); err != nil {
		t.Errorf("top snapshot: %v", err)
	}

	// Each layer goes through the states in order, ending done.
	last := map[int]remote.State{}
	for _, e := range events {
		if e.State < last[e.Index] {
			t.Errorf("layer %d went from %v back to %v", e.Index, last[e.Index], e.State)
		}
		last[e.Index] = e.State
	}
	want := map[int]remote.State{}
	for i := range res.Resolved.Layers {
		want[i] = remote.StateDone
	}
	if diff := cmp.Diff(want, last); diff != "" {
		t.Errorf("final layer states (-want +got):\n%s", diff)
	}
}

package remote_test

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/strata-containers/strata/errdefs"
	"github.com/strata-containers/strata/remote"
)

func TestParseReference(t *testing.T) {
	const dgst = "sha256:4a081c23fa9f9df466a0d28f1b2dfd785442c158ae0a2f1750ee1f5275bb2393"
	type parsed struct {
		String, Registry, Repository, Tag, Digest string
	}
	for _, tc := range []struct {
		in   string
		want parsed
	}{
		{"alpine", parsed{"docker.io/library/alpine:latest", "docker.io", "library/alpine", "latest", ""}},
		{"library/alpine:3.20", parsed{"docker.io/library/alpine:3.20", "docker.io", "library/alpine", "3.20", ""}},
		{"docker.io/alpine", parsed{"docker.io/library/alpine:latest", "docker.io", "library/alpine", "latest", ""}},
		{"index.docker.io/org/app:v1", parsed{"docker.io/org/app:v1", "docker.io", "org/app", "v1", ""}},
		{"ghcr.io/org/app@" + dgst, parsed{"ghcr.io/org/app@" + dgst, "ghcr.io", "org/app", "", dgst}},
		{"ghcr.io/org/app:v2@" + dgst, parsed{"ghcr.io/org/app:v2@" + dgst, "ghcr.io", "org/app", "v2", dgst}},
		{"127.0.0.1:5000/x/y:tag", parsed{"127.0.0.1:5000/x/y:tag", "127.0.0.1:5000", "x/y", "tag", ""}},
		{"127.0.0.1:5000/x/y", parsed{"127.0.0.1:5000/x/y:latest", "127.0.0.1:5000", "x/y", "latest", ""}},
		{"localhost/app", parsed{"localhost/app:latest", "localhost", "app", "latest", ""}},
		{"[::1]:5000/x:1", parsed{"[::1]:5000/x:1", "[::1]:5000", "x", "1", ""}},
	} {
		ref, err := remote.ParseReference(tc.in)
		if err != nil {
			t.Errorf("ParseReference(%q): %v", tc.in, err)
			continue
		}
		got := parsed{ref.String(), ref.Registry(), ref.Repository(), ref.Tag(), ref.Digest().String()}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("ParseReference(%q) (-want +got):\n%s", tc.in, diff)
		}
	}
}

func TestParseReferenceInvalid(t *testing.T) {
	for _, in := range []string{
		"", "Alpine", "alpine:", "alpine@sha256:short", "alpine:bad tag", "a//b", "x/-y", "a/b/",
		"alpine@@sha256:x",
	} {
		if _, err := remote.ParseReference(in); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("ParseReference(%q) error = %v, want ErrInvalidArgument", in, err)
		}
	}
}

func TestNormalizeName(t *testing.T) {
	for in, want := range map[string]string{
		"alpine":          "docker.io/library/alpine:latest",
		"busybox:latest":  "docker.io/library/busybox:latest",
		"not a reference": "not a reference",
	} {
		if got := remote.NormalizeName(in); got != want {
			t.Errorf("NormalizeName(%q) = %q, want %q", in, got, want)
		}
	}
}

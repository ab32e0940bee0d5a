package remote

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/opencontainers/go-digest"

	"github.com/strata-containers/strata/errdefs"
)

// DockerHub is the registry that references without a registry name point
// to, in the spelling stored image names use. Requests go to
// index.docker.io, Docker Hub's API host.
const DockerHub = "docker.io"

// Reference is a parsed image reference: a registry, a repository, and a
// tag, a digest or both.
type Reference struct {
	repo   name.Repository
	tag    string
	digest digest.Digest
}

// ParseReference parses an image reference as people type it and fills in
// Docker Hub's defaults: "alpine" is docker.io/library/alpine:latest, and
// "org/app" is docker.io/org/app:latest. A first component that contains a
// '.' or a ':', or is "localhost", names the registry, as in
// "127.0.0.1:5000/x/y:tag" or "ghcr.io/org/app@sha256:...". A reference
// with a digest and no tag keeps no tag. ParseReference only parses; it
// never connects. A malformed reference returns an error wrapping
// errdefs.ErrInvalidArgument.
func ParseReference(s string) (Reference, error) {
	if s == "" {
		return Reference{}, fmt.Errorf("parse reference: empty reference: %w", errdefs.ErrInvalidArgument)
	}
	base, dgst, hasDigest := strings.Cut(s, "@")
	var ref Reference
	if hasDigest {
		d, err := digest.Parse(dgst)
		if err != nil {
			return Reference{}, fmt.Errorf("parse reference %q: invalid digest: %w: %w",
				s, errdefs.ErrInvalidArgument, err)
		}
		ref.digest = d
	}

	// name.NewTag adds "latest" to a base without a tag, so a base without
	// one is parsed as a repository when a digest is present.
	if hasDigest && !hasTag(base) {
		repo, err := name.NewRepository(base)
		if err != nil {
			return Reference{}, fmt.Errorf("parse reference %q: %w: %w", s, errdefs.ErrInvalidArgument, err)
		}
		ref.repo = repo
		return ref, checkRepository(s, repo.RepositoryStr())
	}
	tag, err := name.NewTag(base)
	if err != nil {
		return Reference{}, fmt.Errorf("parse reference %q: %w: %w", s, errdefs.ErrInvalidArgument, err)
	}
	ref.repo, ref.tag = tag.Context(), tag.TagStr()
	return ref, checkRepository(s, ref.repo.RepositoryStr())
}

// pathComponent is the grammar of one component of a repository path in
// the OCI distribution spec, which go-containerregistry checks only
// loosely.
var pathComponent = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$`)

func checkRepository(s, repo string) error {
	for _, c := range strings.Split(repo, "/") {
		if !pathComponent.MatchString(c) {
			return fmt.Errorf("parse reference %q: repository path component %q is not lower-case "+
				"letters and digits joined by '.', '_', '__' or '-': %w", s, c, errdefs.ErrInvalidArgument)
		}
	}
	return nil
}

// hasTag reports whether the last path component of base carries a tag.
// A ':' before the first '/' is a registry's port.
func hasTag(base string) bool {
	last := base[strings.LastIndex(base, "/")+1:]
	return strings.Contains(last, ":")
}

// String returns the full reference, the name under which a pulled image
// is stored: registry, repository, then ":tag", "@digest" or both, for
// example "docker.io/library/alpine:3.20".
func (r Reference) String() string {
	s := r.Registry() + "/" + r.Repository()
	if r.tag != "" {
		s += ":" + r.tag
	}
	if r.digest != "" {
		s += "@" + r.digest.String()
	}
	return s
}

// Registry returns the registry's name, "docker.io" for Docker Hub.
func (r Reference) Registry() string {
	if reg := r.repo.RegistryStr(); reg != name.DefaultRegistry {
		return reg
	}
	return DockerHub
}

// Repository returns the repository path, such as "library/alpine".
func (r Reference) Repository() string { return r.repo.RepositoryStr() }

// Tag returns the tag, or "" for a reference by digest only.
func (r Reference) Tag() string { return r.tag }

// Digest returns the manifest digest the reference names, or "".
func (r Reference) Digest() digest.Digest { return r.digest }

// identifier returns what goes after /manifests/ in the first request: the
// digest when there is one, because it names the content exactly.
func (r Reference) identifier() string {
	if r.digest != "" {
		return r.digest.String()
	}
	return r.tag
}

// NormalizeName returns the name under which [Pull] stores the image s:
// its full reference when s parses as one, and s unchanged otherwise. It
// lets other commands accept "alpine" for "docker.io/library/alpine:latest".
func NormalizeName(s string) string {
	ref, err := ParseReference(s)
	if err != nil {
		return s
	}
	return ref.String()
}

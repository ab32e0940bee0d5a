// Package oci decodes and checks OCI and Docker image manifests, indexes
// and configs, matches platforms, and resolves an image reference to the
// manifest, config and layers for one platform.
//
// Docker's v2 schema 2 media types are accepted beside the OCI ones, since
// their JSON is the same shape. Docker's schema 1 manifests are rejected
// with errdefs.ErrUnsupported.
package oci

import (
	"fmt"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-containers/strata/errdefs"
)

// Docker's media types for the v2 schema 2 image format.
const (
	MediaTypeDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	MediaTypeDockerConfig       = "application/vnd.docker.container.image.v1+json"
	MediaTypeDockerLayer        = "application/vnd.docker.image.rootfs.diff.tar"
	MediaTypeDockerLayerGzip    = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	MediaTypeDockerLayerZstd    = "application/vnd.docker.image.rootfs.diff.tar.zstd"
	MediaTypeDockerLayerForeign = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"

	// MediaTypeDockerSchema1 and MediaTypeDockerSchema1Signed name Docker's
	// schema 1 manifests, which strata does not read.
	MediaTypeDockerSchema1       = "application/vnd.docker.distribution.manifest.v1+json"
	MediaTypeDockerSchema1Signed = "application/vnd.docker.distribution.manifest.v1+prettyjws"
)

// The OCI non-distributable layer types. The image spec deprecated them in
// v1.1.0, but images built before still use them.
const (
	MediaTypeLayerNonDistributable     = "application/vnd.oci.image.layer.nondistributable.v1.tar"
	MediaTypeLayerNonDistributableGzip = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
	MediaTypeLayerNonDistributableZstd = "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"
)

// encryptedSuffix marks a layer encrypted with the ocicrypt scheme.
const encryptedSuffix = "+encrypted"

// Kind is the role a media type names.
type Kind int

// The kinds of blob an image is made of.
const (
	KindUnknown Kind = iota
	KindIndex
	KindManifest
	KindConfig
	KindLayer
)

func (k Kind) String() string {
	switch k {
	case KindIndex:
		return "index"
	case KindManifest:
		return "manifest"
	case KindConfig:
		return "config"
	case KindLayer:
		return "layer"
	}
	return "unknown"
}

// Classify returns the kind of blob mediaType names. Encrypted and
// non-distributable layers are KindLayer; see [ParseLayerMediaType] for
// their details.
func Classify(mediaType string) Kind {
	switch mediaType {
	case ocispec.MediaTypeImageIndex, MediaTypeDockerManifestList:
		return KindIndex
	case ocispec.MediaTypeImageManifest, MediaTypeDockerManifest:
		return KindManifest
	case ocispec.MediaTypeImageConfig, MediaTypeDockerConfig:
		return KindConfig
	}
	if _, err := ParseLayerMediaType(mediaType); err == nil {
		return KindLayer
	}
	return KindUnknown
}

// IsSchema1 reports whether mediaType names a Docker schema 1 manifest.
func IsSchema1(mediaType string) bool {
	return mediaType == MediaTypeDockerSchema1 || mediaType == MediaTypeDockerSchema1Signed
}

// Compression is the compression algorithm of a layer's tar stream.
type Compression int

// The compressions layer media types name.
const (
	Uncompressed Compression = iota
	Gzip
	Zstd
)

func (c Compression) String() string {
	switch c {
	case Gzip:
		return "gzip"
	case Zstd:
		return "zstd"
	}
	return "uncompressed"
}

// LayerFormat describes a layer media type.
type LayerFormat struct {
	// Compression of the layer blob. The diff ID is the digest of the
	// stream after decompression.
	Compression Compression
	// NonDistributable marks a foreign layer, which registries may not
	// serve and which a content store may therefore not hold.
	NonDistributable bool
	// Encrypted marks an ocicrypt layer ("+encrypted"), which strata cannot
	// unpack.
	Encrypted bool
}

// ParseLayerMediaType returns the format of the layer media type mt. It
// returns an error wrapping errdefs.ErrUnsupported when mt is not a layer
// type strata reads.
func ParseLayerMediaType(mt string) (LayerFormat, error) {
	var f LayerFormat
	base := mt
	if strings.HasSuffix(base, encryptedSuffix) {
		f.Encrypted = true
		base = strings.TrimSuffix(base, encryptedSuffix)
	}
	switch base {
	case ocispec.MediaTypeImageLayer, MediaTypeDockerLayer:
	case ocispec.MediaTypeImageLayerGzip, MediaTypeDockerLayerGzip:
		f.Compression = Gzip
	case ocispec.MediaTypeImageLayerZstd, MediaTypeDockerLayerZstd:
		f.Compression = Zstd
	case MediaTypeLayerNonDistributable:
		f.NonDistributable = true
	case MediaTypeLayerNonDistributableGzip, MediaTypeDockerLayerForeign:
		f.NonDistributable, f.Compression = true, Gzip
	case MediaTypeLayerNonDistributableZstd:
		f.NonDistributable, f.Compression = true, Zstd
	default:
		return LayerFormat{}, fmt.Errorf("parse layer media type %q: %w", mt, errdefs.ErrUnsupported)
	}
	return f, nil
}

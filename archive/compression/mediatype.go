package compression

import (
	"fmt"
	"strings"

	"github.com/strata-containers/strata/errdefs"
)

// Layer media types defined by the OCI image spec and by Docker's image
// manifest v2 schema 2.
const (
	MediaTypeOCILayer     = "application/vnd.oci.image.layer.v1.tar"
	MediaTypeOCILayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip"
	MediaTypeOCILayerZstd = "application/vnd.oci.image.layer.v1.tar+zstd"

	MediaTypeOCINondistributable     = "application/vnd.oci.image.layer.nondistributable.v1.tar"
	MediaTypeOCINondistributableGzip = MediaTypeOCINondistributable + "+gzip"
	MediaTypeOCINondistributableZstd = MediaTypeOCINondistributable + "+zstd"

	MediaTypeDockerLayer        = "application/vnd.docker.image.rootfs.diff.tar"
	MediaTypeDockerLayerGzip    = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	MediaTypeDockerLayerZstd    = "application/vnd.docker.image.rootfs.diff.tar.zstd"
	MediaTypeDockerForeignLayer = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
)

var layerKinds = map[string]Kind{
	MediaTypeOCILayer:                Uncompressed,
	MediaTypeOCILayerGzip:            Gzip,
	MediaTypeOCILayerZstd:            Zstd,
	MediaTypeOCINondistributable:     Uncompressed,
	MediaTypeOCINondistributableGzip: Gzip,
	MediaTypeOCINondistributableZstd: Zstd,
	MediaTypeDockerLayer:             Uncompressed,
	MediaTypeDockerLayerGzip:         Gzip,
	MediaTypeDockerLayerZstd:         Zstd,
	MediaTypeDockerForeignLayer:      Gzip,
}

// FromMediaType returns the compression that a layer media type declares.
// Encrypted layers (a "+encrypted" suffix) and media types that are not
// layer types fail with [errdefs.ErrUnsupported].
func FromMediaType(mediaType string) (Kind, error) {
	if strings.HasSuffix(mediaType, "+encrypted") {
		return Uncompressed, fmt.Errorf("layer media type %q: encrypted layers: %w",
			mediaType, errdefs.ErrUnsupported)
	}
	kind, ok := layerKinds[mediaType]
	if !ok {
		return Uncompressed, fmt.Errorf("layer media type %q: %w",
			mediaType, errdefs.ErrUnsupported)
	}
	return kind, nil
}

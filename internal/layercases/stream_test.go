package layercases

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/strata-containers/strata/archive/compression"
	"github.com/strata-containers/strata/archive/tartest"
	"github.com/strata-containers/strata/errdefs"
	"github.com/strata-containers/strata/internal/fstree"
	"github.com/strata-containers/strata/internal/testutil"
)

// streamLayer is the layer the stream tests compress, cut and mislabel:
// 100 KiB of incompressible data, then a small file.
func streamLayer(t *testing.T) []byte {
	big := make([]byte, 100<<10)
	for i := range big {
		big[i] = byte(i*7 + i/251)
	}
	sum := sha256.Sum256(big)
	return tartest.Tar(t, dir("a/"), file("a/big", string(sum[:])+string(big)), file("a/small", "s"))
}

// TestApplyLayersRejectsStreams applies a good parent layer and then a
// broken blob through unpack.ApplyLayers on both snapshotters: the blob
// must be rejected with its class, naming its digest, with nothing
// committed for it and the parent unchanged.
func TestApplyLayersRejectsStreams(t *testing.T) {
	testutil.RequiresOverlay(t)
	plain := streamLayer(t)
	gz := tartest.Gzip(t, plain)
	zs := tartest.Zstd(t, plain)
	diffID := digest.FromBytes(plain)
	wrongDiffID := digest.Digest(fmt.Sprintf("sha256:%x", sha256.Sum256([]byte("other"))))
	// The tar cut right after a/small's data block ends at a block
	// boundary, which archive/tar reads as a clean end of the archive.
	cutAtBlock := plain[:len(plain)-1024]

	for _, tc := range []struct {
		name string
		blob blob
		want error
	}{
		{"gzip cut in data", blob{gz[:len(gz)/2], compression.MediaTypeOCILayerGzip, diffID},
			errdefs.ErrInvalidLayer},
		{"gzip without trailer", blob{gz[:len(gz)-8], compression.MediaTypeOCILayerGzip, diffID},
			errdefs.ErrInvalidLayer},
		{"zstd cut", blob{zs[:len(zs)-10], compression.MediaTypeOCILayerZstd, diffID},
			errdefs.ErrInvalidLayer},
		{"tar cut at block boundary", blob{cutAtBlock, compression.MediaTypeOCILayer, diffID},
			errdefs.ErrDigestMismatch},
		{"gzip then a lone magic byte", blob{append(bytes.Clone(gz), 0x1f),
			compression.MediaTypeOCILayerGzip, diffID}, errdefs.ErrInvalidLayer},
		{"random bytes", blob{[]byte{1, 2, 3, 4, 5, 6, 7}, compression.MediaTypeOCILayerGzip,
			diffID}, errdefs.ErrInvalidLayer},
		{"wrong diff ID", blob{gz, compression.MediaTypeOCILayerGzip, wrongDiffID},
			errdefs.ErrDigestMismatch},
		{"diff ID of compressed blob", blob{gz, compression.MediaTypeOCILayerGzip,
			digest.FromBytes(gz)}, errdefs.ErrDigestMismatch},
		{"bzip2 media type", blob{gz, "application/vnd.oci.image.layer.v1.tar+bzip2", diffID},
			errdefs.ErrUnsupported},
		{"encrypted media type", blob{gz, compression.MediaTypeOCILayerGzip + "+encrypted",
			diffID}, errdefs.ErrUnsupported},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := NewSandbox(t)
			defer s.Check(t)
			parent := gzipBlobs(t, [][]byte{tartest.Tar(t, file("parent", "p"))})
			for _, k := range snapshotters {
				checkRejected(t, s, newEnv(t, s, k.name), append(parent, tc.blob), tc.want, "", nil)
			}
		})
	}
}

// TestApplyLayersAcceptsStreams applies blobs whose compression, media
// type or trailer is unusual but valid, and checks that both snapshotters
// commit the same tree.
func TestApplyLayersAcceptsStreams(t *testing.T) {
	testutil.RequiresOverlay(t)
	plain := streamLayer(t)
	padded := append(bytes.Clone(plain), make([]byte, 10240-len(plain)%10240)...)
	junk := append(bytes.Clone(plain), "JUNKJUNK"...)
	half := len(plain) / 2
	twoMembers := append(tartest.Gzip(t, plain[:half]), tartest.Gzip(t, plain[half:])...)
	diffID := digest.FromBytes(plain)

	for _, tc := range []struct {
		name string
		blob blob
	}{
		{"gzip labelled tar", blob{tartest.Gzip(t, plain), compression.MediaTypeOCILayer, diffID}},
		{"zstd labelled gzip", blob{tartest.Zstd(t, plain), compression.MediaTypeOCILayerGzip,
			diffID}},
		{"tar labelled docker gzip", blob{plain, compression.MediaTypeDockerLayerGzip, diffID}},
		{"zero padded tar", blob{padded, compression.MediaTypeOCILayer, digest.FromBytes(padded)}},
		{"junk after tar end", blob{junk, compression.MediaTypeOCILayer, digest.FromBytes(junk)}},
		{"gzip with zero padding", blob{append(tartest.Gzip(t, plain), make([]byte, 16)...),
			compression.MediaTypeOCILayerGzip, diffID}},
		{"two gzip members", blob{twoMembers, compression.MediaTypeOCILayerGzip, diffID}},
		{"gzip then junk", blob{append(tartest.Gzip(t, plain), "JUNK"...),
			compression.MediaTypeOCILayerGzip, diffID}},
		{"empty blob", blob{nil, compression.MediaTypeOCILayer, digest.FromBytes(nil)}},
		{"zero blocks only", blob{make([]byte, 1024), compression.MediaTypeOCILayer,
			digest.FromBytes(make([]byte, 1024))}},
		{"gzip of nothing", blob{tartest.Gzip(t, nil), compression.MediaTypeOCILayerGzip,
			digest.FromBytes(nil)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := NewSandbox(t)
			defer s.Check(t)
			parent := gzipBlobs(t, [][]byte{tartest.Tar(t, dir("./", mtime(5)), file("p", "p"))})
			trees := map[string][]fstree.Entry{}
			for _, k := range snapshotters {
				e := newEnv(t, s, k.name)
				layers := e.ingest(t, append(parent, tc.blob))
				chain, err := e.unpack(layers)
				if err != nil {
					t.Fatalf("%s: unpack: %v", k.name, err)
				}
				trees[k.name] = walk(t, e.mountView(t, s, chain))
				e.wantSnapshots(t, layers, len(layers))
			}
			compareSnapshotters(t, trees, true)
		})
	}
}

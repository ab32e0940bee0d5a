package archive

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/strata-containers/strata/archive/compression"
	"github.com/strata-containers/strata/archive/tartest"
	"github.com/strata-containers/strata/errdefs"
)

func applyBytes(t *testing.T, b []byte, opts ...ApplyOpt) (string, Result, error) {
	t.Helper()
	root := t.TempDir()
	res, err := Apply(context.Background(), root, bytes.NewReader(b), opts...)
	return root, res, err
}

func sha256Digest(b []byte) digest.Digest {
	return digest.NewDigestFromBytes(digest.SHA256, func() []byte { h := sha256.Sum256(b); return h[:] }())
}

func bigLayer(t *testing.T) []byte {
	t.Helper()
	big := make([]byte, 100<<10)
	if _, err := rand.Read(big); err != nil {
		t.Fatal(err)
	}
	return tartest.Tar(t, dir("a/"), file("a/big", string(big)), file("a/small", "s"))
}

func TestApplyCompression(t *testing.T) {
	requireRoot(t)
	plain := tartest.Tar(t, dir("a/"), file("a/f", "x"))
	for _, tc := range []struct {
		name      string
		blob      []byte
		mediaType string
		want      compression.Kind
	}{
		{"plain", plain, "", compression.Uncompressed},
		{"gzip", tartest.Gzip(t, plain), "", compression.Gzip},
		{"zstd", tartest.Zstd(t, plain), "", compression.Zstd},
		{"plain labelled gzip", plain, compression.MediaTypeOCILayerGzip, compression.Uncompressed},
		{"gzip labelled tar", tartest.Gzip(t, plain), compression.MediaTypeOCILayer, compression.Gzip},
		{"zstd labelled gzip", tartest.Zstd(t, plain), compression.MediaTypeOCILayerGzip, compression.Zstd},
		{"docker gzip", plain, compression.MediaTypeDockerLayerGzip, compression.Uncompressed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var opts []ApplyOpt
			if tc.mediaType != "" {
				opts = append(opts, WithMediaType(tc.mediaType))
			}
			root, res, err := applyBytes(t, tc.blob, opts...)
			if err != nil {
				t.Fatalf("apply: %v", err)
			}
			if res.Compression != tc.want {
				t.Errorf("compression %v, want %v", res.Compression, tc.want)
			}
			if want := sha256Digest(plain); res.DiffID != want {
				t.Errorf("diff ID %s, want %s", res.DiffID, want)
			}
			if res.Size != int64(len(plain)) {
				t.Errorf("size %d, want %d", res.Size, len(plain))
			}
			if res.Entries != 2 {
				t.Errorf("entries %d, want 2", res.Entries)
			}
			wantFile(t, root, "a/f", "x")
		})
	}
}

func TestApplyMediaType(t *testing.T) {
	plain := tartest.Tar(t, file("f", ""))
	for _, mt := range []string{
		"application/vnd.oci.image.layer.v1.tar+bzip2",
		"application/vnd.oci.image.layer.v1.tar+gzip+encrypted",
		"application/vnd.oci.image.config.v1+json",
	} {
		_, _, err := applyBytes(t, plain, WithMediaType(mt))
		if !errors.Is(err, errdefs.ErrUnsupported) {
			t.Errorf("media type %s: error %v, want %v", mt, err, errdefs.ErrUnsupported)
		}
	}
}

func TestApplyTruncated(t *testing.T) {
	requireRoot(t)
	plain := bigLayer(t)
	gz := tartest.Gzip(t, plain)
	zs := tartest.Zstd(t, plain)
	crcFlipped := bytes.Clone(gz)
	crcFlipped[len(crcFlipped)-5] ^= 0xff

	for _, tc := range []struct {
		name string
		blob []byte
	}{
		{"gzip cut in data", gz[:len(gz)/2]},
		{"gzip without trailer", gz[:len(gz)-8]},
		{"gzip bad crc", crcFlipped},
		{"tar cut in data", plain[:512+512+50<<10]},
		{"zstd cut", zs[:len(zs)-10]},
		{"random bytes", []byte{1, 2, 3, 4, 5, 6, 7}},
		{"zero block then junk", append(tartest.Tar(t, file("f", "x"))[:1536],
			bytes.Repeat([]byte{'j'}, 512)...)},
		{"gzip then junk", append(bytes.Clone(gz), "JUNK"...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := applyBytes(t, tc.blob)
			if !errors.Is(err, errdefs.ErrInvalidLayer) {
				t.Errorf("error %v, want %v", err, errdefs.ErrInvalidLayer)
			}
		})
	}
	if _, _, err := applyBytes(t, gz); err != nil {
		t.Errorf("intact blob after failures: %v", err)
	}
}

func TestApplyTrailingData(t *testing.T) {
	requireRoot(t)
	plain := tartest.Tar(t, dir("a/"), file("a/f", "x"))
	padded := append(bytes.Clone(plain), make([]byte, 10240-len(plain)%10240)...)
	junk := append(bytes.Clone(plain), "JUNKJUNK"...)
	half := len(plain) / 2
	twoMembers := append(tartest.Gzip(t, plain[:half]), tartest.Gzip(t, plain[half:])...)

	for _, tc := range []struct {
		name    string
		blob    []byte
		tarred  []byte
		entries int64
	}{
		{"zero padded", padded, padded, 2},
		{"junk after end", junk, junk, 2},
		{"gzip with zero padding", append(tartest.Gzip(t, plain), make([]byte, 16)...), plain, 2},
		{"two gzip members", twoMembers, plain, 2},
		{"empty blob", nil, nil, 0},
		{"zero blocks only", make([]byte, 1024), make([]byte, 1024), 0},
		{"gzip of nothing", tartest.Gzip(t, nil), nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, res, err := applyBytes(t, tc.blob)
			if err != nil {
				t.Fatalf("apply: %v", err)
			}
			if want := sha256Digest(tc.tarred); res.DiffID != want {
				t.Errorf("diff ID %s, want %s", res.DiffID, want)
			}
			if res.Size != int64(len(tc.tarred)) {
				t.Errorf("size %d, want %d", res.Size, len(tc.tarred))
			}
			if res.Entries != tc.entries {
				t.Errorf("entries %d, want %d", res.Entries, tc.entries)
			}
		})
	}

	_, res, _ := applyBytes(t, nil)
	if want := "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"; string(res.DiffID) != want {
		t.Errorf("empty layer diff ID %s, want %s", res.DiffID, want)
	}
}

func TestApplyLimits(t *testing.T) {
	requireRoot(t)
	var many []tartest.Entry
	for i := range 16 {
		many = append(many, file(fmt.Sprintf("zero%d", i), string(make([]byte, 512<<10))))
	}
	zeros := tartest.Gzip(t, tartest.Tar(t, many...))
	for _, tc := range []struct {
		name   string
		blob   []byte
		limits Limits
		limit  string
	}{
		{"size", zeros, Limits{MaxSize: 1 << 20}, "uncompressed size"},
		{"entries", tartest.Tar(t, file("a", ""), file("b", ""), file("c", "")),
			Limits{MaxEntries: 2}, "entry count"},
		{"path length", tartest.Tar(t, file(strings.Repeat("p", 200), "")),
			Limits{MaxPathLength: 100}, "path length"},
		{"depth", tartest.Tar(t, file("a/b/c/d", "")), Limits{MaxDepth: 3}, "path depth"},
		{"default symlink target", tartest.Tar(t, symlink("lnk", strings.Repeat("t", 5000))),
			Limits{}, "symlink target length"},
		{"file size", tartest.Tar(t, file("f", "0123456789")), Limits{MaxSize: 5}, "file size"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root, _, err := applyBytes(t, tc.blob, WithLimits(tc.limits))
			if !errors.Is(err, errdefs.ErrLimit) {
				t.Fatalf("error %v, want %v", err, errdefs.ErrLimit)
			}
			if !strings.Contains(err.Error(), tc.limit) {
				t.Errorf("error %q does not name the limit %q", err, tc.limit)
			}
			if tc.name == "size" {
				// The limit trips while zero1 streams, so no later file exists.
				if _, err := os.Stat(root + "/zero2"); err == nil {
					t.Errorf("zero2 written past the size limit")
				}
			}
		})
	}
}

func TestApplyErrorNamesEntry(t *testing.T) {
	_, _, err := applyBytes(t, tartest.Tar(t, file("etc/../../x", "")))
	if !errors.Is(err, errdefs.ErrBreakout) {
		t.Fatalf("error %v, want %v", err, errdefs.ErrBreakout)
	}
	if want := `apply entry "etc/../../x": path escapes the root`; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
}

func TestApplyDeepPath(t *testing.T) {
	requireRoot(t)
	name := strings.Repeat("d/", 1000) + "f"
	root, _, err := applyBytes(t, tartest.Tar(t, file(name, "deep")))
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	wantFile(t, root, name, "deep")
	_, _, err = applyBytes(t, tartest.Tar(t, file(strings.Repeat("d/", 2100)+"f", "")))
	if !errors.Is(err, errdefs.ErrLimit) {
		t.Errorf("2100 components: error %v, want %v", err, errdefs.ErrLimit)
	}
}

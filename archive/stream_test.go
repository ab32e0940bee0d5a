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
	"golang.org/x/sys/unix"

	"github.com/strata-containers/strata/archive/compression"
	"github.com/strata-containers/strata/archive/tartest"
	"github.com/strata-containers/strata/errdefs"
	"github.com/strata-containers/strata/internal/layercases"
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
		{"gzip then a lone magic byte", append(bytes.Clone(gz), 0x1f)},
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
		{"gzip then junk", append(tartest.Gzip(t, plain), "JUNK"...), plain, 2},
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

// TestApplyEndOfArchive checks the ends of a tar that archive/tar reads as
// clean and those it rejects.
func TestApplyEndOfArchive(t *testing.T) {
	requireRoot(t)
	plain := tartest.Tar(t, file("f", "x"))
	oneZeroBlock := plain[:1536]
	if _, res, err := applyBytes(t, oneZeroBlock); err != nil {
		t.Errorf("one zero block: %v", err)
	} else if want := sha256Digest(oneZeroBlock); res.DiffID != want {
		t.Errorf("one zero block: diff ID %s, want %s", res.DiffID, want)
	}
	noZeroBlock := plain[:1024]
	if _, res, err := applyBytes(t, noZeroBlock); err != nil {
		t.Errorf("no end-of-archive marker: %v", err)
	} else if want := sha256Digest(noZeroBlock); res.DiffID != want {
		t.Errorf("no end-of-archive marker: diff ID %s, want %s", res.DiffID, want)
	}
}

// TestApplyResourceLimits feeds layers built to exhaust disk, memory or
// link counts, and checks that each fails with its class while streaming.
func TestApplyResourceLimits(t *testing.T) {
	requireRoot(t)
	// Each file is under the size limit, so only the count of streamed
	// bytes stops the layer.
	var zeroFiles []tartest.Entry
	for i := range 16 {
		zeroFiles = append(zeroFiles, file(fmt.Sprintf("zero%d", i), string(make([]byte, 512<<10))))
	}
	zeros := tartest.Tar(t, zeroFiles...)
	huge := tartest.Tar(t, file("huge", "0123456789"))
	// The header claims 2^40 bytes: the size field is rewritten in place,
	// which only the checksum notices, so fix that too.
	huge = bytes.Clone(huge)
	copy(huge[124:136], fmt.Sprintf("%011o\x00", int64(1)<<40)[:12])
	copy(huge[148:156], "        ")
	sum := 0
	for _, c := range huge[:512] {
		sum += int(c)
	}
	copy(huge[148:156], fmt.Sprintf("%06o\x00 ", sum))
	var empties []tartest.Entry
	for i := range 1001 {
		empties = append(empties, file(fmt.Sprintf("d/%d", i), ""))
	}
	// Go's tar writer refuses records this large, so they are written raw.
	bigRecord := layercases.RawPAX("f", []string{"comment=" + strings.Repeat("c", 2<<20)}, 0, nil)
	var xattrs []string
	for i := range 100000 {
		xattrs = append(xattrs, fmt.Sprintf("SCHILY.xattr.user.%d=v", i))
	}
	manyXattrs := layercases.RawPAX("f", xattrs, 0, nil)

	for _, tc := range []struct {
		name   string
		blob   []byte
		limits Limits
		want   error
		limit  string
	}{
		{"zstd bomb", tartest.Zstd(t, zeros), Limits{MaxSize: 1 << 20}, errdefs.ErrLimit,
			"uncompressed size"},
		{"gzip bomb", tartest.Gzip(t, zeros), Limits{MaxSize: 1 << 20}, errdefs.ErrLimit,
			"uncompressed size"},
		{"size claim without data", huge, Limits{}, errdefs.ErrInvalidLayer, ""},
		{"many empty files", tartest.Tar(t, empties...), Limits{MaxEntries: 1000},
			errdefs.ErrLimit, "entry count"},
		{"2 MiB PAX record", bigRecord, Limits{}, errdefs.ErrLimit, "1 MiB limit"},
		{"100000 xattrs", manyXattrs, Limits{}, errdefs.ErrLimit, "1 MiB limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root, _, err := applyBytes(t, tc.blob, WithLimits(tc.limits))
			if !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.limit) {
				t.Errorf("error %q does not name the limit %q", err, tc.limit)
			}
			entries, rerr := os.ReadDir(root)
			if rerr != nil {
				t.Fatal(rerr)
			}
			for _, e := range entries {
				if info, _ := e.Info(); info != nil && info.Size() > 1<<20 {
					t.Errorf("%s: %d bytes written past the limit", e.Name(), info.Size())
				}
			}
		})
	}
}

// TestApplyTooManyLinks makes 70,000 hard links to one file, more than
// ext4's 65,000. Where the file system has such a cap, the layer fails
// with ErrInvalidLayer naming the entry; elsewhere it applies.
func TestApplyTooManyLinks(t *testing.T) {
	requireRoot(t)
	if testing.Short() {
		t.Skip("builds a 36 MB layer")
	}
	es := []tartest.Entry{file("target", "t")}
	for i := range 70000 {
		es = append(es, hardlink(fmt.Sprintf("l%d", i), "target"))
	}
	root, _, err := applyBytes(t, tartest.Tar(t, es...))
	var st unix.Statfs_t
	if serr := unix.Statfs(root, &st); serr != nil {
		t.Fatal(serr)
	}
	if st.Type != unix.EXT4_SUPER_MAGIC {
		if err != nil {
			t.Errorf("apply on a file system without a link cap: %v", err)
		}
		return
	}
	if !errors.Is(err, errdefs.ErrInvalidLayer) || !errors.Is(err, unix.EMLINK) {
		t.Fatalf("error %v, want %v with EMLINK", err, errdefs.ErrInvalidLayer)
	}
	if !strings.Contains(err.Error(), `apply entry "l64999"`) {
		t.Errorf("error %q does not name the entry that crossed the cap", err)
	}
}

package compression

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/strata-containers/strata/errdefs"
)

func gzipBytes(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestDetect(t *testing.T) {
	zw, _ := zstd.NewWriter(nil)
	for _, tc := range []struct {
		header []byte
		want   Kind
	}{
		{nil, Uncompressed},
		{[]byte{0x1f}, Uncompressed},
		{gzipBytes(t, []byte("x")), Gzip},
		{zw.EncodeAll([]byte("x"), nil), Zstd},
		{[]byte("ustar"), Uncompressed},
	} {
		if got := Detect(tc.header); got != tc.want {
			t.Errorf("Detect(% x): %v, want %v", tc.header, got, tc.want)
		}
	}
}

func decompress(t *testing.T, b []byte) ([]byte, Kind, error) {
	t.Helper()
	r, kind, err := DecompressStream(bytes.NewReader(b))
	if err != nil {
		return nil, kind, err
	}
	defer r.Close()
	out, err := io.ReadAll(r)
	return out, kind, err
}

func TestDecompressGzipTrailer(t *testing.T) {
	data := []byte("hello world")
	for _, tc := range []struct {
		name    string
		blob    []byte
		wantErr bool
	}{
		{"zero padding", append(gzipBytes(t, data), make([]byte, 100)...), false},
		{"two members", append(gzipBytes(t, data[:5]), gzipBytes(t, data[5:])...), false},
		{"junk", append(gzipBytes(t, data), 0, 0, 'x'), false},
		{"lone magic byte", append(gzipBytes(t, data), 0x1f), true},
		{"truncated", gzipBytes(t, data)[:15], true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, kind, err := decompress(t, tc.blob)
			if kind != Gzip {
				t.Errorf("kind %v, want gzip", kind)
			}
			if tc.wantErr {
				if !errors.Is(err, errdefs.ErrInvalidLayer) {
					t.Errorf("error %v, want %v", err, errdefs.ErrInvalidLayer)
				}
				return
			}
			if err != nil || string(out) != string(data) {
				t.Errorf("got %q, %v; want %q", out, err, data)
			}
		})
	}
}

func TestFromMediaType(t *testing.T) {
	for mt, want := range layerKinds {
		got, err := FromMediaType(mt)
		if err != nil || got != want {
			t.Errorf("FromMediaType(%q) = %v, %v; want %v", mt, got, err, want)
		}
	}
	for _, mt := range []string{"", "application/json", MediaTypeOCILayerGzip + "+encrypted"} {
		if _, err := FromMediaType(mt); !errors.Is(err, errdefs.ErrUnsupported) {
			t.Errorf("FromMediaType(%q): error %v, want %v", mt, err, errdefs.ErrUnsupported)
		}
	}
}

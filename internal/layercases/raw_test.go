package layercases

import (
	"archive/tar"
	"bytes"
	"testing"
	"time"
)

// TestGNUHeaderRead checks how archive/tar reads the bytes that GNU
// headers keep at the offset of the ustar name prefix: as atime and ctime
// when they parse as numbers, and as the prefix of the name otherwise.
func TestGNUHeaderRead(t *testing.T) {
	for _, tc := range []struct {
		field        string
		name         string
		atime, ctime time.Time
	}{
		{"14000000000\x0014000000001\x00", "f.txt",
			time.Unix(0o14000000000, 0), time.Unix(0o14000000001, 0)},
		{"usr/share/doc/some-long-package-name",
			"usr/share/doc/some-long-package-name/f.txt", time.Time{}, time.Time{}},
		{"../../victim", "../../victim/f.txt", time.Time{}, time.Time{}},
	} {
		b := append(GNUHeader("f.txt", tc.field, []byte("x")), make([]byte, 1024)...)
		hdr, err := tar.NewReader(bytes.NewReader(b)).Next()
		if err != nil {
			t.Errorf("field %q: read header: %v", tc.field, err)
			continue
		}
		if hdr.Name != tc.name {
			t.Errorf("field %q: name %q, want %q", tc.field, hdr.Name, tc.name)
		}
		if !hdr.AccessTime.Equal(tc.atime) {
			t.Errorf("field %q: atime %v, want %v", tc.field, hdr.AccessTime, tc.atime)
		}
		if !hdr.ChangeTime.Equal(tc.ctime) {
			t.Errorf("field %q: ctime %v, want %v", tc.field, hdr.ChangeTime, tc.ctime)
		}
	}
}

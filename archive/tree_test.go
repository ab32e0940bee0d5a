package archive

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

// treeEntry is what the tree comparator records for one path. Directory
// mtimes and link counts are left out: overlayfs reports the upper
// directory's times and per-layer link counts, which legitimately differ
// from a flat tree. Tests check those directly where they matter.
type treeEntry struct {
	Type   string
	Mode   uint32
	UID    uint32
	GID    uint32
	Size   int64
	SHA256 string
	Link   string
	Rdev   uint64
	Mtime  int64
	Xattrs map[string]string
}

// readTree walks root without following symlinks and records every path
// below it, keyed by its slash-separated path relative to root.
func readTree(t *testing.T, root string) map[string]treeEntry {
	t.Helper()
	tree := map[string]treeEntry{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		tree[filepath.ToSlash(rel)] = statEntry(t, p)
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", root, err)
	}
	return tree
}

func statEntry(t *testing.T, p string) treeEntry {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Fatalf("lstat %s: %v", p, err)
	}
	e := treeEntry{UID: st.Uid, GID: st.Gid, Mode: st.Mode & 0o7777, Xattrs: readXattrs(t, p)}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		e.Type = "dir"
	case unix.S_IFREG:
		e.Type = "file"
		e.Size = st.Size
		e.SHA256 = fileSHA256(t, p)
		e.Mtime = st.Mtim.Nano()
	case unix.S_IFLNK:
		e.Type = "symlink"
		e.Mode = 0
		target, err := os.Readlink(p)
		if err != nil {
			t.Fatalf("readlink %s: %v", p, err)
		}
		e.Link = target
		e.Mtime = st.Mtim.Nano()
	case unix.S_IFCHR, unix.S_IFBLK:
		e.Type = "chardev"
		if st.Mode&unix.S_IFMT == unix.S_IFBLK {
			e.Type = "blockdev"
		}
		e.Rdev = st.Rdev
		e.Mtime = st.Mtim.Nano()
	case unix.S_IFIFO:
		e.Type = "fifo"
		e.Mtime = st.Mtim.Nano()
	default:
		e.Type = "other"
	}
	return e
}

func fileSHA256(t *testing.T, p string) string {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatalf("open %s: %v", p, err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatalf("read %s: %v", p, err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// readXattrs returns the xattrs of p, leaving out trusted.overlay.*, which
// only the overlay upper directories carry.
func readXattrs(t *testing.T, p string) map[string]string {
	t.Helper()
	names, err := listXattrNames(p)
	if err != nil {
		t.Fatalf("list xattrs of %s: %v", p, err)
	}
	var xattrs map[string]string
	for _, name := range names {
		if strings.HasPrefix(name, "trusted.overlay.") {
			continue
		}
		buf := make([]byte, 64<<10)
		n, err := unix.Lgetxattr(p, name, buf)
		if err != nil {
			t.Fatalf("get xattr %s of %s: %v", name, p, err)
		}
		if xattrs == nil {
			xattrs = map[string]string{}
		}
		xattrs[name] = string(buf[:n])
	}
	return xattrs
}

// compareTrees fails t when the trees under want and got differ.
func compareTrees(t *testing.T, want, got string) {
	t.Helper()
	if diff := cmp.Diff(readTree(t, want), readTree(t, got)); diff != "" {
		t.Errorf("tree %s differs from %s (-want +got):\n%s", got, want, diff)
	}
}

package storage

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/strata-containers/strata/log"
	"github.com/strata-containers/strata/snapshot"
)

// ManifestName is the file beside a committed snapshot's fs directory that
// lists the size and sha256 digest of every regular file in fs.
const ManifestName = "manifest"

// manifestHeader is the first line of a manifest. Each further line is
// "<size> sha256:<hex> <path>", the path relative to fs and quoted with
// strconv.Quote so that any byte string survives.
const manifestHeader = "strata-manifest v1"

// ManifestEntry is one regular file of a manifest.
type ManifestEntry struct {
	Path   string
	Size   int64
	Digest string
}

// Seal readies the active snapshot in directory dir for its commit record.
// It writes dir/manifest from the bytes of the files in dir/fs and returns
// the tree's disk usage. With sync it then flushes the file system that
// holds dir with syncfs(2), so that the data reaches the disk before the
// record that commits it.
func Seal(ctx context.Context, dir string, sync bool) (snapshot.Usage, error) {
	tree := filepath.Join(dir, "fs")
	start := time.Now()
	if err := writeManifest(ctx, tree, filepath.Join(dir, ManifestName)); err != nil {
		return snapshot.Usage{}, wrapNoSpace(err)
	}
	hashed := time.Now()
	usage, err := DiskUsage(ctx, tree)
	if err != nil {
		return snapshot.Usage{}, err
	}
	measured := time.Now()
	if sync {
		if err := syncFS(dir); err != nil {
			return snapshot.Usage{}, wrapNoSpace(err)
		}
	}
	log.G(ctx).Debug("seal snapshot", "path", dir, "manifest", hashed.Sub(start),
		"usage", measured.Sub(hashed), "sync", time.Since(measured))
	return usage, nil
}

func syncFS(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync file system of %s: %w", dir, err)
	}
	defer f.Close()
	if err := unix.Syncfs(int(f.Fd())); err != nil {
		return fmt.Errorf("sync file system of %s: %w", dir, err)
	}
	return nil
}

func writeManifest(ctx context.Context, tree, path string) (err error) {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("write manifest: %w", err)
	}
	defer func() {
		if err != nil {
			_ = os.Remove(tmp)
		}
	}()
	w := bufio.NewWriter(f)
	fmt.Fprintln(w, manifestHeader)
	type inode struct{ dev, ino uint64 }
	links := map[inode]string{}
	buf := make([]byte, 1<<20)
	err = filepath.WalkDir(tree, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return ctx.Err()
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(tree, p)
		// A hard link group is hashed once.
		var dgst string
		st, _ := fi.Sys().(*syscall.Stat_t)
		if st != nil && st.Nlink > 1 {
			dgst = links[inode{uint64(st.Dev), st.Ino}]
		}
		if dgst == "" {
			if dgst, err = hashFile(p, buf); err != nil {
				return err
			}
			if st != nil && st.Nlink > 1 {
				links[inode{uint64(st.Dev), st.Ino}] = dgst
			}
		}
		_, err = fmt.Fprintf(w, "%d %s %s\n", fi.Size(), dgst, strconv.Quote(rel))
		return err
	})
	if err == nil {
		err = w.Flush()
	}
	if cerr := f.Close(); cerr != nil && err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write manifest of %s: %w", tree, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write manifest: %w", err)
	}
	return nil
}

func hashFile(path string, buf []byte) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.CopyBuffer(h, f, buf); err != nil {
		return "", fmt.Errorf("hash %s: %w", path, err)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// ReadManifest reads the manifest at path.
func ReadManifest(path string) ([]ManifestEntry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 64*1024), 1<<20)
	if !s.Scan() || s.Text() != manifestHeader {
		return nil, fmt.Errorf("read manifest %s: missing header %q", path, manifestHeader)
	}
	var entries []ManifestEntry
	for line := 2; s.Scan(); line++ {
		size, rest, ok1 := strings.Cut(s.Text(), " ")
		dgst, quoted, ok2 := strings.Cut(rest, " ")
		n, err := strconv.ParseInt(size, 10, 64)
		if !ok1 || !ok2 || err != nil {
			return nil, fmt.Errorf("read manifest %s: line %d is malformed", path, line)
		}
		rel, err := strconv.Unquote(quoted)
		if err != nil {
			return nil, fmt.Errorf("read manifest %s: line %d: bad path: %w", path, line, err)
		}
		entries = append(entries, ManifestEntry{Path: rel, Size: n, Digest: dgst})
	}
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("read manifest %s: %w", path, err)
	}
	return entries, nil
}

// VerifyManifest compares the files under the fs directory of the snapshot
// directory dir with dir/manifest, and returns one line for each file that
// is missing, no longer a regular file, or has another size or digest. It
// returns an error wrapping fs.ErrNotExist when there is no manifest.
func VerifyManifest(ctx context.Context, dir string) (files int, bad []string, err error) {
	entries, err := ReadManifest(filepath.Join(dir, ManifestName))
	if err != nil {
		return 0, nil, err
	}
	tree := filepath.Join(dir, "fs")
	buf := make([]byte, 1<<20)
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return files, bad, err
		}
		files++
		p := filepath.Join(tree, e.Path)
		fi, err := os.Lstat(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			bad = append(bad, fmt.Sprintf("%s: missing", e.Path))
			continue
		case err != nil:
			bad = append(bad, fmt.Sprintf("%s: %v", e.Path, err))
			continue
		case !fi.Mode().IsRegular():
			bad = append(bad, fmt.Sprintf("%s: is %s, not a regular file", e.Path, fi.Mode().Type()))
			continue
		case fi.Size() != e.Size:
			bad = append(bad, fmt.Sprintf("%s: size %d, want %d", e.Path, fi.Size(), e.Size))
			continue
		}
		dgst, err := hashFile(p, buf)
		if err != nil {
			bad = append(bad, fmt.Sprintf("%s: %v", e.Path, err))
			continue
		}
		if dgst != e.Digest {
			bad = append(bad, fmt.Sprintf("%s: digest %s, want %s", e.Path, dgst, e.Digest))
		}
	}
	return files, bad, nil
}

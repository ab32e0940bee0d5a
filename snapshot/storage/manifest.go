package storage

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/strata-containers/strata/log"
	"github.com/strata-containers/strata/snapshot"
)

// ManifestName is the file beside a committed snapshot's fs directory that
// lists the size and checksum of every regular file in fs.
const ManifestName = "manifest"

// manifestHeader is the first line of a manifest. Each further line is
// "<size> <checksum> <path>", the checksum as [snapshot.CRC32C] spells it
// and the path relative to fs, quoted with strconv.Quote so that any byte
// string survives. Manifests with the header of version 1, written until
// 2026-12-04, list sha256 digests ("sha256:<hex>"). They are still read
// and verified, and a native snapshot's copies keep their parent's
// sha256 lines.
const (
	manifestHeader   = "strata-manifest v2"
	manifestHeaderV1 = "strata-manifest v1"
)

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
	return SealDigests(ctx, dir, sync, nil)
}

// SealDigests is [Seal] for a tree whose writer recorded the digests of
// the files it wrote. A regular file for which digests returns a digest,
// looked up by device, inode and size, is not read again. digests may be
// nil. Several goroutines walk the tree, so digests must be safe for
// concurrent use.
func SealDigests(ctx context.Context, dir string, sync bool, digests snapshot.FileDigests,
) (snapshot.Usage, error) {
	tree := filepath.Join(dir, "fs")
	start := time.Now()
	// With sync, a first syncfs writes the tree out while the manifest is
	// walked and written, and a second one, after the manifest, flushes
	// the manifest and whatever the first one missed.
	early := make(chan error, 1)
	if sync {
		go func() { early <- syncFS(dir) }()
	}
	m, err := writeManifest(ctx, tree, filepath.Join(dir, ManifestName), digests,
		manifestWorkers())
	if sync {
		if eerr := <-early; err == nil && eerr != nil {
			err = eerr
		}
	}
	if err != nil {
		return snapshot.Usage{}, wrapNoSpace(err)
	}
	hashed := time.Now()
	if sync {
		if err := syncFS(dir); err != nil {
			return snapshot.Usage{}, wrapNoSpace(err)
		}
	}
	log.G(ctx).Debug("seal snapshot", "path", dir, "manifest", hashed.Sub(start),
		"files", m.files, "hashed", m.hashed, "sync", time.Since(hashed))
	return m.usage, nil
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

type inode struct{ dev, ino uint64 }

// manifestWriter walks a tree once for both its manifest and its disk
// usage, which counts what [DiskUsage] counts.
type manifestWriter struct {
	ctx     context.Context
	w       *bufio.Writer
	digests snapshot.FileDigests
	// links maps a file with several links to its digest, so that the
	// sequential walk hashes and counts a hard link group once.
	links  map[inode]string
	buf    []byte // read buffer of the sequential walk
	usage  snapshot.Usage
	files  int
	hashed int
}

// writeManifest writes the manifest of tree to path. With workers above 1
// it walks the tree with that many goroutines, and otherwise on the
// calling goroutine alone. Both walks write the same bytes.
func writeManifest(ctx context.Context, tree, path string, digests snapshot.FileDigests,
	workers int,
) (_ *manifestWriter, err error) {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("write manifest: %w", err)
	}
	defer func() {
		if err != nil {
			_ = os.Remove(tmp)
		}
	}()
	m := &manifestWriter{ctx: ctx, w: bufio.NewWriter(f), digests: digests}
	fmt.Fprintln(m.w, manifestHeader)
	if workers > 1 {
		err = m.walkParallel(tree, workers)
	} else {
		err = m.walkRoot(tree)
	}
	if err == nil {
		err = m.w.Flush()
	}
	if cerr := f.Close(); cerr != nil && err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("write manifest of %s: %w", tree, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return nil, fmt.Errorf("write manifest: %w", err)
	}
	return m, nil
}

func (m *manifestWriter) walkRoot(tree string) error {
	fd, err := m.openRoot(tree)
	if err != nil {
		return err
	}
	m.links = map[inode]string{}
	m.buf = make([]byte, 1<<20)
	return m.walkDir(fd, tree, "")
}

// openRoot opens the root directory of tree and counts it.
func (m *manifestWriter) openRoot(tree string) (int, error) {
	fd, err := unix.Open(tree, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, &fs.PathError{Op: "open", Path: tree, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, &fs.PathError{Op: "fstat", Path: tree, Err: err}
	}
	m.count(&st)
	return fd, nil
}

// walkDir adds the entries of the directory fd, at rel below the tree,
// in the order of filepath.WalkDir, and closes fd. Entries are opened
// relative to their directory, so depth is not limited by PATH_MAX.
func (m *manifestWriter) walkDir(fd int, tree, rel string) error {
	dir := os.NewFile(uintptr(fd), filepath.Join(tree, rel))
	defer dir.Close()
	names, err := dir.Readdirnames(-1)
	if err != nil {
		return err
	}
	slices.Sort(names)
	for _, name := range names {
		if err := m.ctx.Err(); err != nil {
			return err
		}
		child := name
		if rel != "" {
			child = rel + "/" + name
		}
		var st unix.Stat_t
		if err := unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return &fs.PathError{Op: "fstatat", Path: filepath.Join(tree, child), Err: err}
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			m.count(&st)
			cfd, err := unix.Openat(fd, name,
				unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if err != nil {
				return &fs.PathError{Op: "openat", Path: filepath.Join(tree, child), Err: err}
			}
			if err := m.walkDir(cfd, tree, child); err != nil {
				return err
			}
		case unix.S_IFREG:
			if err := m.addFile(fd, tree, name, child, &st); err != nil {
				return err
			}
		default:
			m.count(&st)
		}
	}
	return nil
}

// count adds st to the usage unless it is a further link of a file
// counted already.
func (m *manifestWriter) count(st *unix.Stat_t) {
	if st.Mode&unix.S_IFMT != unix.S_IFDIR && st.Nlink > 1 {
		k := inode{dev: st.Dev, ino: st.Ino}
		if _, dup := m.links[k]; dup {
			return
		}
		m.links[k] = ""
	}
	m.usage.Inodes++
	m.usage.Size += st.Blocks * 512
}

func (m *manifestWriter) addFile(dirfd int, tree, name, rel string, st *unix.Stat_t) error {
	k := inode{dev: st.Dev, ino: st.Ino}
	dgst := m.links[k]
	m.count(st)
	if dgst == "" && m.digests != nil {
		if sum, ok := m.digests.FileDigest(st.Dev, st.Ino, st.Size); ok {
			dgst = sum
		}
	}
	if dgst == "" {
		var err error
		dgst, err = hashAt(dirfd, name, filepath.Join(tree, rel), m.buf)
		if err != nil {
			return err
		}
		m.hashed++
	}
	if st.Nlink > 1 {
		m.links[k] = dgst
	}
	m.files++
	_, err := fmt.Fprintf(m.w, "%d %s %s\n", st.Size, dgst, strconv.Quote(rel))
	return err
}

// hashAt returns the checksum of the regular file name in the directory
// dirfd, whose path is path, as manifest lines spell it.
func hashAt(dirfd int, name, path string, buf []byte) (string, error) {
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", &fs.PathError{Op: "openat", Path: path, Err: err}
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	sum, err := checksumReader(f, buf, "")
	if err != nil {
		return "", fmt.Errorf("hash %s: %w", path, err)
	}
	return sum, nil
}

// checksumReader returns the checksum of r's bytes, spelled as manifests
// spell it, by the algorithm of like: sha256 when like starts with
// "sha256:", CRC-32C when it starts with "crc32c:" or is empty. Any other
// algorithm is an error.
func checksumReader(r io.Reader, buf []byte, like string) (string, error) {
	if like != "" && !strings.HasPrefix(like, "sha256:") && !strings.HasPrefix(like, "crc32c:") {
		return "", fmt.Errorf("unknown checksum %q", like)
	}
	if strings.HasPrefix(like, "sha256:") {
		h := sha256.New()
		if _, err := io.CopyBuffer(h, r, buf); err != nil {
			return "", err
		}
		return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
	}
	var sum uint32
	for {
		n, err := r.Read(buf)
		sum = crc32.Update(sum, castagnoli, buf[:n])
		if errors.Is(err, io.EOF) {
			return snapshot.CRC32C(sum), nil
		}
		if err != nil {
			return "", err
		}
	}
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// checksumFile returns the checksum of the file at path by the algorithm
// of like, as checksumReader does.
func checksumFile(path string, buf []byte, like string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sum, err := checksumReader(f, buf, like)
	if err != nil {
		return "", fmt.Errorf("hash %s: %w", path, err)
	}
	return sum, nil
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
	if !s.Scan() || (s.Text() != manifestHeader && s.Text() != manifestHeaderV1) {
		return nil, fmt.Errorf("read manifest %s: missing header %q or %q", path,
			manifestHeader, manifestHeaderV1)
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
	// Names of one inode share its verdict: a damaged file with 200 hard
	// links is one problem that lists its other names, hashed once.
	type inode struct{ dev, ino uint64 }
	seen := map[inode]int{} // index into bad, or -1 when the inode is fine
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
		}
		var key inode
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			key = inode{uint64(st.Dev), st.Ino}
			if i, ok := seen[key]; ok {
				if i >= 0 {
					bad[i] += fmt.Sprintf(" (also %s)", e.Path)
				}
				continue
			}
		}
		problem := ""
		if fi.Size() != e.Size {
			problem = fmt.Sprintf("%s: size %d, want %d", e.Path, fi.Size(), e.Size)
		} else if dgst, err := checksumFile(p, buf, e.Digest); err != nil {
			problem = fmt.Sprintf("%s: %v", e.Path, err)
		} else if dgst != e.Digest {
			problem = fmt.Sprintf("%s: digest %s, want %s", e.Path, dgst, e.Digest)
		}
		seen[key] = -1
		if problem != "" {
			seen[key] = len(bad)
			bad = append(bad, problem)
		}
	}
	return files, bad, nil
}

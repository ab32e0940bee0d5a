package native

import (
	"context"
	"path/filepath"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/strata-containers/strata/internal/fscopy"
	"github.com/strata-containers/strata/log"
	"github.com/strata-containers/strata/snapshot"
	"github.com/strata-containers/strata/snapshot/storage"
)

// copiedFiles records the files that Prepare copied from the parent's
// tree, with the digests that the parent's manifest lists for them, so
// that Commit need not read and hash them again. It lives in memory only:
// a Commit in another process, or after a restart, hashes every file.
type copiedFiles struct {
	tree  string
	files map[fileID]copiedFile
}

type fileID struct{ dev, ino uint64 }

// copiedFile is one copied regular file: the last path it was copied to,
// the status of the copy once it was complete, and the digest of the
// parent's file of the same path and size.
type copiedFile struct {
	path  string
	size  int64
	ctime unix.Timespec
	mtime unix.Timespec
	// digest is the checksum that the parent's manifest lists.
	digest string
}

// copyTracker holds the [copiedFiles] of the active snapshots that this
// process prepared, by snapshot ID.
type copyTracker struct {
	mu     sync.Mutex
	copies map[string]*copiedFiles
}

func (t *copyTracker) put(id string, c *copiedFiles) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.copies == nil {
		t.copies = map[string]*copiedFiles{}
	}
	t.copies[id] = c
}

// take removes and returns the copied files of snapshot id, or nil.
func (t *copyTracker) take(id string) *copiedFiles {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.copies[id]
	delete(t.copies, id)
	return c
}

// readParentDigests returns the digests of the parent's manifest by path,
// or nil when it cannot be read, so that Commit hashes the files.
func readParentDigests(ctx context.Context, manifest string) map[string]storage.ManifestEntry {
	entries, err := storage.ReadManifest(manifest)
	if err != nil {
		log.G(ctx).Debug("read parent manifest, copies will be hashed", "path", manifest, "error", err)
		return nil
	}
	m := make(map[string]storage.ManifestEntry, len(entries))
	for _, e := range entries {
		m[e.Path] = e
	}
	return m
}

// recordCopies returns the [fscopy.FileFunc] that fills c with every
// copied file that the parent's manifest lists with the same size.
func recordCopies(c *copiedFiles, parent map[string]storage.ManifestEntry) fscopy.FileFunc {
	return func(rel string, src, dst *unix.Stat_t) {
		e, ok := parent[rel]
		if !ok || e.Size != src.Size || dst.Size != src.Size {
			return
		}
		c.files[fileID{dev: uint64(dst.Dev), ino: dst.Ino}] = copiedFile{
			path: rel, size: dst.Size, ctime: dst.Ctim, mtime: dst.Mtim, digest: e.Digest,
		}
	}
}

// digests returns the digests of the copied files that are still as they
// were copied, behind those of primary, which the writer of the snapshot
// recorded and which win for any inode both know. A copy counts as
// unchanged when its path still names the same inode with the same size,
// change time and modification time: a write, chmod, chown, link or
// unlink changes the change time, and a removed file's inode number that
// a new file reuses is found under another path or with a new change time.
func (c *copiedFiles) digests(primary snapshot.FileDigests) snapshot.FileDigests {
	valid := make(map[fileID]copiedFile, len(c.files))
	for id, f := range c.files {
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(c.tree, f.path), &st); err != nil {
			continue
		}
		if uint64(st.Dev) != id.dev || st.Ino != id.ino || st.Size != f.size ||
			st.Ctim != f.ctime || st.Mtim != f.mtime {
			continue
		}
		valid[id] = f
	}
	return &mergedDigests{primary: primary, copied: valid}
}

// mergedDigests looks a file up in primary first, then in the copies.
type mergedDigests struct {
	primary snapshot.FileDigests
	copied  map[fileID]copiedFile
}

func (m *mergedDigests) FileDigest(dev, ino uint64, size int64) (string, bool) {
	if m.primary != nil {
		if sum, ok := m.primary.FileDigest(dev, ino, size); ok {
			return sum, true
		}
	}
	f, ok := m.copied[fileID{dev, ino}]
	if !ok || f.size != size {
		return "", false
	}
	return f.digest, true
}

// newCopiedFiles returns an empty record for the copy into tree.
func newCopiedFiles(tree string) *copiedFiles {
	return &copiedFiles{tree: tree, files: map[fileID]copiedFile{}}
}

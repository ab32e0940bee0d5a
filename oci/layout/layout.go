// Package layout reads OCI image layouts: a directory, or the same tree in
// a tar, holding an oci-layout file, an index.json and the blobs at
// blobs/<algorithm>/<hex>.
package layout

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-containers/strata/errdefs"
	"github.com/strata-containers/strata/oci"
)

// File names at the top of a layout.
const (
	LayoutFile = ocispec.ImageLayoutFile // "oci-layout"
	IndexFile  = ocispec.ImageIndexFile  // "index.json"
)

// maxIndexSize bounds how much of index.json and oci-layout is read.
const maxIndexSize = 16 << 20

// CheckLayoutFile checks the content of an oci-layout file. Only image
// layout version 1.0.0 exists so far.
func CheckLayoutFile(data []byte) error {
	var l ocispec.ImageLayout
	if err := json.Unmarshal(data, &l); err != nil {
		return fmt.Errorf("decode %s: %w: %w", LayoutFile, errdefs.ErrInvalidArgument, err)
	}
	if l.Version != ocispec.ImageLayoutVersion {
		return fmt.Errorf("check %s: imageLayoutVersion %q, expected %q: %w",
			LayoutFile, l.Version, ocispec.ImageLayoutVersion, errdefs.ErrUnsupported)
	}
	return nil
}

// ParseBlobPath returns the digest a slash-separated, cleaned path names
// when it has the form blobs/<algorithm>/<hex> with a valid digest.
func ParseBlobPath(name string) (digest.Digest, bool) {
	parts := strings.Split(name, "/")
	if len(parts) != 3 || parts[0] != "blobs" {
		return "", false
	}
	d := digest.NewDigestFromEncoded(digest.Algorithm(parts[1]), parts[2])
	return d, d.Validate() == nil
}

// BlobPath returns the slash-separated path of the blob d in a layout.
func BlobPath(d digest.Digest) string {
	return path.Join("blobs", d.Algorithm().String(), d.Encoded())
}

// Dir is an OCI image layout directory, opened with [os.Root] so that no
// symbolic link inside it reaches a file outside.
type Dir struct {
	root *os.Root
	path string
}

// OpenDir opens the layout directory dir and checks its oci-layout file.
// It returns an error wrapping fs.ErrNotExist when dir has no oci-layout.
func OpenDir(dir string) (*Dir, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("open layout %s: %w", dir, err)
	}
	data, err := readFile(root, LayoutFile)
	if err == nil {
		err = CheckLayoutFile(data)
	}
	if err != nil {
		root.Close()
		return nil, fmt.Errorf("open layout %s: %w", dir, err)
	}
	return &Dir{root: root, path: dir}, nil
}

// Close releases the directory.
func (d *Dir) Close() error { return d.root.Close() }

// Index reads and decodes index.json.
func (d *Dir) Index() (ocispec.Index, error) {
	data, err := readFile(d.root, IndexFile)
	if err != nil {
		return ocispec.Index{}, fmt.Errorf("read layout %s: %w", d.path, err)
	}
	idx, err := oci.DecodeIndex(data)
	if err != nil {
		return idx, fmt.Errorf("read layout %s: %s: %w", d.path, IndexFile, err)
	}
	return idx, nil
}

// OpenBlob opens the blob dgst. It returns an error wrapping
// errdefs.ErrNotFound when the layout does not hold it.
func (d *Dir) OpenBlob(dgst digest.Digest) (*os.File, error) {
	if err := dgst.Validate(); err != nil {
		return nil, fmt.Errorf("open blob %q in %s: %w: %w", dgst, d.path, errdefs.ErrInvalidArgument, err)
	}
	f, err := d.root.Open(BlobPath(dgst))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("open blob %s in %s: %w", dgst, d.path, errdefs.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("open blob %s in %s: %w", dgst, d.path, err)
	}
	return f, nil
}

func readFile(root *os.Root, name string) ([]byte, error) {
	f, err := root.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() || fi.Size() > maxIndexSize {
		return nil, fmt.Errorf("read %s: not a regular file of at most %d bytes: %w",
			name, maxIndexSize, errdefs.ErrInvalidArgument)
	}
	data := make([]byte, fi.Size())
	if _, err := f.ReadAt(data, 0); err != nil && fi.Size() > 0 {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return data, nil
}

// Package content defines a content-addressed blob store.
//
// Blobs are named by their digest. A blob enters a store only through a
// [Writer], which checks the size and digest of what was written before the
// blob becomes visible, so a reader never sees bytes that do not match their
// name. Implementations live in subpackages; [contenttest] holds the
// conformance suite they all pass.
package content

import (
	"context"
	"io"
	"os"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Info describes a stored blob.
type Info struct {
	Digest    digest.Digest
	Size      int64
	CreatedAt time.Time
}

// ReaderAt reads a stored blob. Size is the size of the whole blob.
type ReaderAt interface {
	io.ReaderAt
	io.Closer
	Size() int64
}

// A FileReaderAt is a [ReaderAt] over an open file whose ReadAt does not
// move the file's offset, which starts at the blob's start. One reader may
// then read the whole blob through the file in a single pass, such as a
// decompressing program given the file as its standard input.
type FileReaderAt interface {
	ReaderAt
	BlobFile() *os.File
}

// Provider opens stored blobs.
type Provider interface {
	// ReaderAt opens the blob named by desc.Digest. It returns an error
	// wrapping errdefs.ErrNotFound when the blob is not stored.
	ReaderAt(ctx context.Context, desc ocispec.Descriptor) (ReaderAt, error)
}

// Writer receives the bytes of one blob. Nothing is visible in the store
// until Commit returns nil.
type Writer interface {
	io.WriteCloser

	// Offset returns the number of bytes written so far, including bytes
	// kept from an earlier interrupted ingest of the same ref.
	Offset() int64

	// Commit checks the size and digest of what was written against the
	// descriptor the writer was opened for, syncs the data and moves the blob
	// into place. A mismatch returns an error wrapping
	// errdefs.ErrDigestMismatch that names the expected and actual values,
	// and the data is discarded. Committing a blob that is already stored
	// returns an error wrapping errdefs.ErrAlreadyExists.
	Commit(ctx context.Context) error
}

// Ingester opens writers.
type Ingester interface {
	// Writer opens a writer for the blob desc under the ingest name ref.
	// A ref identifies one ingest: reopening the same ref resumes the data
	// written before (see Writer.Offset). It returns an error wrapping
	// errdefs.ErrAlreadyExists when the blob is already stored, and one
	// wrapping errdefs.ErrUnavailable when another writer holds ref.
	Writer(ctx context.Context, ref string, desc ocispec.Descriptor) (Writer, error)
}

// WalkFunc is called for every stored blob by [Manager.Walk].
type WalkFunc func(Info) error

// Manager inspects and removes stored blobs.
type Manager interface {
	// Info returns the blob's info, or an error wrapping
	// errdefs.ErrNotFound.
	Info(ctx context.Context, dgst digest.Digest) (Info, error)
	// Walk calls fn for every stored blob, stopping at the first error.
	Walk(ctx context.Context, fn WalkFunc) error
	// Delete removes the blob, or returns an error wrapping
	// errdefs.ErrNotFound.
	Delete(ctx context.Context, dgst digest.Digest) error
}

// Store is a complete content store.
type Store interface {
	Manager
	Provider
	Ingester
}

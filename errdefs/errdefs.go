// Package errdefs defines the classes of error that strata's packages return.
//
// Every package wraps one of these sentinels with context (the image, digest,
// snapshot key or path involved) so that callers can classify a failure with
// [errors.Is] and never need to match on error text:
//
//	if errors.Is(err, errdefs.ErrNotFound) {
//		// prepare from the parent instead
//	}
package errdefs

import "errors"

// Generic classes, shared by the content store, the metadata stores and the
// snapshotters.
var (
	// ErrNotFound means the named object (blob, image, snapshot) does not exist.
	ErrNotFound = errors.New("not found")
	// ErrAlreadyExists means an object with that name or digest exists.
	ErrAlreadyExists = errors.New("already exists")
	// ErrInvalidArgument means the caller passed a malformed value.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrFailedPrecondition means the object is in the wrong state for the
	// operation, for example committing a snapshot that is not active.
	ErrFailedPrecondition = errors.New("failed precondition")
	// ErrNotImplemented means the operation is not supported on this platform
	// or by this implementation.
	ErrNotImplemented = errors.New("not implemented")
	// ErrUnavailable means a resource is temporarily held by someone else,
	// for example a lock that did not come free in time.
	ErrUnavailable = errors.New("unavailable")
)

// Classes for rejected layers, returned by the layer applier and ApplyLayers.
var (
	// ErrInvalidLayer means the layer is malformed: a corrupt or truncated
	// stream, a bad tar header or a malformed whiteout name.
	ErrInvalidLayer = errors.New("invalid layer")
	// ErrBreakout means an entry tried to reach a path outside the root.
	ErrBreakout = errors.New("path escapes the root")
	// ErrDigestMismatch means content did not match its expected digest or
	// size: a blob in the content store, or a layer against its diff ID.
	ErrDigestMismatch = errors.New("digest mismatch")
	// ErrUnsupported means the input uses a feature strata does not handle,
	// such as an unknown or encrypted media type.
	ErrUnsupported = errors.New("unsupported")
	// ErrLimit means the input exceeded a configured limit (size, entry
	// count, path length or depth).
	ErrLimit = errors.New("limit exceeded")
	// ErrNoSpace means the file system holding the store is full.
	ErrNoSpace = errors.New("no space left on device")
)

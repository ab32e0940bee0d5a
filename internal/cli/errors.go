package cli

import (
	"errors"
	"os"

	"github.com/strata-containers/strata/errdefs"
	"github.com/strata-containers/strata/store"
)

// hintedError carries advice on what to do about an error, printed after it.
type hintedError struct {
	err  error
	hint string
}

func (e hintedError) Error() string { return e.err.Error() }
func (e hintedError) Unwrap() error { return e.err }

// withHint attaches advice to err, or returns nil when err is nil.
func withHint(err error, hint string) error {
	if err == nil {
		return nil
	}
	return hintedError{err: err, hint: hint}
}

// imageHint attaches advice to an error of a verb that resolves an image
// by name: whether the image or one of its blobs is missing.
func imageHint(err error) error {
	switch {
	case errors.Is(err, store.ErrImageNotFound):
		return withHint(err, "run 'strata images' to list imported images")
	case errors.Is(err, errdefs.ErrNotFound):
		return withHint(err, "a blob of the image is missing from the store: import the image again")
	}
	return err
}

// hint returns the advice printed after err: the verb's own when it gave
// one, or one chosen by the class of the error.
func hint(err error) string {
	var h hintedError
	if errors.As(err, &h) {
		return "; " + h.hint
	}
	switch {
	case errors.Is(err, os.ErrPermission):
		return "; run strata as root"
	case errors.Is(err, errdefs.ErrNoSpace):
		return "; the disk is full: free space on the file system that holds the store and run the command again"
	case errors.Is(err, errdefs.ErrDigestMismatch):
		return "; the image is corrupt: rebuild or fetch it again and import it again"
	case errors.Is(err, errdefs.ErrBreakout), errors.Is(err, errdefs.ErrInvalidLayer):
		return "; the layer was rejected and nothing of it was committed " +
			"(if the image unpacked before, run 'strata check': its blob may be damaged)"
	case errors.Is(err, errdefs.ErrUnavailable):
		return "; another strata process is using the store: try again"
	case errors.Is(err, errdefs.ErrNotImplemented):
		return "; try --snapshotter native"
	}
	return ""
}

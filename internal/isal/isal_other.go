//go:build !linux || nolibisal

package isal

import (
	"fmt"
	"io"
)

// Load fails off Linux and in builds with the tag nolibisal, which leave
// out the loader so that a CGO_ENABLED=0 binary stays static.
func Load() error {
	return fmt.Errorf("%w: this build leaves the loader out (built with -tags nolibisal, or not for Linux)",
		ErrUnavailable)
}

// Reader is not available in this build.
type Reader struct{}

// NewReader fails in this build; see [Load].
func NewReader(io.Reader) (*Reader, error) { return nil, Load() }

// Read fails.
func (*Reader) Read([]byte) (int, error) { return 0, Load() }

// Close does nothing.
func (*Reader) Close() error { return nil }

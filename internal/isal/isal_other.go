//go:build !linux

package isal

import (
	"fmt"
	"io"
)

// Load fails off Linux, where this package does not load the library.
func Load() error {
	return fmt.Errorf("%w: loaded only on Linux", ErrUnavailable)
}

// Reader is not available off Linux.
type Reader struct{}

// NewReader fails off Linux; see [Load].
func NewReader(io.Reader) (*Reader, error) { return nil, Load() }

// Read fails.
func (*Reader) Read([]byte) (int, error) { return 0, Load() }

// Close does nothing.
func (*Reader) Close() error { return nil }

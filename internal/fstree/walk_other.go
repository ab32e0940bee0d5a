//go:build !linux

package fstree

import (
	"fmt"

	"github.com/strata-containers/strata/errdefs"
)

// Walk records root and every entry below it. It needs Linux's statx and
// xattr calls, so elsewhere it returns an error that wraps
// [errdefs.ErrNotImplemented].
func Walk(root string, opts ...Opt) ([]Entry, error) {
	return nil, fmt.Errorf("walk %s: %w", root, errdefs.ErrNotImplemented)
}

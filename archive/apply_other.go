//go:build !linux

package archive

import (
	"archive/tar"
	"context"
	"fmt"
	"io"

	"github.com/strata-containers/strata/errdefs"
)

type applier struct {
	cfg   applyConfig
	files *FileSums
}

func newApplier(context.Context, string, applyConfig) (*applier, error) {
	return nil, fmt.Errorf("apply layer: %w", errdefs.ErrNotImplemented)
}

func (a *applier) applyEntry(*tar.Header, io.Reader) error { return errdefs.ErrNotImplemented }
func (a *applier) finish() error                           { return errdefs.ErrNotImplemented }
func (a *applier) close()                                  {}
func (a *applier) waitFiles() error                        { return nil }
func (a *applier) filesFailed() error                      { return nil }
func (a *applier) stopWriteback() error                    { return nil }
func classifyFS(err error) error                           { return err }

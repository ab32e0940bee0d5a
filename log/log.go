// Package log carries a [slog.Logger] in a context.
//
// Libraries never configure logging and never keep a package-level logger:
// they call [G] with the context they were given. Only the command line
// program decides the handler, level and format.
package log

import (
	"context"
	"io"
	"log/slog"
)

type loggerKey struct{}

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

// WithLogger returns a copy of ctx that carries l.
func WithLogger(ctx context.Context, l *slog.Logger) context.Context {
	return context.WithValue(ctx, loggerKey{}, l)
}

// G returns the logger carried by ctx, or a logger that discards everything
// when ctx carries none.
func G(ctx context.Context) *slog.Logger {
	if l, ok := ctx.Value(loggerKey{}).(*slog.Logger); ok && l != nil {
		return l
	}
	return discard
}

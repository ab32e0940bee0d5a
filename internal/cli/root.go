// Package cli implements the strata command line: one file and one
// constructor per verb, each a thin layer over the store package.
//
// Data goes to stdout; logs, progress and errors go to stderr.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/strata-containers/strata/archive/compression"
	"github.com/strata-containers/strata/log"
	"github.com/strata-containers/strata/store"
	"github.com/strata-containers/strata/unpack"
)

// DefaultRoot is the store's root directory when neither --root nor
// STRATA_ROOT sets one.
const DefaultRoot = "/var/lib/strata"

// globals holds the flags every verb accepts.
type globals struct {
	root        string
	snapshotter string
	logLevel    string
	logFormat   string
	sync        bool
	maxParallel int
	gzip        string
	stderr      io.Writer
}

// open opens the store that the global flags name.
func (g *globals) open(ctx context.Context, opts ...store.Opt) (*store.Store, error) {
	opts = append([]store.Opt{store.WithSnapshotter(g.snapshotter), store.WithSync(g.sync),
		store.WithMaxParallel(g.maxParallel), store.WithGzipProgram(g.gzipProgram()),
		store.WithGzipLibrary(g.gzip == "auto" || g.gzip == "isal")}, opts...)
	return store.Open(ctx, g.root, opts...)
}

// Main runs the strata command line with args and returns the exit status.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	g := &globals{stderr: stderr}
	root := newRootCmd(g)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)

	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return 0
	}
	var uerr usageError
	if errors.As(err, &uerr) {
		path := "strata"
		if cmd != nil {
			path = cmd.CommandPath()
		}
		fmt.Fprintf(stderr, "strata: %v (run '%s --help' for usage)\n", err, path)
		return 2
	}
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		// The shell convention for a command ended by SIGINT.
		fmt.Fprintf(stderr, "strata: interrupted: %v\n", err)
		return 130
	}
	fmt.Fprintf(stderr, "strata: %v%s\n", err, hint(err))
	return 1
}

func newRootCmd(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:   "strata",
		Short: "Unpack container images into snapshots",
		Long: `strata imports container images (OCI image layouts, OCI archives and
docker save archives), unpacks their layers into overlayfs or native
snapshots, and mounts the result as a root file system.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageError{fmt.Errorf("unknown command %q", args[0])}
			}
			return cmd.Help()
		},
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if !slices.Contains(store.Snapshotters, g.snapshotter) {
				return usageError{fmt.Errorf("invalid --snapshotter %q: use one of %s",
					g.snapshotter, strings.Join(store.Snapshotters, ", "))}
			}
			if g.maxParallel < 1 {
				return usageError{fmt.Errorf("--max-parallel must be 1 or more, not %d", g.maxParallel)}
			}
			if err := g.checkGzip(); err != nil {
				return usageError{err}
			}
			return setupLogging(cmd, g)
		},
	}
	defaultRoot := DefaultRoot
	if env := os.Getenv("STRATA_ROOT"); env != "" {
		defaultRoot = env
	}
	flags := root.PersistentFlags()
	flags.StringVar(&g.root, "root", defaultRoot, "root directory of the store (env STRATA_ROOT)")
	flags.StringVar(&g.snapshotter, "snapshotter", store.DefaultSnapshotter,
		"snapshotter to unpack into: overlayfs or native")
	flags.StringVar(&g.logLevel, "log-level", "warn", "log level: debug, info, warn or error")
	flags.StringVar(&g.logFormat, "log-format", "text", "log format on stderr: text or json")
	defaultSync := true
	if env := os.Getenv("STRATA_SYNC"); env != "" {
		// A value ParseBool rejects keeps sync on, the safe default.
		if v, err := strconv.ParseBool(env); err == nil {
			defaultSync = v
		}
	}
	flags.BoolVar(&g.sync, "sync", defaultSync,
		"flush each layer to disk with syncfs before committing it; "+
			"--sync=false is faster but a power loss can damage committed layers (env STRATA_SYNC=0 or false)")
	flags.IntVar(&g.maxParallel, "max-parallel", unpack.DefaultMaxParallel(),
		"max number of layers unpacked at once: one applied, the others decompressed ahead "+
			"into 4 MiB each, and the goroutines that copy a parent for native; 1 does one thing at a time")
	defaultGzip := "auto"
	if env := os.Getenv("STRATA_GZIP"); env != "" {
		defaultGzip = env
	}
	flags.StringVar(&g.gzip, "gzip", defaultGzip,
		"how to inflate gzip layers: auto decodes in process with libisal (ISA-L) when it loads, "+
			"else runs "+compression.GzipProgramName+" in a child process when it is on PATH, "+
			"else decodes with Go; isal needs libisal; internal always decodes with Go; "+
			"and a path names a program that takes -d -c (env STRATA_GZIP)")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })

	root.AddCommand(
		newImportCmd(g),
		newPullCmd(g),
		newUnpackCmd(g),
		newMountCmd(g),
		newUmountCmd(g),
		newImagesCmd(g),
		newSnapshotsCmd(g),
		newCheckCmd(g),
	)
	return root
}

// setupLogging installs the slog handler that the flags choose into the
// command's context.
func setupLogging(cmd *cobra.Command, g *globals) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(g.logLevel)); err != nil {
		return usageError{fmt.Errorf("invalid --log-level %q: use debug, info, warn or error", g.logLevel)}
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	switch g.logFormat {
	case "text":
		h = slog.NewTextHandler(g.stderr, opts)
	case "json":
		h = slog.NewJSONHandler(g.stderr, opts)
	default:
		return usageError{fmt.Errorf("invalid --log-format %q: use text or json", g.logFormat)}
	}
	cmd.SetContext(log.WithLogger(cmd.Context(), slog.New(h)))
	return nil
}

// usageError marks an error in the command line itself, which exits with
// status 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// exactArgs is cobra.ExactArgs with the error marked as a usage error and
// the expected arguments named.
func exactArgs(names ...string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) != len(names) {
			return usageError{fmt.Errorf("expected %d argument(s): %s; got %d",
				len(names), strings.Join(names, " "), len(args))}
		}
		return nil
	}
}

// isTerminal reports whether w is a terminal, which decides whether progress
// bars are drawn.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// checkGzip reports a --gzip value that names no program.
func (g *globals) checkGzip() error {
	switch g.gzip {
	case "auto", "internal":
		return nil
	case "isal":
		if err := compression.LoadGzipLibrary(); err != nil {
			return fmt.Errorf("--gzip isal: %w; install Debian's libisal2 or use --gzip auto", err)
		}
		return nil
	}
	if _, err := exec.LookPath(g.gzip); err != nil {
		return fmt.Errorf("invalid --gzip %q: use auto, isal, internal or the path of a program: %w",
			g.gzip, err)
	}
	return nil
}

// gzipProgram returns the program that --gzip selects, or "" for the
// in-process decoder.
func (g *globals) gzipProgram() string {
	switch g.gzip {
	case "auto":
		return compression.FindGzipProgram()
	case "internal", "isal":
		return ""
	}
	return g.gzip
}

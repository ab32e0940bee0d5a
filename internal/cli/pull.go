package cli

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/strata-containers/strata/errdefs"
	"github.com/strata-containers/strata/oci"
	"github.com/strata-containers/strata/remote"
	"github.com/strata-containers/strata/unpack"
)

// pullFlags holds the flags of the pull verb.
type pullFlags struct {
	unpack       bool
	platform     string
	creds        string
	caFile       string
	insecure     bool
	maxDownloads int
}

func newPullCmd(g *globals) *cobra.Command {
	var f pullFlags
	cmd := &cobra.Command{
		Use:   "pull [--unpack] [--platform OS/ARCH[/VARIANT]] REF",
		Short: "Fetch an image from a registry",
		Long: `Pull fetches the image REF from its registry into the content store and names
it by its full reference: "alpine" is stored as docker.io/library/alpine:latest.
From an index it picks the manifest for --platform, the host's by default.
With --unpack it also unpacks the image, each layer as soon as it and the
layers below it are ready. Prints the image's name and manifest digest, and
with --unpack the chain ID of the top layer as the last line.

Credentials come from --creds, else from ~/.docker/config.json or
$DOCKER_CONFIG/config.json. Interrupted downloads resume on the next pull.`,
		Args: exactArgs("REF"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPull(cmd, g, f, args[0])
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&f.unpack, "unpack", false, "unpack the image into the snapshotter while it downloads")
	fl.StringVar(&f.platform, "platform", oci.FormatPlatform(oci.Host()),
		"platform to pick from an index, as os/arch or os/arch/variant")
	fl.StringVar(&f.creds, "creds", "", "registry credentials as USER:PASSWORD")
	fl.StringVar(&f.caFile, "ca-file", "", "PEM file of CA certificates to trust besides the system roots")
	fl.BoolVar(&f.insecure, "insecure", false,
		"allow plain HTTP and HTTPS without certificate verification for this pull")
	fl.IntVar(&f.maxDownloads, "max-concurrent-downloads", remote.DefaultMaxConcurrentDownloads,
		"number of layers to download at once")
	return cmd
}

func runPull(cmd *cobra.Command, g *globals, f pullFlags, ref string) error {
	opts, err := f.options()
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	s, err := g.open(ctx)
	if err != nil {
		return err
	}
	defer s.Close()

	if f.unpack {
		sn, err := s.Snapshotter(ctx)
		if err != nil {
			return err
		}
		// The same lock files as store.Unpack, so that pulls and unpacks in
		// other processes extract each chain once.
		locker, err := unpack.NewFileLocker(filepath.Join(s.Root(), "locks"))
		if err != nil {
			return err
		}
		opts = append(opts, remote.WithUnpack(sn, unpack.WithLocker(locker)),
			remote.WithApplyOptions(s.ApplyOptions()...))
	}
	bars := newPullProgress(g.stderr, isTerminal(g.stderr))
	opts = append(opts, remote.WithProgress(bars.update))

	res, err := remote.Pull(ctx, s.Content(), s.Images(), ref, opts...)
	bars.finish()
	if errors.Is(err, errdefs.ErrDigestMismatch) {
		return withHint(err, "the registry sent bytes that do not match the image's digests and "+
			"nothing wrong was stored: pull again, and check any proxy or mirror in between")
	}
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "%s %s\n", res.Image.Name, res.Image.Target.Digest)
	if f.unpack {
		fmt.Fprintln(out, res.ChainID)
	}
	return nil
}

// options turns the flags into options of remote.Pull.
func (f pullFlags) options() ([]remote.Opt, error) {
	platform, err := oci.ParsePlatform(f.platform)
	if err != nil {
		return nil, usageError{fmt.Errorf("invalid --platform %q: use os/arch or os/arch/variant", f.platform)}
	}
	opts := []remote.Opt{
		remote.WithPlatform(platform),
		remote.WithMaxConcurrentDownloads(f.maxDownloads),
	}
	if f.creds != "" {
		user, password, ok := strings.Cut(f.creds, ":")
		if !ok || user == "" {
			// The value is not printed: it may hold a password.
			return nil, usageError{errors.New("invalid --creds: use USER:PASSWORD")}
		}
		opts = append(opts, remote.WithCredentials(user, password))
	}
	if f.caFile != "" {
		opts = append(opts, remote.WithCAFile(f.caFile))
	}
	if f.insecure {
		opts = append(opts, remote.WithInsecure())
	}
	if f.maxDownloads < 1 {
		return nil, usageError{fmt.Errorf("invalid --max-concurrent-downloads %d: use 1 or more", f.maxDownloads)}
	}
	return opts, nil
}

// pullProgress shows a pull's layers on stderr. On a terminal it draws one
// bar per layer, redrawn in place. Otherwise it prints one line each time a
// layer finishes downloading or unpacking.
type pullProgress struct {
	w        io.Writer
	terminal bool
	layers   []remote.Progress
	drawn    int // lines drawn by the last redraw
	last     time.Time
}

func newPullProgress(w io.Writer, terminal bool) *pullProgress {
	return &pullProgress{w: w, terminal: terminal}
}

// update receives one progress report. remote.Pull never calls it
// concurrently.
func (p *pullProgress) update(u remote.Progress) {
	if len(p.layers) < u.Total {
		p.layers = append(p.layers, make([]remote.Progress, u.Total-len(p.layers))...)
	}
	prev := p.layers[u.Index]
	p.layers[u.Index] = u
	if !p.terminal {
		p.logLine(prev, u)
		return
	}
	// Redraw at most 10 times a second, but always when a layer changes
	// state, so that no stage goes unseen.
	moving := u.State == remote.StateDownloading || u.State == remote.StateExtracting
	if moving && prev.State == u.State && time.Since(p.last) < 100*time.Millisecond {
		return
	}
	p.redraw()
}

// logLine prints a line when a layer finishes downloading or unpacking.
func (p *pullProgress) logLine(prev, u remote.Progress) {
	name := fmt.Sprintf("layer %d/%d %s", u.Index+1, u.Total, shortDigest(u.Layer.Digest.String()))
	switch {
	case u.State == remote.StateDownloaded && u.Cached:
		fmt.Fprintf(p.w, "%s: already stored\n", name)
	case u.State == remote.StateDownloaded && prev.Resumed > 0:
		fmt.Fprintf(p.w, "%s: downloaded %s, resumed at %s\n", name,
			humanBytes(u.Layer.Size), humanBytes(prev.Resumed))
	case u.State == remote.StateDownloaded:
		fmt.Fprintf(p.w, "%s: downloaded %s\n", name, humanBytes(u.Layer.Size))
	case u.State == remote.StateDone && u.Cached && prev.State != remote.StateDownloaded:
		fmt.Fprintf(p.w, "%s: already unpacked\n", name)
	case u.State == remote.StateDone && prev.State == remote.StateExtracting:
		fmt.Fprintf(p.w, "%s: unpacked\n", name)
	}
}

func (p *pullProgress) redraw() {
	p.last = time.Now()
	var b strings.Builder
	if p.drawn > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", p.drawn)
	}
	for i, l := range p.layers {
		fmt.Fprintf(&b, "\r\x1b[2Klayer %d/%d %s %s\n", i+1, len(p.layers),
			shortDigest(l.Layer.Digest.String()), barText(l))
	}
	p.drawn = len(p.layers)
	io.WriteString(p.w, b.String())
}

// barText describes one layer's state, with a bar while bytes move.
func barText(l remote.Progress) string {
	switch l.State {
	case remote.StateDownloading:
		return "downloading " + bar(l.Bytes, l.Layer.Size)
	case remote.StateDownloaded:
		if l.Cached {
			return "already stored"
		}
		return "downloaded " + humanBytes(l.Layer.Size)
	case remote.StateExtracting:
		return "extracting  " + bar(l.Bytes, l.Layer.Size)
	case remote.StateDone:
		if l.Cached {
			return "already unpacked"
		}
		return "done"
	}
	return "waiting"
}

func bar(n, total int64) string {
	const width = 30
	filled := width
	if total > 0 {
		filled = int(min(n, total) * width / total)
	}
	return fmt.Sprintf("[%s%s] %s / %s", strings.Repeat("=", filled), strings.Repeat(" ", width-filled),
		humanBytes(n), humanBytes(total))
}

// finish draws the final state.
func (p *pullProgress) finish() {
	if p.terminal && len(p.layers) > 0 {
		p.redraw()
	}
}

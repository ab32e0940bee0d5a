package cli

import (
	"fmt"
	"io"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/strata-containers/strata/unpack"
)

// progress draws one bar per layer on stderr while unpacking, when stderr
// is a terminal. Otherwise it draws nothing.
type progress struct {
	w     io.Writer
	on    bool
	bar   *progressbar.ProgressBar
	index int
}

func newProgress(w io.Writer, on bool) *progress {
	return &progress{w: w, on: on, index: -1}
}

// option returns the unpack option that feeds the bars.
func (p *progress) option() unpack.Opt {
	return unpack.WithProgress(p.update)
}

func (p *progress) update(u unpack.Progress) {
	if !p.on {
		return
	}
	if u.Index < p.index {
		// A layer's commit can end after the next layer's apply started,
		// and its bar was closed then.
		return
	}
	if u.Index != p.index {
		p.finish()
		p.index = u.Index
		desc := fmt.Sprintf("layer %d/%d %s", u.Index+1, u.Total, shortDigest(u.Layer.Digest.String()))
		p.bar = progressbar.NewOptions64(u.Layer.Size,
			progressbar.OptionSetWriter(p.w),
			progressbar.OptionSetDescription(desc),
			progressbar.OptionShowBytes(true),
			progressbar.OptionSetWidth(30),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish(),
		)
	}
	if u.Done && u.Skipped {
		p.bar.Describe(fmt.Sprintf("layer %d/%d %s already unpacked", u.Index+1, u.Total,
			shortDigest(u.Layer.Digest.String())))
	}
	_ = p.bar.Set64(u.Bytes)
	if u.Done {
		p.finish()
	}
}

// finish closes the current bar, if any.
func (p *progress) finish() {
	if p.bar != nil {
		_ = p.bar.Finish()
		p.bar = nil
	}
}

func shortDigest(d string) string {
	if len(d) > 19 {
		return d[:19]
	}
	return d
}

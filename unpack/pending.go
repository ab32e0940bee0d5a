package unpack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/strata-containers/strata/errdefs"
	"github.com/strata-containers/strata/snapshot"
)

// pendingCommit is a layer whose tree is applied and whose commit (the
// snapshotter's manifest walk, syncfs and record) runs on its own
// goroutine while the layer above it is applied onto the same tree. It
// holds the layer's chain lock until the commit succeeds, or until
// release after a failed commit, so that no other unpacker extracts the
// chain or takes the extraction snapshot for a leftover meanwhile.
type pendingCommit struct {
	sn       snapshot.Snapshotter
	key      string
	chainID  string
	logger   *slog.Logger
	progress Progress
	unlock   func()
	done     chan error

	waited bool
	err    error
}

// startCommit commits the extraction snapshot key as chainID on a new
// goroutine. The returned pendingCommit owns the chain lock that unlock
// releases and the extraction snapshot until release.
func startCommit(ctx context.Context, sn snapshot.Snapshotter, key, chainID string,
	digests snapshot.FileDigests, unlock func(), logger *slog.Logger, p Progress, start time.Time,
) *pendingCommit {
	var once sync.Once
	pc := &pendingCommit{
		sn: sn, key: key, chainID: chainID, logger: logger, progress: p,
		unlock: func() { once.Do(unlock) }, done: make(chan error, 1),
	}
	// The tree is complete and the commit is bounded work, so a cancel of
	// the unpack does not throw away a layer that only needs its record.
	ctx = context.WithoutCancel(ctx)
	go func() {
		err := commitLayer(ctx, sn, chainID, key, digests, logger, start)
		if errors.Is(err, errdefs.ErrAlreadyExists) {
			// ApplyLayers commits in the background only with a locker,
			// whose chain lock keeps other unpackers from committing the
			// chain. The snapshot prepared on key cannot be moved onto a
			// snapshot that another unpacker committed.
			err = fmt.Errorf("chain committed by another unpacker while this one held its lock "+
				"(is a strata without chain locks using this root?): %w", err)
		}
		if err == nil {
			// The key is gone, so the lock protects nothing any more.
			pc.unlock()
		}
		pc.done <- err
	}()
	return pc
}

// wait waits for the commit and returns its error, which names the layer.
func (pc *pendingCommit) wait() error {
	if pc == nil {
		return nil
	}
	if !pc.waited {
		pc.record(<-pc.done)
	}
	return pc.err
}

// failed returns the commit's error if the commit has ended, without
// waiting for one still running.
func (pc *pendingCommit) failed() error {
	if pc == nil || pc.waited {
		return pc.wait()
	}
	select {
	case err := <-pc.done:
		pc.record(err)
	default:
	}
	return pc.err
}

func (pc *pendingCommit) record(err error) {
	pc.waited = true
	if err != nil {
		pc.err = fmt.Errorf("commit layer %s as %s: %w", pc.progress.Layer.Digest, pc.chainID, err)
	}
}

// release waits for the commit and returns its error. After a failed
// commit it removes the extraction snapshot, so the snapshot prepared on
// it must be gone first. It unlocks the chain and, after a successful
// commit, reports the layer as done to report, which must not run at the
// same time as another progress call.
func (pc *pendingCommit) release(ctx context.Context, report func(Progress)) error {
	if pc == nil {
		return nil
	}
	defer pc.unlock()
	if err := pc.wait(); err != nil {
		rctx := context.WithoutCancel(ctx)
		if rerr := pc.sn.Remove(rctx, pc.key); rerr != nil && !errors.Is(rerr, errdefs.ErrNotFound) {
			pc.logger.Warn("remove extraction snapshot", "key", pc.key, "error", rerr)
		}
		return err
	}
	p := pc.progress
	p.Done = true
	p.Bytes = p.Layer.Size
	report(p)
	return nil
}

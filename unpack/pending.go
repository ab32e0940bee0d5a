package unpack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/strata-containers/strata/errdefs"
	"github.com/strata-containers/strata/snapshot"
)

// pendingCommit is a layer whose tree is applied and whose commit (the
// snapshotter's manifest walk, syncfs and record) runs on its own
// goroutine while the layer above it is applied onto the same tree. It
// holds the layer's chain lock until release, so no other unpacker
// extracts the chain or takes the extraction snapshot for a leftover.
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
	pc := &pendingCommit{
		sn: sn, key: key, chainID: chainID, logger: logger, progress: p,
		unlock: unlock, done: make(chan error, 1),
	}
	go func() {
		err := commit(ctx, sn, chainID, key, digests)
		if errors.Is(err, errdefs.ErrAlreadyExists) {
			// ApplyLayers commits in the background only with a locker,
			// whose chain lock keeps other unpackers from committing the
			// chain. The snapshot built on key could not move onto
			// another unpacker's commit either.
			err = fmt.Errorf("chain committed by another unpacker while this one held its lock: %w", err)
		}
		if err == nil {
			killPoint("committed")
			logger.Debug("layer applied", "duration", time.Since(start))
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
		pc.waited = true
		if err := <-pc.done; err != nil {
			pc.err = fmt.Errorf("commit layer %s as %s: %w", pc.progress.Layer.Digest, pc.chainID, err)
		}
	}
	return pc.err
}

// release waits for the commit, removes the extraction snapshot if the
// commit failed, and unlocks the chain. The snapshot built on the
// extraction snapshot, if any, must be removed or committed first. It
// reports the layer as done after a successful commit.
func (pc *pendingCommit) release(ctx context.Context, report func(Progress)) {
	if pc == nil {
		return
	}
	defer pc.unlock()
	if err := pc.wait(); err != nil {
		rctx := context.WithoutCancel(ctx)
		if rerr := pc.sn.Remove(rctx, pc.key); rerr != nil && !errors.Is(rerr, errdefs.ErrNotFound) {
			pc.logger.Warn("remove extraction snapshot", "key", pc.key, "error", rerr)
		}
		return
	}
	p := pc.progress
	p.Done = true
	p.Bytes = p.Layer.Size
	report(p)
}

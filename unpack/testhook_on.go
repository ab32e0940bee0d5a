//go:build strata_testhooks

package unpack

import (
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// Only binaries built with the strata_testhooks tag, as the crash tests
// build theirs, read STRATA_TEST_KILL_AT=point:N and SIGKILL themselves the
// Nth time they reach point.
var (
	killOnce  sync.Once
	killAt    string
	killAfter int
	killMu    sync.Mutex
	killSeen  = map[string]int{}
)

func killPoint(point string) {
	killOnce.Do(func() {
		name, n, ok := strings.Cut(os.Getenv("STRATA_TEST_KILL_AT"), ":")
		if count, err := strconv.Atoi(n); ok && err == nil {
			killAt, killAfter = name, count
		}
	})
	if point != killAt {
		return
	}
	killMu.Lock()
	killSeen[point]++
	hit := killSeen[point] == killAfter
	killMu.Unlock()
	if hit {
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	}
}

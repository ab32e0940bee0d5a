// Command strata imports container images and unpacks their layers into
// snapshots ready to mount as root file systems.
package main

import (
	"context"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/strata-containers/strata/internal/cli"
)

// memoryLimit is the soft limit on the Go heap unless GOMEMLIMIT sets
// one. Unpacking debian-zstd peaked at 59 MiB of RSS with the default
// garbage collector pacing and at 44 MiB with this limit, in the same
// time, which leaves room below the 64 MiB that strata aims for.
const memoryLimit = 40 << 20

func main() {
	if _, ok := os.LookupEnv("GOMEMLIMIT"); !ok {
		debug.SetMemoryLimit(memoryLimit)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Command strata imports container images and unpacks their layers into
// snapshots ready to mount as root file systems.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/strata-containers/strata/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
	"time"

	"github.com/strata-containers/strata/store"
)

// profileMain unpacks one image of a strata root in process, the way
// `strata unpack` does, with a CPU profile running.
func profileMain(args []string) (err error) {
	fs := flag.NewFlagSet("profile", flag.ExitOnError)
	root := fs.String("root", "", "strata root `directory` that holds the imported image")
	snapshotter := fs.String("snapshotter", store.DefaultSnapshotter, "snapshotter to unpack into")
	image := fs.String("image", "", "name of the image to unpack")
	cpu := fs.String("cpuprofile", "cpu.pprof", "`file` to write the CPU profile to")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *root == "" || *image == "" {
		return errors.New("profile needs -root and -image")
	}

	f, err := os.Create(*cpu)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	if err := pprof.StartCPUProfile(f); err != nil {
		return err
	}
	defer pprof.StopCPUProfile()

	ctx := context.Background()
	start := time.Now()
	s, err := store.Open(ctx, *root, store.WithSnapshotter(*snapshotter))
	if err != nil {
		return err
	}
	defer s.Close()
	chainID, err := s.Unpack(ctx, *image)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "unpacked %s as %s in %s\n", *image, chainID, time.Since(start))
	return nil
}

// Command benchtool holds the helpers that bench/run drives:
//
//	benchtool measure -out FILE -image I -tool T -phase P -run N [-log FILE] -- CMD [ARG...]
//	benchtool layers LAYOUT
//	benchtool table -results FILE -images FILE
//	benchtool profile -root DIR -image NAME [-snapshotter S] [-cpuprofile FILE]
//
// measure runs CMD once and appends one tab-separated line to FILE: the
// image, tool, phase and run, then wall seconds, user and system CPU
// seconds, peak RSS in KiB and the exit status. CPU and RSS come from
// wait4(2), so they cover CMD and every child it waited for. Peak RSS is
// that of the largest single process, not the sum.
//
// layers prints one line per layer of the image tagged latest in an OCI
// image layout: the compression (gzip, zstd or none, by magic bytes) and
// the blob's path.
//
// table reads the lines that measure wrote and the image sizes that bench/run
// wrote, and prints one Markdown table per image and the ratios against
// strata's targets.
//
// profile unpacks an image already imported into a strata root, in process
// as `strata unpack` would, and writes a CPU profile for go tool pprof.
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "measure":
		err = measureMain(os.Args[2:])
	case "layers":
		err = layersMain(os.Args[2:])
	case "table":
		err = tableMain(os.Args[2:])
	case "profile":
		err = profileMain(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchtool:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: benchtool measure|layers|table|profile [flags] (see the package doc)")
	os.Exit(2)
}

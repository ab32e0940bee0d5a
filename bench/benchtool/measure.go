package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"
)

func measureMain(args []string) error {
	fs := flag.NewFlagSet("measure", flag.ExitOnError)
	out := fs.String("out", "", "results `file` to append to")
	image := fs.String("image", "", "image name")
	tool := fs.String("tool", "", "tool name")
	phase := fs.String("phase", "cold", "cold or warm")
	run := fs.Int("run", 0, "run number")
	logPath := fs.String("log", "", "`file` that receives the command's stdout and stderr")
	if err := fs.Parse(args); err != nil {
		return err
	}
	argv := fs.Args()
	if *out == "" || len(argv) == 0 {
		return errors.New("measure needs -out and a command after --")
	}

	cmd := exec.Command(argv[0], argv[1:]...)
	if *logPath != "" {
		f, err := os.OpenFile(*logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return err
		}
		defer f.Close()
		fmt.Fprintf(f, "== %s %s %s run %d: %q\n", *image, *tool, *phase, *run, argv)
		cmd.Stdout, cmd.Stderr = f, f
	} else {
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	}

	start := time.Now()
	err := cmd.Start()
	if err != nil {
		return err
	}
	err = cmd.Wait()
	wall := time.Since(start)
	status := 0
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		status = exit.ExitCode()
	} else if err != nil {
		return err
	}

	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		return errors.New("no rusage for the command")
	}
	f, err := os.OpenFile(*out, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(f, "%s\t%s\t%s\t%d\t%.6f\t%.6f\t%.6f\t%d\t%d\n",
		*image, *tool, *phase, *run, wall.Seconds(),
		seconds(ru.Utime), seconds(ru.Stime), ru.Maxrss, status)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && status != 0 {
		err = fmt.Errorf("%s %s %s run %d: %q exited with status %d", *image, *tool, *phase, *run, argv, status)
	}
	return err
}

func seconds(tv syscall.Timeval) float64 {
	return float64(tv.Sec) + float64(tv.Usec)/1e6
}

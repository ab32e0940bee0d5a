package compression

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// childAttr makes the child die with the process that started it, so
// that it does not outlive a process killed mid-layer.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// pipeSize is the capacity requested for the pipes to and from the
// program. With the default 64 KiB, igzip's output through a pipe took
// 0.43 s on a layer that it inflates in 0.20 s to a file. With 1 MiB it
// took 0.25 s.
const pipeSize = 1 << 20

// growPipe requests a pipe of pipeSize. A failure, such as an unprivileged
// process above /proc/sys/fs/pipe-max-size, leaves the pipe as it is.
func growPipe(p any) {
	if f, ok := p.(interface{ Fd() uintptr }); ok {
		unix.FcntlInt(f.Fd(), unix.F_SETPIPE_SZ, pipeSize)
	}
}

package overlay

import (
	"os"
	"syscall"
	"time"
)

func owner(fi os.FileInfo) (uid, gid int) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid), int(st.Gid)
	}
	return os.Getuid(), os.Getgid()
}

func times(fi os.FileInfo) (atime, mtime time.Time) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return time.Unix(st.Atim.Unix()), time.Unix(st.Mtim.Unix())
	}
	return fi.ModTime(), fi.ModTime()
}

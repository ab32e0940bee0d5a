package fscopy

import (
	"errors"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// copyFile creates dst with the data of the regular file src, keeping its
// holes.
func copyFile(dst, src string, st *unix.Stat_t) (err error) {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := out.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()

	if st.Size == 0 {
		return nil
	}
	if unix.IoctlFileClone(int(out.Fd()), int(in.Fd())) == nil {
		return nil
	}
	if err := copyData(out, in, st.Size); err != nil {
		return &os.PathError{Op: "copy data to", Path: dst, Err: err}
	}
	return nil
}

// copyData copies each data segment that SEEK_DATA and SEEK_HOLE find in
// in, then sets the size so that a trailing hole stays a hole.
func copyData(out, in *os.File, size int64) error {
	rfd := int(in.Fd())
	for off := int64(0); off < size; {
		data, err := unix.Seek(rfd, off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			break
		}
		if err != nil {
			// Without SEEK_DATA the whole file is data.
			return copyRange(out, in, 0, size)
		}
		hole, err := unix.Seek(rfd, data, unix.SEEK_HOLE)
		if err != nil {
			return err
		}
		hole = min(hole, size)
		if err := copyRange(out, in, data, hole-data); err != nil {
			return err
		}
		off = hole
	}
	return out.Truncate(size)
}

// copyRange copies n bytes at off from in to the same offset in out, with
// copy_file_range(2) when the kernel can and read and write otherwise.
func copyRange(out, in *os.File, off, n int64) error {
	roff, woff := off, off
	for n > 0 {
		c, err := unix.CopyFileRange(int(in.Fd()), &roff, int(out.Fd()), &woff, int(min(n, 1<<30)), 0)
		if err != nil || c == 0 {
			if c == 0 && err == nil {
				// The file shrank while it was copied.
				return io.ErrUnexpectedEOF
			}
			if errors.Is(err, unix.EXDEV) || errors.Is(err, unix.EINVAL) ||
				errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EOPNOTSUPP) {
				return copyRangeSlow(out, in, roff, n)
			}
			return err
		}
		n -= int64(c)
	}
	return nil
}

func copyRangeSlow(out, in *os.File, off, n int64) error {
	r := io.NewSectionReader(in, off, n)
	w := io.NewOffsetWriter(out, off)
	copied, err := io.Copy(w, r)
	if err == nil && copied < n {
		return io.ErrUnexpectedEOF
	}
	return err
}

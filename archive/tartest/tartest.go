// Package tartest builds small in-memory image layers for tests.
//
// A layer is a list of [Entry] values, written in order by [Tar]:
//
//	layer := tartest.Tar(t,
//		tartest.Dir("etc", tartest.Mode(0o750)),
//		tartest.File("etc/passwd", "root:x:0:0"),
//		tartest.Whiteout("etc/shadow"),
//	)
//
// [Gzip] and [Zstd] wrap a layer in a compressed stream. Every entry gets
// the same default mtime so that trees built from the same entries compare
// equal.
package tartest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"path"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

// DefaultModTime is the mtime of entries built without [ModTime]:
// 2020-01-01T00:00:00Z.
var DefaultModTime = time.Unix(1577836800, 0)

// Entry is one tar entry: a header and, for regular files, its content.
// Raw, when set, is written to the stream as-is in place of the header and
// content, for malformed input that archive/tar cannot write.
type Entry struct {
	Header  tar.Header
	Content []byte
	Raw     []byte
}

// Opt changes an entry's header.
type Opt func(*Entry)

// Mode sets the permission bits, including setuid, setgid and sticky.
func Mode(mode int64) Opt { return func(e *Entry) { e.Header.Mode = mode } }

// Owner sets the numeric owner and group.
func Owner(uid, gid int) Opt {
	return func(e *Entry) { e.Header.Uid, e.Header.Gid = uid, gid }
}

// ModTime sets the mtime. A time with nanoseconds selects the PAX format,
// the only one that stores them.
func ModTime(t time.Time) Opt {
	return func(e *Entry) {
		e.Header.ModTime = t
		if t.Nanosecond() != 0 {
			e.Header.Format = tar.FormatPAX
		}
	}
}

// AccessTime sets the atime, which is written as a PAX record.
func AccessTime(t time.Time) Opt {
	return func(e *Entry) {
		e.Header.AccessTime = t
		e.Header.Format = tar.FormatPAX
	}
}

// Xattr adds an extended attribute as a SCHILY.xattr PAX record.
func Xattr(name, value string) Opt { return PAX("SCHILY.xattr."+name, value) }

// PAX adds a PAX record and selects the PAX format.
func PAX(key, value string) Opt {
	return func(e *Entry) {
		if e.Header.PAXRecords == nil {
			e.Header.PAXRecords = map[string]string{}
		}
		e.Header.PAXRecords[key] = value
		e.Header.Format = tar.FormatPAX
	}
}

// Format selects the tar format of the header.
func Format(f tar.Format) Opt { return func(e *Entry) { e.Header.Format = f } }

// Typeflag overrides the entry type.
func Typeflag(flag byte) Opt { return func(e *Entry) { e.Header.Typeflag = flag } }

func build(hdr tar.Header, content []byte, opts []Opt) Entry {
	hdr.ModTime = DefaultModTime
	e := Entry{Header: hdr, Content: content}
	for _, opt := range opts {
		opt(&e)
	}
	return e
}

// File returns a regular file entry with mode 0644.
func File(name, content string, opts ...Opt) Entry {
	hdr := tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(content))}
	return build(hdr, []byte(content), opts)
}

// Dir returns a directory entry with mode 0755. The name is written as
// given, so a trailing slash is optional.
func Dir(name string, opts ...Opt) Entry {
	return build(tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o755}, nil, opts)
}

// Symlink returns a symbolic link entry whose target is stored verbatim.
func Symlink(name, target string, opts ...Opt) Entry {
	hdr := tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777}
	return build(hdr, nil, opts)
}

// Hardlink returns a hard link entry naming target.
func Hardlink(name, target string, opts ...Opt) Entry {
	hdr := tar.Header{Typeflag: tar.TypeLink, Name: name, Linkname: target, Mode: 0o644}
	return build(hdr, nil, opts)
}

// Char returns a character device entry with mode 0666.
func Char(name string, major, minor int64, opts ...Opt) Entry {
	hdr := tar.Header{Typeflag: tar.TypeChar, Name: name, Mode: 0o666,
		Devmajor: major, Devminor: minor}
	return build(hdr, nil, opts)
}

// Block returns a block device entry with mode 0660.
func Block(name string, major, minor int64, opts ...Opt) Entry {
	hdr := tar.Header{Typeflag: tar.TypeBlock, Name: name, Mode: 0o660,
		Devmajor: major, Devminor: minor}
	return build(hdr, nil, opts)
}

// Fifo returns a named pipe entry with mode 0644.
func Fifo(name string, opts ...Opt) Entry {
	return build(tar.Header{Typeflag: tar.TypeFifo, Name: name, Mode: 0o644}, nil, opts)
}

// Whiteout returns the OCI whiteout entry that deletes target: an empty
// file named .wh.BASE in target's directory.
func Whiteout(target string, opts ...Opt) Entry {
	dir, base := path.Split(target)
	return File(dir+".wh."+base, "", opts...)
}

// Opaque returns the OCI opaque marker for dir: an empty file named
// .wh..wh..opq inside it. An empty dir names the root.
func Opaque(dir string, opts ...Opt) Entry {
	if dir != "" {
		dir += "/"
	}
	return File(dir+".wh..wh..opq", "", opts...)
}

// Raw returns an entry whose bytes are written to the stream unchanged.
func Raw(b []byte) Entry { return Entry{Raw: b} }

// Tar writes the entries as one uncompressed tar stream, ending with the
// two zero blocks of the end-of-archive marker. It fails tb on a write
// error.
func Tar(tb testing.TB, entries ...Entry) []byte {
	tb.Helper()
	b, err := Build(entries...)
	if err != nil {
		tb.Fatalf("build layer: %v", err)
	}
	return b
}

// Build is like [Tar] but returns the write error.
func Build(entries ...Entry) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		if e.Raw != nil {
			if err := tw.Flush(); err != nil {
				return nil, err
			}
			buf.Write(e.Raw)
			continue
		}
		hdr := e.Header
		if err := tw.WriteHeader(&hdr); err != nil {
			return nil, err
		}
		if _, err := tw.Write(e.Content); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Gzip compresses b as a single gzip member.
func Gzip(tb testing.TB, b []byte) []byte {
	tb.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		tb.Fatalf("gzip layer: %v", err)
	}
	if err := zw.Close(); err != nil {
		tb.Fatalf("gzip layer: %v", err)
	}
	return buf.Bytes()
}

// Zstd compresses b as a zstd stream.
func Zstd(tb testing.TB, b []byte) []byte {
	tb.Helper()
	zw, err := zstd.NewWriter(nil)
	if err != nil {
		tb.Fatalf("zstd layer: %v", err)
	}
	defer zw.Close()
	return zw.EncodeAll(b, nil)
}

// Package compression detects and decompresses the streams that carry
// container image layers: plain tar, gzip and zstd.
//
// Detection looks only at the magic bytes at the start of the stream, so a
// layer whose media type names the wrong compression still decompresses.
// Read errors from a corrupt or truncated stream wrap
// [errdefs.ErrInvalidLayer].
package compression

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/strata-containers/strata/errdefs"
	"github.com/strata-containers/strata/internal/isal"
)

// Kind is the compression of a layer stream.
type Kind int

// The kinds of compression that [DecompressStream] handles.
const (
	Uncompressed Kind = iota
	Gzip
	Zstd
)

// String returns the lower-case name of k, as used in media type suffixes.
func (k Kind) String() string {
	switch k {
	case Uncompressed:
		return "uncompressed"
	case Gzip:
		return "gzip"
	case Zstd:
		return "zstd"
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

var (
	gzipMagic = []byte{0x1f, 0x8b}
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// zstdMaxWindow caps the window a zstd frame may ask for. Image layers are
// written with the default 8 MiB window; 128 MiB leaves room for
// long-distance-matching producers while bounding decoder memory.
const zstdMaxWindow = 1 << 27

// Detect returns the compression whose magic bytes start header. Anything
// that is not gzip or zstd, including a header shorter than a magic number,
// is [Uncompressed].
func Detect(header []byte) Kind {
	switch {
	case bytes.HasPrefix(header, gzipMagic):
		return Gzip
	case bytes.HasPrefix(header, zstdMagic):
		return Zstd
	}
	return Uncompressed
}

// DecompressStream detects the compression of r by its magic bytes and
// returns a reader of the decompressed stream. The caller must close it.
//
// A gzip stream may hold several concatenated members. After a member,
// bytes that start with the gzip magic number are the next member, and
// anything else ends the stream and is read and ignored, as igzip does:
// producers pad their output with zero bytes. The decoded bytes are the
// same with any decoder when the Go decoder accepts the stream. A few
// streams that it rejects decode with the others. igzip and the library
// of [WithGzipLibrary] accept header strings of 512 bytes or more. The
// library accepts an incomplete Huffman code, and igzip a member after
// the first whose header sets a reserved flag bit. A stream that barely
// compresses goes to the Go decoder even with a program set.
//
// When r is a [FileStream] and a gzip program is set (and no library
// loaded), the program reads the file itself, unless the stream barely
// compresses: see [incompressible].
func DecompressStream(r io.Reader, opts ...Option) (io.ReadCloser, Kind, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if o.gzipLibrary && isal.Load() == nil {
		// In process, the library needs neither the file nor the check
		// for stored blocks: it reads through no pipe.
		o.gzipProgram = ""
	} else {
		o.gzipLibrary = false
	}
	if fs, ok := r.(FileStream); ok && o.gzipProgram != "" {
		if incompressible(fs.StreamFile()) {
			o.gzipProgram = ""
		} else if pr, err := startProgramOnFile(o.gzipProgram, fs); err != nil {
			return nil, Gzip, err
		} else if pr != nil {
			return pr, Gzip, nil
		}
	}
	br := bufio.NewReaderSize(r, 64<<10)
	header, err := br.Peek(len(zstdMagic))
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, Uncompressed, fmt.Errorf("read stream header: %w", err)
	}

	kind := Detect(header)
	switch kind {
	case Gzip:
		if o.gzipLibrary {
			zr, err := isal.NewReader(br)
			if err != nil {
				return nil, kind, libraryError(err)
			}
			return &isalReader{zr}, kind, nil
		}
		if o.gzipProgram != "" {
			if err := checkGzipHeader(br); err != nil {
				return nil, kind, err
			}
			pr, err := startProgram(o.gzipProgram, br)
			if err != nil {
				return nil, kind, err
			}
			return pr, kind, nil
		}
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, kind, invalid(kind, err)
		}
		zr.Multistream(false)
		return &gzipReader{br: br, zr: zr}, kind, nil
	case Zstd:
		zr, err := zstd.NewReader(br,
			zstd.WithDecoderLowmem(true),
			zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderMaxWindow(zstdMaxWindow))
		if err != nil {
			return nil, kind, fmt.Errorf("create zstd decoder: %w", err)
		}
		return &errReader{r: zr.IOReadCloser(), kind: kind}, kind, nil
	}
	return io.NopCloser(br), kind, nil
}

// A FileStream is a stream that an open file holds from its current offset
// to its end. [DecompressStream] with [WithGzipProgram] hands the file to
// the program as its standard input, so that the compressed bytes reach
// the program without a copy through a pipe. It calls StreamRead with the
// file's offset as the program reads on, and with the file's size once the
// program read the whole stream. Read must not have been called before.
type FileStream interface {
	io.Reader
	StreamFile() *os.File
	StreamRead(offset int64)
}

func invalid(kind Kind, err error) error {
	return fmt.Errorf("read %s stream: %w: %w", kind, err, errdefs.ErrInvalidLayer)
}

// errReader classifies every read error other than io.EOF as an invalid
// layer.
type errReader struct {
	r    io.ReadCloser
	kind Kind
}

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF {
		err = invalid(e.kind, err)
	}
	return n, err
}

func (e *errReader) Close() error { return e.r.Close() }

// gzipReader reads gzip members one at a time so that it can tell a new
// member from trailing padding, which Go's multistream mode rejects as an
// invalid header.
type gzipReader struct {
	br  *bufio.Reader
	zr  *gzip.Reader
	eof bool
}

func (g *gzipReader) Read(p []byte) (int, error) {
	for !g.eof {
		n, err := g.zr.Read(p)
		if err == nil || (err == io.EOF && n > 0) {
			return n, nil
		}
		if err != io.EOF {
			return n, invalid(Gzip, err)
		}
		if err := g.nextMember(); err != nil {
			return 0, err
		}
	}
	return 0, io.EOF
}

// nextMember starts the next gzip member, or sets eof when the bytes left
// do not start one. A lone first byte of the magic number at the end of
// the stream is a truncated member.
func (g *gzipReader) nextMember() error {
	header, err := g.br.Peek(len(gzipMagic))
	if err != nil && !errors.Is(err, io.EOF) {
		return invalid(Gzip, err)
	}
	switch {
	case len(header) == 0:
		g.eof = true
		return nil
	case bytes.Equal(header, gzipMagic):
		if err := g.zr.Reset(g.br); err != nil {
			return invalid(Gzip, err)
		}
		g.zr.Multistream(false)
		return nil
	case len(header) == 1 && header[0] == gzipMagic[0]:
		return invalid(Gzip, io.ErrUnexpectedEOF)
	}
	if _, err := io.Copy(io.Discard, g.br); err != nil {
		return invalid(Gzip, err)
	}
	g.eof = true
	return nil
}

func (g *gzipReader) Close() error { return g.zr.Close() }

package isal

import (
	"errors"
	"fmt"
	"io"
	"runtime"
	"unsafe"

	"github.com/ebitengine/purego"
)

// Layout of struct inflate_state in libisal.so.2 on 64-bit targets, from
// its igzip_lib.h: the fields up to read_in_length open the struct, and
// block_state and crc_flag follow the Huffman tables.
const (
	stateSize      = 87368
	offBlockState  = 21160
	offCRCFlag     = 21172
	blockFinish    = 5 // ISAL_BLOCK_FINISH
	wrapperGzip    = 1 // ISAL_GZIP: parse the header, check CRC-32 and size
	inflateOK      = 0 // ISAL_DECOMP_OK
	inflateEndIn   = 1 // ISAL_END_INPUT
	inflateOutFull = 2 // ISAL_OUT_OVERFLOW
)

// stateHead is the start of struct inflate_state.
type stateHead struct {
	nextOut      uintptr
	availOut     uint32
	totalOut     uint32
	nextIn       uintptr
	readIn       uint64
	availIn      uint32
	readInLength int32
}

// inputSize is the size of the buffer of compressed bytes.
const inputSize = 256 << 10

var gzipMagic = [2]byte{0x1f, 0x8b}

// ErrInvalid is wrapped by the errors a [Reader] returns for a stream that
// is not valid gzip, such as a bad block, a wrong checksum or a header the
// reader does not accept.
var ErrInvalid = errors.New("invalid gzip stream")

// Reader inflates a gzip stream of one or more members. After a member,
// bytes that start with the gzip magic number are the next member and
// anything else ends the stream: the reader reads it to the end and
// ignores it, as producers pad layers with zero bytes.
type Reader struct {
	lib   *library
	src   io.Reader
	state []byte
	in    []byte
	// pin keeps state and in at their addresses, which the library holds
	// between calls.
	pin    runtime.Pinner
	srcEOF bool
	err    error
}

// NewReader returns a reader of the inflated gzip stream src. It fails
// with [ErrUnavailable] when [Load] fails. The caller must call Close.
func NewReader(src io.Reader) (*Reader, error) {
	if err := Load(); err != nil {
		return nil, err
	}
	return newReader(lib, src)
}

func newReader(l *library, src io.Reader) (*Reader, error) {
	r := &Reader{lib: l, src: src, state: make([]byte, stateSize), in: make([]byte, inputSize)}
	r.pin.Pin(&r.state[0])
	r.pin.Pin(&r.in[0])
	purego.SyscallN(l.inflateInit, r.statePtr())
	r.setInput(0, 0)
	if err := r.startMember(); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

func (r *Reader) statePtr() uintptr { return uintptr(unsafe.Pointer(&r.state[0])) }

func (r *Reader) head() *stateHead { return (*stateHead)(unsafe.Pointer(&r.state[0])) }

func (r *Reader) field(off int) *uint32 { return (*uint32)(unsafe.Pointer(&r.state[off])) }

// input returns the compressed bytes that the library has not read yet.
func (r *Reader) input() []byte {
	h := r.head()
	start := int(h.nextIn - uintptr(unsafe.Pointer(&r.in[0])))
	return r.in[start : start+int(h.availIn)]
}

func (r *Reader) setInput(start, n int) {
	h := r.head()
	h.nextIn = uintptr(unsafe.Pointer(&r.in[start]))
	h.availIn = uint32(n)
}

// fill reads from src until at least want bytes are buffered or src ends.
func (r *Reader) fill(want int) error {
	n := copy(r.in, r.input())
	for n < want && !r.srcEOF {
		m, err := r.src.Read(r.in[n:])
		n += m
		if err == io.EOF {
			r.srcEOF = true
		} else if err != nil {
			r.setInput(0, n)
			return fmt.Errorf("read compressed stream: %w", err)
		}
	}
	r.setInput(0, n)
	return nil
}

// startMember checks the first bytes of a gzip member header as Go's
// compress/gzip does, since the library accepts reserved flag bits, and
// sets the state to parse the member.
func (r *Reader) startMember() error {
	if err := r.fill(4); err != nil {
		return err
	}
	h := r.input()
	if len(h) < 4 {
		return fmt.Errorf("gzip header: %w: %w", io.ErrUnexpectedEOF, ErrInvalid)
	}
	if h[0] != gzipMagic[0] || h[1] != gzipMagic[1] || h[2] != 8 || h[3]&0xe0 != 0 {
		return fmt.Errorf("gzip header % x: %w", h[:4], ErrInvalid)
	}
	*r.field(offCRCFlag) = wrapperGzip
	return nil
}

// Read inflates into p.
func (r *Reader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	for {
		h := r.head()
		if h.availIn == 0 && !r.srcEOF {
			if err := r.fill(len(r.in)); err != nil {
				return 0, r.fail(err)
			}
		}
		before := h.availIn
		n, ret := r.inflate(p)
		if ret != inflateOK && ret != inflateEndIn && ret != inflateOutFull {
			return n, r.fail(decodeError(ret))
		}
		if *r.field(offBlockState) == blockFinish {
			if err := r.nextMember(); err != nil {
				return n, r.fail(err)
			}
		} else if n == 0 && h.availIn == before {
			if h.availIn != 0 {
				return 0, r.fail(fmt.Errorf("inflate made no progress (code %d): %w", ret, ErrInvalid))
			}
			if r.srcEOF {
				return 0, r.fail(fmt.Errorf("%w: %w", io.ErrUnexpectedEOF, ErrInvalid))
			}
		}
		if n > 0 {
			return n, nil
		}
		if r.err != nil {
			return 0, r.err
		}
	}
}

// inflate runs the library on p and returns the bytes it wrote there.
func (r *Reader) inflate(p []byte) (int, int32) {
	var pin runtime.Pinner
	pin.Pin(&p[0])
	defer pin.Unpin()
	h := r.head()
	h.nextOut = uintptr(unsafe.Pointer(&p[0]))
	h.availOut = uint32(min(len(p), 1<<30))
	ret, _, _ := purego.SyscallN(r.lib.inflate, r.statePtr())
	n := int(uint32(min(len(p), 1<<30)) - h.availOut)
	h.nextOut, h.availOut = 0, 0
	return n, int32(ret)
}

// nextMember runs after a member ended: it starts the next one when the
// bytes left begin with the gzip magic number, and otherwise reads src to
// its end and sets r.err to io.EOF.
func (r *Reader) nextMember() error {
	if err := r.fill(len(gzipMagic)); err != nil {
		return err
	}
	rest := r.input()
	switch {
	case len(rest) == 0:
		r.err = io.EOF
		return nil
	case len(rest) >= 2 && rest[0] == gzipMagic[0] && rest[1] == gzipMagic[1]:
		// Reset clears the input fields, so they are set again after.
		h := r.head()
		next, avail := h.nextIn, h.availIn
		purego.SyscallN(r.lib.inflateReset, r.statePtr())
		h.nextIn, h.availIn = next, avail
		return r.startMember()
	case len(rest) == 1 && rest[0] == gzipMagic[0]:
		return fmt.Errorf("gzip header: %w: %w", io.ErrUnexpectedEOF, ErrInvalid)
	}
	r.setInput(0, 0)
	if _, err := io.Copy(io.Discard, r.src); err != nil {
		return fmt.Errorf("read compressed stream: %w", err)
	}
	r.srcEOF = true
	r.err = io.EOF
	return nil
}

func (r *Reader) fail(err error) error {
	r.err = err
	return err
}

// decodeError names an error code of isal_inflate.
func decodeError(code int32) error {
	msg := map[int32]string{
		-1: "invalid deflate block",
		-2: "invalid deflate symbol",
		-3: "invalid lookback distance",
		-4: "invalid gzip wrapper",
		-5: "unsupported compression method",
		-6: "wrong checksum",
	}[code]
	if msg == "" {
		msg = fmt.Sprintf("inflate error %d", code)
	}
	return fmt.Errorf("%s: %w", msg, ErrInvalid)
}

// Close releases the buffers. It does not close the source.
func (r *Reader) Close() error {
	r.pin.Unpin()
	if r.err == nil || r.err == io.EOF {
		r.err = errClosed
	}
	return nil
}

var errClosed = errors.New("read after close")

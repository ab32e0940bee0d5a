//go:build linux && !nolibisal

package isal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"runtime"
	"unsafe"

	"github.com/ebitengine/purego"
)

// Layout of struct inflate_state in libisal.so.2 on 64-bit targets, from
// its igzip_lib.h. The fields up to read_in_length open the struct, and
// block_state and crc_flag follow the Huffman tables.
//
// NOTE: the offsets were read from ISA-L 2.30 (Debian 12) only. For other
// builds of the same soname, the load check in selfTest is the only guard.
const (
	stateSize     = 87368
	stateWords    = stateSize / 8
	offBlockState = 21160
	offCRCFlag    = 21172
	offCRC        = 21176
	blockFinish   = 5 // ISAL_BLOCK_FINISH
	// ISAL_GZIP_NO_HDR_VER: inflate raw deflate data, then check the
	// CRC-32 and size of the gzip trailer after it.
	wrapperGzipNoHeader = 6
	inflateOK           = 0 // ISAL_DECOMP_OK
	inflateEndIn        = 1 // ISAL_END_INPUT
	inflateOutFull      = 2 // ISAL_OUT_OVERFLOW
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

// Reader inflates a gzip stream of one or more members. After a member,
// bytes that start with the gzip magic number are the next member and
// anything else ends the stream: the reader reads it to the end and
// ignores it, as producers pad layers with zero bytes.
type Reader struct {
	lib *library
	src io.Reader
	// state holds struct inflate_state, as words for its alignment.
	state []uint64
	in    []byte
	// ended is set when the library finished a member. The next Read
	// then looks for another member.
	ended  bool
	srcEOF bool
	err    error
}

// NewReader returns a reader of the inflated gzip stream src. It fails
// with [ErrUnavailable] when [Load] fails. Close ends the reader.
func NewReader(src io.Reader) (*Reader, error) {
	if err := Load(); err != nil {
		return nil, err
	}
	return newReader(lib, src, make([]uint64, stateWords))
}

// newReader returns a reader that keeps the library's state in state, at
// least stateWords long.
func newReader(l *library, src io.Reader, state []uint64) (*Reader, error) {
	r := &Reader{lib: l, src: src, state: state, in: make([]byte, inputSize)}
	r.call(l.inflateInit)
	r.setInput(0, 0)
	if err := r.startMember(); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// call runs fn on the state. The state and the input buffer are pinned
// for the call, because the library reads them through pointers.
func (r *Reader) call(fn uintptr) int32 {
	var pin runtime.Pinner
	pin.Pin(&r.state[0])
	pin.Pin(&r.in[0])
	defer pin.Unpin()
	ret, _, _ := purego.SyscallN(fn, uintptr(unsafe.Pointer(&r.state[0])))
	return int32(ret)
}

func (r *Reader) head() *stateHead { return (*stateHead)(unsafe.Pointer(&r.state[0])) }

// field returns the 32-bit field of the state at byte offset off.
func (r *Reader) field(off uintptr) *uint32 {
	return (*uint32)(unsafe.Add(unsafe.Pointer(&r.state[0]), off))
}

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
	if int(r.head().availIn) >= want {
		return nil
	}
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

// Flags of a gzip member header (RFC 1952).
const (
	flagHCRC     = 1 << 1
	flagExtra    = 1 << 2
	flagName     = 1 << 3
	flagComment  = 1 << 4
	flagReserved = 0xe0
)

// startMember reads a gzip member header with the checks of Go's
// compress/gzip. It then sets the library to inflate the deflate data that
// follows and to check the trailer after it. The header is parsed here,
// not by the library, because the library sometimes failed on valid
// streams when it received the header a few bytes per call.
func (r *Reader) startMember() error {
	var hdr [10]byte
	crc, err := r.readHeader(hdr[:], 0)
	if err != nil {
		return err
	}
	if hdr[0] != gzipMagic[0] || hdr[1] != gzipMagic[1] || hdr[2] != 8 || hdr[3]&flagReserved != 0 {
		return fmt.Errorf("invalid gzip header % x: %w", hdr[:4], ErrInvalid)
	}
	flags := hdr[3]
	if flags&flagExtra != 0 {
		var n [2]byte
		if crc, err = r.readHeader(n[:], crc); err != nil {
			return err
		}
		if crc, err = r.skipHeader(int(binary.LittleEndian.Uint16(n[:])), crc); err != nil {
			return err
		}
	}
	for _, f := range []byte{flagName, flagComment} {
		if flags&f == 0 {
			continue
		}
		if crc, err = r.skipString(crc); err != nil {
			return err
		}
	}
	if flags&flagHCRC != 0 {
		var sum [2]byte
		if _, err := r.readHeader(sum[:], 0); err != nil {
			return err
		}
		if binary.LittleEndian.Uint16(sum[:]) != uint16(crc) {
			return fmt.Errorf("gzip header checksum mismatch: %w", ErrInvalid)
		}
	}
	*r.field(offCRCFlag) = wrapperGzipNoHeader
	return nil
}

// headerInput returns the buffered input, reading more when it is empty,
// and fails when the stream ends inside a header.
func (r *Reader) headerInput() ([]byte, error) {
	if err := r.fill(1); err != nil {
		return nil, err
	}
	in := r.input()
	if len(in) == 0 {
		return nil, fmt.Errorf("gzip header: %w: %w", io.ErrUnexpectedEOF, ErrInvalid)
	}
	return in, nil
}

// readHeader fills b from the input and returns crc updated with it.
func (r *Reader) readHeader(b []byte, crc uint32) (uint32, error) {
	for n := 0; n < len(b); {
		in, err := r.headerInput()
		if err != nil {
			return crc, err
		}
		m := copy(b[n:], in)
		r.consume(m)
		n += m
	}
	return crc32.Update(crc, crc32.IEEETable, b), nil
}

// skipHeader skips n bytes of the header and returns crc updated with
// them.
func (r *Reader) skipHeader(n int, crc uint32) (uint32, error) {
	for n > 0 {
		in, err := r.headerInput()
		if err != nil {
			return crc, err
		}
		in = in[:min(n, len(in))]
		crc = crc32.Update(crc, crc32.IEEETable, in)
		r.consume(len(in))
		n -= len(in)
	}
	return crc, nil
}

// skipString skips a zero-terminated string of the header and returns crc
// updated with it.
func (r *Reader) skipString(crc uint32) (uint32, error) {
	for {
		in, err := r.headerInput()
		if err != nil {
			return crc, err
		}
		if i := bytes.IndexByte(in, 0); i >= 0 {
			crc = crc32.Update(crc, crc32.IEEETable, in[:i+1])
			r.consume(i + 1)
			return crc, nil
		}
		crc = crc32.Update(crc, crc32.IEEETable, in)
		r.consume(len(in))
	}
}

// consume drops the first n bytes of the input.
func (r *Reader) consume(n int) {
	h := r.head()
	h.nextIn += uintptr(n)
	h.availIn -= uint32(n)
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
		if r.ended {
			if err := r.nextMember(); err != nil {
				return 0, r.fail(err)
			}
			if r.err != nil {
				return 0, r.err
			}
		}
		h := r.head()
		if h.availIn == 0 && !r.srcEOF {
			if err := r.fill(1); err != nil {
				return 0, r.fail(err)
			}
		}
		before := h.availIn
		n, ret := r.inflate(p)
		if ret != inflateOK && ret != inflateEndIn && ret != inflateOutFull {
			return n, r.fail(decodeError(ret))
		}
		if *r.field(offBlockState) == blockFinish {
			r.ended = true
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
	}
}

// inflate runs the library on p and returns the bytes it wrote there.
func (r *Reader) inflate(p []byte) (int, int32) {
	var pin runtime.Pinner
	pin.Pin(&p[0])
	defer pin.Unpin()
	size := uint32(min(len(p), 1<<30))
	h := r.head()
	h.nextOut, h.availOut = uintptr(unsafe.Pointer(&p[0])), size
	ret := r.call(r.lib.inflate)
	n := int(size - h.availOut)
	h.nextOut, h.availOut = 0, 0
	return n, ret
}

// nextMember starts the next member when the bytes after the one that
// ended begin with the gzip magic number. Otherwise it reads src to its
// end and sets r.err to io.EOF.
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
		r.call(r.lib.inflateReset)
		h.nextIn, h.availIn = next, avail
		r.ended = false
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

// inflateErrors maps the error codes of isal_inflate to messages.
var inflateErrors = map[int32]string{
	-1: "invalid deflate block",
	-2: "invalid deflate symbol",
	-3: "invalid lookback distance",
	-4: "invalid gzip wrapper",
	-5: "unsupported compression method",
	-6: "checksum mismatch",
}

// decodeError returns the error for an error code of isal_inflate.
func decodeError(code int32) error {
	msg := inflateErrors[code]
	if msg == "" {
		msg = fmt.Sprintf("inflate error %d", code)
	}
	return fmt.Errorf("%s: %w", msg, ErrInvalid)
}

// Close makes later reads fail. It does not close the source.
func (r *Reader) Close() error {
	if r.err == nil || r.err == io.EOF {
		r.err = errClosed
	}
	return nil
}

var errClosed = errors.New("read after close")

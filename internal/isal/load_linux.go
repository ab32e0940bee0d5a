//go:build linux && !nolibisal

package isal

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"sync"
	"unsafe"

	"github.com/ebitengine/purego"
)

// library is the opened library: its handle and the addresses of the
// functions this package calls.
type library struct {
	handle       uintptr
	inflateInit  uintptr
	inflateReset uintptr
	inflate      uintptr
}

var (
	loadOnce sync.Once
	lib      *library
	loadErr  error
)

// Load opens the library once and checks that it inflates a sample
// stream. It returns nil when [NewReader] can be used, and an error
// wrapping [ErrUnavailable] that gives the reason otherwise.
func Load() error {
	loadOnce.Do(func() {
		l, err := open()
		if err == nil {
			if err = selfTest(l); err != nil {
				purego.Dlclose(l.handle)
			}
		}
		if err != nil {
			loadErr = fmt.Errorf("%w: %w", ErrUnavailable, err)
			return
		}
		lib = l
	})
	return loadErr
}

func open() (*library, error) {
	h, err := purego.Dlopen(Soname, purego.RTLD_NOW|purego.RTLD_LOCAL)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", Soname, err)
	}
	l := library{handle: h}
	for _, f := range []struct {
		name string
		addr *uintptr
	}{
		{"isal_inflate_init", &l.inflateInit},
		{"isal_inflate_reset", &l.inflateReset},
		{"isal_inflate", &l.inflate},
	} {
		if *f.addr, err = purego.Dlsym(h, f.name); err != nil {
			purego.Dlclose(h)
			return nil, fmt.Errorf("look up %s in %s: %w", f.name, Soname, err)
		}
	}
	return &l, nil
}

// guardWords is the size, in words, of the pattern that the check places
// after the state. A library whose state is larger writes into it.
const guardWords = 8 << 10

const guardPattern = 0x5a5a_a5a5_c3c3_3c3c

// selfTest inflates a two-member gzip stream of mixed text and random
// bytes, in reads of odd sizes, and compares the result with the input.
// With a wrong field offset the library would not find its input or the
// reader would not see the end of a member, so the output would differ.
// It also checks that the CRC-32 field holds the last member's checksum,
// that nothing was written past the state, and that a wrong checksum is
// rejected.
func selfTest(l *library) error {
	if unsafe.Sizeof(uintptr(0)) != 8 {
		return errors.New("the state layout is known only for 64-bit targets")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	want := make([]byte, 0, 48<<10)
	for len(want) < 32<<10 {
		want = append(want, "a line of the libisal check, value "...)
		want = append(want, byte('0'+rng.IntN(10)), byte('0'+rng.IntN(10)), '\n')
	}
	for len(want) < 48<<10 {
		want = append(want, byte(rng.Uint32()))
	}

	parts := [][]byte{want[:24<<10], want[24<<10:]}
	var z bytes.Buffer
	for _, part := range parts {
		zw, _ := gzip.NewWriterLevel(&z, gzip.BestSpeed)
		zw.Write(part)
		zw.Close()
	}
	state := make([]uint64, stateWords+guardWords)
	for i := stateWords; i < len(state); i++ {
		state[i] = guardPattern
	}
	got, r, err := inflateAll(l, z.Bytes(), state)
	if err != nil {
		return fmt.Errorf("inflate the check stream: %w", err)
	}
	for i := stateWords; i < len(state); i++ {
		if state[i] != guardPattern {
			return fmt.Errorf("the library wrote past the %d bytes of its state", stateSize)
		}
	}
	if !bytes.Equal(got, want) {
		return fmt.Errorf("inflating the check stream gave %d bytes that differ from the %d expected",
			len(got), len(want))
	}
	if crc := *r.field(offCRC); crc != crc32.ChecksumIEEE(parts[1]) {
		return fmt.Errorf("CRC-32 field is %#x, expected the last member's %#x", crc, crc32.ChecksumIEEE(parts[1]))
	}

	bad := bytes.Clone(z.Bytes())
	bad[len(bad)-8] ^= 1
	if _, _, err := inflateAll(l, bad, make([]uint64, stateWords)); !errors.Is(err, ErrInvalid) {
		return fmt.Errorf("a stream with a checksum mismatch returned error %v, expected an invalid stream", err)
	}
	return nil
}

// inflateAll inflates z with state in reads of an odd size.
func inflateAll(l *library, z []byte, state []uint64) ([]byte, *Reader, error) {
	r, err := newReader(l, bytes.NewReader(z), state)
	if err != nil {
		return nil, nil, err
	}
	defer r.Close()
	var got []byte
	buf := make([]byte, 4093)
	for {
		n, err := r.Read(buf)
		got = append(got, buf[:n]...)
		if err == io.EOF {
			return got, r, nil
		}
		if err != nil {
			return got, r, err
		}
	}
}

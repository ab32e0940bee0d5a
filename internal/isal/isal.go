// Package isal inflates gzip streams in process with Intel's ISA-L
// (libisal.so.2, Debian package libisal2), which it loads at run time, so
// that strata builds and runs without it.
//
// igzip, the program, decodes with the same library, but its output
// crosses a pipe: a copy into the kernel and one out of it for every
// decompressed byte, and a process for every layer. Decoding in process
// writes straight into the caller's buffer.
//
// The library is called through [github.com/ebitengine/purego], with no
// cgo. Its inflate state is a C struct that the caller allocates; this
// package holds the offsets of the few fields it uses for soname
// libisal.so.2 and checks them at load time by inflating a sample stream,
// so a library whose layout differs is reported as not loadable instead of
// being misused.
package isal

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"

	"github.com/ebitengine/purego"
)

// Soname is the library that [Load] opens.
const Soname = "libisal.so.2"

// ErrUnavailable is returned by [Load] and [NewReader] when the library
// does not load or fails the load-time check.
var ErrUnavailable = errors.New("libisal is not available")

// library holds the addresses of the functions this package calls.
type library struct {
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
			err = selfTest(l)
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
	var l library
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

// selfTest inflates a two-member gzip stream of mixed text and random
// bytes, in reads of odd sizes, and compares the result with the input.
// With a wrong field offset the library would not find its input or the
// reader would not see the end of a member, so the output would differ.
func selfTest(l *library) error {
	rng := rand.New(rand.NewPCG(1, 2))
	want := make([]byte, 0, 48<<10)
	for len(want) < 32<<10 {
		want = append(want, "a line of the libisal check, value "...)
		want = append(want, byte('0'+rng.IntN(10)), byte('0'+rng.IntN(10)), '\n')
	}
	for len(want) < 48<<10 {
		want = append(want, byte(rng.Uint32()))
	}

	var z bytes.Buffer
	for _, part := range [][]byte{want[:24<<10], want[24<<10:]} {
		zw, _ := gzip.NewWriterLevel(&z, gzip.BestSpeed)
		zw.Write(part)
		zw.Close()
	}

	r, err := newReader(l, bytes.NewReader(z.Bytes()))
	if err != nil {
		return err
	}
	defer r.Close()
	got := make([]byte, 0, len(want))
	buf := make([]byte, 4093)
	for {
		n, err := r.Read(buf)
		got = append(got, buf[:n]...)
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("inflate the check stream: %w", err)
		}
	}
	if !bytes.Equal(got, want) {
		return fmt.Errorf("inflating the check stream gave %d bytes that differ from the %d expected",
			len(got), len(want))
	}
	return nil
}

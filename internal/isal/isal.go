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
// cgo. Its inflate state is a C struct that the caller allocates. This
// package contains the offsets of the few fields it uses for soname
// libisal.so.2, on 64-bit Linux only. At load it checks them by inflating
// a sample, with a guard after the state that must stay intact, so a
// library whose layout differs is reported as not loadable instead of
// being misused.
package isal

import "errors"

// Soname is the library that [Load] opens.
const Soname = "libisal.so.2"

// ErrUnavailable is returned by [Load] and [NewReader] when the library
// does not load or fails the load-time check.
var ErrUnavailable = errors.New("libisal is not available")

// ErrInvalid is wrapped by the errors a [Reader] returns for a stream that
// is not valid gzip, such as a bad block, a wrong checksum or a header the
// reader does not accept.
var ErrInvalid = errors.New("invalid gzip stream")

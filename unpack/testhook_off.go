//go:build !strata_testhooks

package unpack

// killPoint marks a point where a crash test may kill the process. It does
// nothing unless the binary is built with the strata_testhooks tag; see
// testhook_on.go.
func killPoint(string) {}

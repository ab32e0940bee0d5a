package remote

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"syscall"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/strata-containers/strata/errdefs"
)

// Classes of registry refusal. They sit beside the errdefs classes that
// Pull also returns: errdefs.ErrNotFound for a 404, errdefs.ErrDigestMismatch
// for wrong bytes, errdefs.ErrUnsupported for Docker schema 1.
var (
	// ErrUnauthorized means the registry responded 401 because it needs
	// credentials or rejected the ones sent.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrDenied means the registry responded 403: it accepted the
	// credentials, but they give no pull access to the repository.
	ErrDenied = errors.New("access denied")
	// ErrTLS means the registry's TLS certificate could not be verified,
	// or the registry does not speak TLS.
	ErrTLS = errors.New("TLS verification failed")
)

// statusCode returns the HTTP status of a registry error, or 0.
func statusCode(err error) int {
	var terr *transport.Error
	if errors.As(err, &terr) {
		return terr.StatusCode
	}
	return 0
}

// temporary reports whether err may pass when the request is tried again:
// a 5xx, 408 or 429 status, or a connection refused, reset, cut short or
// timed out. Failures of ctx are never temporary.
func temporary(ctx context.Context, err error) bool {
	if ctx.Err() != nil || errors.Is(err, context.Canceled) {
		return false
	}
	if code := statusCode(err); code != 0 {
		return code >= 500 || code == http.StatusRequestTimeout || code == http.StatusTooManyRequests
	}
	if tlsFailure(err) || errors.Is(err, errPlainHTTP) {
		return false
	}
	var nerr net.Error
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.EPIPE), errors.Is(err, errShortBody):
		return true
	case errors.As(err, &nerr):
		return true
	}
	return false
}

// tlsFailure reports whether err comes from verifying a certificate or
// from an HTTPS request to a plain HTTP server.
func tlsFailure(err error) bool {
	var (
		unknown  x509.UnknownAuthorityError
		invalid  x509.CertificateInvalidError
		hostname x509.HostnameError
		verify   *tls.CertificateVerificationError
		record   tls.RecordHeaderError
	)
	return errors.As(err, &unknown) || errors.As(err, &invalid) || errors.As(err, &hostname) ||
		errors.As(err, &verify) || errors.As(err, &record)
}

// classify wraps a failed request's err with what was being done, the
// class of the failure and advice on what to check.
func classify(ref Reference, what string, err error) error {
	switch code := statusCode(err); {
	case code == http.StatusUnauthorized:
		return fmt.Errorf("%s: registry %s requires valid credentials for %s: check --creds, or the "+
			"entry for %s in ~/.docker/config.json or $DOCKER_CONFIG/config.json: %w: %w",
			what, ref.Registry(), ref.Repository(), ref.Registry(), ErrUnauthorized, err)
	case code == http.StatusForbidden:
		return fmt.Errorf("%s: registry %s denied pull access to %s: check that the account may "+
			"pull this repository: %w: %w", what, ref.Registry(), ref.Repository(), ErrDenied, err)
	case code == http.StatusNotFound:
		return fmt.Errorf("%s: not found on registry %s: check the repository name and the tag "+
			"or digest of %s: %w: %w", what, ref.Registry(), ref, errdefs.ErrNotFound, err)
	case tlsFailure(err):
		return fmt.Errorf("%s: verify the TLS certificate of registry %s: pass the CA that signed "+
			"it with --ca-file, or --insecure to skip verification: %w: %w",
			what, ref.Registry(), ErrTLS, err)
	case errors.Is(err, errPlainHTTP):
		return fmt.Errorf("%s: registry %s responds only over plain HTTP; pass --insecure "+
			"to allow it: %w: %w", what, ref.Registry(), ErrTLS, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

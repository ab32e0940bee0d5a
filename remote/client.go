package remote

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/strata-containers/strata/errdefs"
	"github.com/strata-containers/strata/log"
)

// client sends authenticated requests to one repository of a registry.
type client struct {
	ref  Reference
	repo name.Repository
	http *http.Client
	cfg  *config
	// transferred counts blob bytes received, for [Result].
	transferred atomic.Int64
}

// newClient pings the registry and sets up authentication with
// go-containerregistry's transport, which handles basic auth and bearer
// token exchange.
func newClient(ctx context.Context, ref Reference, cfg *config) (*client, error) {
	base, err := baseTransport(cfg)
	if err != nil {
		return nil, err
	}
	repo := ref.repo
	if cfg.insecure {
		reg, err := name.NewRegistry(repo.RegistryStr(), name.Insecure)
		if err != nil {
			return nil, fmt.Errorf("parse registry %s: %w: %w", repo.RegistryStr(), errdefs.ErrInvalidArgument, err)
		}
		repo = reg.Repo(repo.RepositoryStr())
	}
	auth, err := authenticator(ctx, repo, cfg)
	if err != nil {
		return nil, err
	}

	var rt http.RoundTripper
	err = retry(ctx, cfg, "connect to registry "+ref.Registry(), func() error {
		var err error
		rt, err = transport.NewWithContext(ctx, repo.Registry, auth, base,
			[]string{repo.Scope(transport.PullScope)})
		return err
	})
	if err != nil {
		return nil, classify(ref, "connect to registry "+ref.Registry(), err)
	}
	return &client{ref: ref, repo: repo, http: &http.Client{Transport: rt}, cfg: cfg}, nil
}

// authenticator returns the credentials for repo: those of
// WithCredentials, else those the Docker config file holds for the
// registry, else anonymous access.
func authenticator(ctx context.Context, repo name.Repository, cfg *config) (authn.Authenticator, error) {
	if cfg.hasCreds {
		return authn.FromConfig(authn.AuthConfig{Username: cfg.username, Password: cfg.password}), nil
	}
	auth, err := authn.Resolve(ctx, authn.DefaultKeychain, repo)
	if err != nil {
		return nil, fmt.Errorf("read credentials for %s from the Docker config file: %w", repo.RegistryStr(), err)
	}
	if auth == authn.Anonymous {
		log.G(ctx).Debug("no credentials for registry, pulling anonymously", "registry", repo.RegistryStr())
	}
	return auth, nil
}

// baseTransport returns the HTTP transport below authentication: TLS with
// the system roots and any CA files, or without verification when
// insecure. Unless insecure, it rejects plain HTTP requests.
func baseTransport(cfg *config) (http.RoundTripper, error) {
	t := http.DefaultTransport.(*http.Transport).Clone()
	// Blob bytes must reach the digester exactly as the registry stores
	// them, and the Range offsets count those bytes.
	t.DisableCompression = true
	t.ResponseHeaderTimeout = time.Minute
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.insecure {
		tc.InsecureSkipVerify = true
	} else if len(cfg.caFiles) > 0 {
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		for _, f := range cfg.caFiles {
			pem, err := os.ReadFile(f)
			if err != nil {
				return nil, fmt.Errorf("read CA file: %w", err)
			}
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("read CA file %s: no PEM certificate in it: %w", f, errdefs.ErrInvalidArgument)
			}
		}
		tc.RootCAs = pool
	}
	t.TLSClientConfig = tc
	if cfg.insecure {
		return t, nil
	}
	return httpsOnly{t}, nil
}

// errPlainHTTP is returned for plain HTTP requests without WithInsecure.
var errPlainHTTP = errors.New("plain HTTP is not allowed without --insecure")

// httpsOnly rejects requests that are not HTTPS. go-containerregistry
// falls back to plain HTTP for loopback and private addresses on its own,
// which strata allows only with WithInsecure.
type httpsOnly struct{ inner http.RoundTripper }

func (h httpsOnly) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != "https" {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, fmt.Errorf("%s %s: %w", req.Method, req.URL.Redacted(), errPlainHTTP)
	}
	return h.inner.RoundTrip(req)
}

// url returns the URL of a registry API path under the repository, such as
// "blobs/sha256:...". The scheme is replaced by go-containerregistry's
// transport with the one the registry responded on.
func (c *client) url(path string) string {
	return fmt.Sprintf("%s://%s/v2/%s/%s", c.repo.Scheme(), c.repo.RegistryStr(), c.repo.RepositoryStr(), path)
}

// get sends a GET request with the headers, and returns the response when
// its status is one of ok. Other statuses return the registry's error
// decoded by go-containerregistry, as a *transport.Error.
func (c *client) get(ctx context.Context, path string, header http.Header, ok ...int) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url(path), nil)
	if err != nil {
		return nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	if err := transport.CheckError(resp, ok...); err != nil {
		resp.Body.Close()
		return nil, err
	}
	return resp, nil
}

// retry calls fn until it succeeds, fails for a reason that does not pass,
// or has been tried cfg.retryAttempts times, waiting longer between tries.
func retry(ctx context.Context, cfg *config, what string, fn func() error) error {
	delay := cfg.retryDelay
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil || attempt >= cfg.retryAttempts || !temporary(ctx, err) {
			return err
		}
		log.G(ctx).Info("retry after a transient failure", "op", what,
			"attempt", attempt, "delay", delay, "error", err)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		delay = min(2*delay, maxRetryDelay)
	}
}

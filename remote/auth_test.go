package remote_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strata-containers/strata/internal/testimages"
	"github.com/strata-containers/strata/remote"
	"github.com/strata-containers/strata/remote/internal/registrytest"
)

const (
	testUser     = "strata"
	testPassword = "s3cret-pass"
)

// authRegistry starts a registry with TLS from a new CA and htpasswd basic
// auth, and pushes busybox to it as x/busybox:1.
func authRegistry(t *testing.T) (registrytest.CA, string) {
	t.Helper()
	registrytest.Requires(t)
	dir := t.TempDir()
	ca := registrytest.NewCA(t, dir)
	htpasswd := filepath.Join(dir, "htpasswd")
	registrytest.WriteHtpasswd(t, htpasswd, testUser, testPassword)
	reg := registrytest.Start(t, registrytest.WithTLS(ca.ServerCert, ca.ServerKey),
		registrytest.WithHtpasswd(htpasswd))
	ref := reg.Host + "/x/busybox:1"
	registrytest.Push(t, "oci:"+testimages.Path(t, "busybox")+":latest", ref,
		"--dest-creds", testUser+":"+testPassword)
	return ca, ref
}

func TestPullBasicAuthTLS(t *testing.T) {
	ca, ref := authRegistry(t)
	// No Docker config file unless a case writes one.
	t.Setenv("HOME", t.TempDir())
	t.Setenv("DOCKER_CONFIG", t.TempDir())

	cases := []struct {
		name    string
		opts    []remote.Opt
		wantErr error
	}{
		{"anonymous", []remote.Opt{remote.WithCAFile(ca.CertFile)}, remote.ErrUnauthorized},
		{"wrong password", []remote.Opt{remote.WithCAFile(ca.CertFile),
			remote.WithCredentials(testUser, "wrong")}, remote.ErrUnauthorized},
		{"right password", []remote.Opt{remote.WithCAFile(ca.CertFile),
			remote.WithCredentials(testUser, testPassword)}, nil},
		{"unknown CA", []remote.Opt{remote.WithCredentials(testUser, testPassword)}, remote.ErrTLS},
		{"insecure skips verification", []remote.Opt{remote.WithInsecure(),
			remote.WithCredentials(testUser, testPassword)}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := openStore(t)
			_, err := remote.Pull(t.Context(), s.Content(), s.Images(), ref, tc.opts...)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("pull error = %v, want %v", err, tc.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), testPassword) {
				t.Errorf("error %q contains the password", err)
			}
			if err != nil && !strings.Contains(err.Error(), ref) {
				t.Errorf("error %q does not name the reference %s", err, ref)
			}
		})
	}

	t.Run("docker config", func(t *testing.T) {
		auth := base64.StdEncoding.EncodeToString([]byte(testUser + ":" + testPassword))
		host := strings.SplitN(ref, "/", 2)[0]
		cfg := map[string]any{"auths": map[string]any{host: map[string]string{"auth": auth}}}
		data, err := json.Marshal(cfg)
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "config.json"), data, 0o600); err != nil {
			t.Fatal(err)
		}
		t.Setenv("DOCKER_CONFIG", dir)
		s := openStore(t)
		if _, err := remote.Pull(t.Context(), s.Content(), s.Images(), ref, remote.WithCAFile(ca.CertFile)); err != nil {
			t.Fatalf("pull with credentials from DOCKER_CONFIG: %v", err)
		}
	})
}

func TestPullPlainHTTPNeedsInsecure(t *testing.T) {
	_, ref := pushed(t, "busybox")
	s := openStore(t)
	_, err := remote.Pull(t.Context(), s.Content(), s.Images(), ref)
	if !errors.Is(err, remote.ErrTLS) {
		t.Fatalf("pull over plain HTTP without WithInsecure: error %v, want ErrTLS", err)
	}
	if !strings.Contains(err.Error(), "--insecure") {
		t.Errorf("error %q does not mention --insecure", err)
	}
	mustPull(t, s, ref)
}

// tokenFront puts a bearer token server and a registry front that demands
// its token in front of the plain registry at target. The token server
// hands out the token only for testUser and testPassword.
func tokenFront(t *testing.T, target string) string {
	t.Helper()
	const token = "strata-test-token"
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(u)
	mux.HandleFunc("/token", func(w http.ResponseWriter, r *http.Request) {
		user, pass, ok := r.BasicAuth()
		if !ok || user != testUser || pass != testPassword {
			http.Error(w, `{"errors":[{"code":"UNAUTHORIZED"}]}`, http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"token": token, "expires_in": 300})
	})
	mux.HandleFunc("/v2/", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+token {
			w.Header().Set("WWW-Authenticate", `Bearer realm="`+srv.URL+`/token",service="strata-test"`)
			http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`,
				http.StatusUnauthorized)
			return
		}
		r.Header.Del("Authorization")
		proxy.ServeHTTP(w, r)
	})
	return srv.Listener.Addr().String()
}

func TestPullBearerToken(t *testing.T) {
	reg, _ := pushed(t, "busybox")
	host := tokenFront(t, reg.URL())
	ref := host + "/x/busybox:1"

	s := openStore(t)
	_, err := pull(t, s, ref)
	if !errors.Is(err, remote.ErrUnauthorized) {
		t.Errorf("pull without credentials: error %v, want ErrUnauthorized", err)
	}
	if _, err := pull(t, s, ref, remote.WithCredentials(testUser, testPassword)); err != nil {
		t.Fatalf("pull with credentials: %v", err)
	}
}

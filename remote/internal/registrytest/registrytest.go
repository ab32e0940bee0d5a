// Package registrytest runs real registries on loopback for tests: Debian's
// docker-registry (Docker Distribution 2.8) with its own config and storage
// in a temporary directory, optionally behind TLS with a CA the test makes
// and with htpasswd basic auth. Images are pushed into it with skopeo.
//
// Tests that need these tools skip with a reason when docker-registry,
// skopeo or root is missing, unless STRATA_REQUIRE_IMAGES=1, which makes
// the missing tool a failure.
package registrytest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Paths of the tools, as Debian's packages install them.
const (
	RegistryBin = "/usr/bin/docker-registry"
	requireEnv  = "STRATA_REQUIRE_IMAGES"
)

// Requires skips the test unless it runs as root with docker-registry and
// skopeo installed. With STRATA_REQUIRE_IMAGES=1 it fails the test instead.
func Requires(t testing.TB) {
	t.Helper()
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root (skopeo runs in a private mount namespace)")
	}
	if _, err := os.Stat(RegistryBin); err != nil {
		missing = append(missing, RegistryBin+" (apt-get install docker-registry)")
	}
	if _, err := exec.LookPath("skopeo"); err != nil {
		missing = append(missing, "skopeo (apt-get install skopeo)")
	}
	if len(missing) == 0 {
		return
	}
	msg := "registry test needs " + strings.Join(missing, ", ")
	if os.Getenv(requireEnv) == "1" {
		t.Fatalf("%s (%s=1 makes this an error)", msg, requireEnv)
	}
	t.Skip(msg)
}

// Registry is a running docker-registry.
type Registry struct {
	// Host is "127.0.0.1:<port>".
	Host string
	// Dir holds the config, the storage and the log.
	Dir string
	tls bool
}

// URL returns the registry's base URL, http:// or https://.
func (r *Registry) URL() string {
	if r.tls {
		return "https://" + r.Host
	}
	return "http://" + r.Host
}

type config struct {
	cert, key string
	htpasswd  string
}

// Opt configures [Start].
type Opt func(*config)

// WithTLS makes the registry serve HTTPS with the PEM certificate and key.
func WithTLS(certFile, keyFile string) Opt {
	return func(c *config) { c.cert, c.key = certFile, keyFile }
}

// WithHtpasswd makes the registry require HTTP basic auth checked against
// the bcrypt htpasswd file.
func WithHtpasswd(path string) Opt {
	return func(c *config) { c.htpasswd = path }
}

// Start starts docker-registry on a free loopback port and stops it, by
// its PID, when the test ends. It calls [Requires] first.
func Start(t testing.TB, opts ...Opt) *Registry {
	t.Helper()
	Requires(t)
	var cfg config
	for _, o := range opts {
		o(&cfg)
	}
	dir := t.TempDir()
	host := freeAddr(t)
	r := &Registry{Host: host, Dir: dir, tls: cfg.cert != ""}

	conf := fmt.Sprintf(`version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
`, filepath.Join(dir, "storage"), host)
	if cfg.cert != "" {
		conf += fmt.Sprintf("  tls:\n    certificate: %s\n    key: %s\n", cfg.cert, cfg.key)
	}
	if cfg.htpasswd != "" {
		conf += fmt.Sprintf("auth:\n  htpasswd:\n    realm: strata-test\n    path: %s\n", cfg.htpasswd)
	}
	confPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}

	logf, err := os.Create(filepath.Join(dir, "registry.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(RegistryBin, "serve", confPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start %s: %v", RegistryBin, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		logf.Close()
	})
	if err := waitReady(r); err != nil {
		out, _ := os.ReadFile(logf.Name())
		t.Fatalf("docker-registry on %s: %v\nlog:\n%s", host, err, out)
	}
	return r
}

// freeAddr returns a loopback address with a port that was free just now.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// waitReady polls /v2/ until the registry responds, for up to 15s.
func waitReady(r *Registry) error {
	client := &http.Client{
		Timeout:   time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}},
	}
	deadline := time.Now().Add(15 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		resp, err := client.Get(r.URL() + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
				return nil
			}
			err = fmt.Errorf("GET /v2/: status %d", resp.StatusCode)
		}
		last = err
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("not ready after 15s: %w", last)
}

// Push copies the image at src, a containers-image transport reference
// such as "oci:/path/layout:latest", to dest, "host/repo:tag" on a
// registry, with skopeo. args go before the references, for example
// "--all", "--format", "v2s2" or "--dest-creds", "user:pass". TLS is not
// verified. skopeo runs in a private mount namespace with empty tmpfs on
// /var/lib and /run, so that its caches and locks never land on the host.
func Push(t testing.TB, src, dest string, args ...string) {
	t.Helper()
	Requires(t)
	skopeo := append([]string{"skopeo", "copy", "--quiet", "--dest-tls-verify=false"}, args...)
	skopeo = append(skopeo, src, "docker://"+dest)
	cmd := exec.Command("unshare", append([]string{"--mount", "--propagation", "private", "--",
		"bash", "-c", `mount -t tmpfs x /var/lib && mount -t tmpfs x /run && exec "$@"`, "--"},
		skopeo...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(skopeo, " "), err, out)
	}
}

// WriteHtpasswd writes an htpasswd file at path with one bcrypt entry.
func WriteHtpasswd(t testing.TB, path, user, password string) {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(user+":"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// CA is a certificate authority made for one test, and a server
// certificate it signed for 127.0.0.1 and ::1.
type CA struct {
	// CertFile is the CA certificate, PEM.
	CertFile string
	// ServerCert and ServerKey are the server's certificate and key, PEM.
	ServerCert, ServerKey string
}

// NewCA writes a new CA and a server certificate for loopback into dir.
func NewCA(t testing.TB, dir string) CA {
	t.Helper()
	caKey := newKey(t)
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "strata test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}

	srvKey := newKey(t)
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:     []string{"localhost"},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(srvKey)
	if err != nil {
		t.Fatal(err)
	}

	ca := CA{
		CertFile:   filepath.Join(dir, "ca.crt"),
		ServerCert: filepath.Join(dir, "server.crt"),
		ServerKey:  filepath.Join(dir, "server.key"),
	}
	writePEM(t, ca.CertFile, "CERTIFICATE", caDER)
	writePEM(t, ca.ServerCert, "CERTIFICATE", srvDER)
	writePEM(t, ca.ServerKey, "EC PRIVATE KEY", keyDER)
	return ca
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func writePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	data := pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

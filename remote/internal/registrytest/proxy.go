package registrytest

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// Fault describes the change a [Proxy] makes to one response.
type Fault struct {
	// Status, when not 0, is sent instead of forwarding the request.
	Status int
	// CutAfter, when above 0, closes the connection after that many body
	// bytes, without finishing the response.
	CutAfter int64
	// Corrupt flips the bits of the body's byte at this offset when it is
	// 1 or more; Corrupt-1 is the offset.
	Corrupt int64
	// Delay is slept before each 32 KiB of the body.
	Delay time.Duration
}

// Request is one request a [Proxy] served.
type Request struct {
	Method string
	Path   string
	// Range is the request's Range header.
	Range string
	// Status is the status sent, and Bytes the body bytes sent.
	Status int
	Bytes  int64
}

// Proxy is an HTTP server on loopback that forwards to a plain HTTP
// registry, records the requests and injects faults.
type Proxy struct {
	// Host is "127.0.0.1:<port>".
	Host   string
	target string

	mu       sync.Mutex
	fault    func(r *http.Request, seen int) Fault
	seen     map[string]int
	requests []Request // in order of arrival
}

// NewProxy starts a proxy in front of the registry at target, such as
// "http://127.0.0.1:5000", and stops it when the test ends. fault, when
// not nil, chooses the fault for each request; seen is the number of
// earlier requests for the same method and path.
func NewProxy(t testing.TB, target string, fault func(r *http.Request, seen int) Fault) *Proxy {
	t.Helper()
	p := &Proxy{target: strings.TrimSuffix(target, "/"), fault: fault, seen: map[string]int{}}
	srv := httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(srv.Close)
	p.Host = srv.Listener.Addr().String()
	return p
}

// Requests returns the requests served so far whose path contains sub.
func (p *Proxy) Requests(sub string) []Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []Request
	for _, r := range p.requests {
		if strings.Contains(r.Path, sub) {
			out = append(out, r)
		}
	}
	return out
}

func (p *Proxy) serve(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	key := r.Method + " " + r.URL.Path
	seen := p.seen[key]
	p.seen[key]++
	var f Fault
	if p.fault != nil {
		f = p.fault(r, seen)
	}
	p.mu.Unlock()

	// The request is listed as it arrives, so that a client killed
	// mid-response still finds it, and its outcome is filled in after.
	rec := Request{Method: r.Method, Path: r.URL.Path, Range: r.Header.Get("Range")}
	p.mu.Lock()
	slot := len(p.requests)
	p.requests = append(p.requests, rec)
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.requests[slot] = rec
		p.mu.Unlock()
	}()
	if f.Status != 0 {
		rec.Status = f.Status
		http.Error(w, http.StatusText(f.Status), f.Status)
		return
	}

	out, err := http.NewRequestWithContext(r.Context(), r.Method, p.target+r.URL.RequestURI(), r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	out.Header = r.Header.Clone()
	resp, err := http.DefaultTransport.RoundTrip(out)
	if err != nil {
		rec.Status = http.StatusBadGateway
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	rec.Status = resp.StatusCode
	w.WriteHeader(resp.StatusCode)
	rec.Bytes = copyBody(w, resp.Body, f)
}

// copyBody writes body to w, applying f, and returns the bytes written.
// A cut hijacks the connection and closes it.
func copyBody(w http.ResponseWriter, body io.Reader, f Fault) int64 {
	var n int64
	buf := make([]byte, 32<<10)
	for {
		if f.Delay > 0 {
			time.Sleep(f.Delay)
		}
		m, err := body.Read(buf)
		chunk := buf[:m]
		if f.Corrupt > 0 && f.Corrupt-1 >= n && f.Corrupt-1 < n+int64(m) {
			chunk[f.Corrupt-1-n] ^= 0xff
		}
		if f.CutAfter > 0 && n+int64(m) >= f.CutAfter {
			chunk = chunk[:f.CutAfter-n]
			w.Write(chunk)
			n += int64(len(chunk))
			cut(w)
			return n
		}
		if m > 0 {
			if _, werr := w.Write(chunk); werr != nil {
				return n
			}
			n += int64(m)
			if fl, ok := w.(http.Flusher); ok {
				fl.Flush()
			}
		}
		if err != nil {
			return n
		}
	}
}

// cut flushes what was written and closes the connection under it.
func cut(w http.ResponseWriter) {
	if fl, ok := w.(http.Flusher); ok {
		fl.Flush()
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		return
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		return
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		// Linger 0 sends a reset, like a connection dropped on the way.
		_ = tc.SetLinger(0)
	}
	conn.Close()
}

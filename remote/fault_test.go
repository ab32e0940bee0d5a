package remote_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strata-containers/strata/errdefs"
	"github.com/strata-containers/strata/internal/testimages"
	"github.com/strata-containers/strata/remote"
	"github.com/strata-containers/strata/remote/internal/registrytest"
)

// busyboxLayer returns the digest path part and size of busybox's one
// layer.
func busyboxLayer(t *testing.T) (string, int64) {
	t.Helper()
	_, m := layoutManifest(t, testimages.Path(t, "busybox"))
	return "/blobs/" + m.Layers[0].Digest.String(), m.Layers[0].Size
}

// ingestEntries returns the unfinished ingests in the store's content
// directory.
func ingestEntries(t *testing.T, root string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(root, "content", "ingest"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestPullCorruptBlob(t *testing.T) {
	reg, _ := pushed(t, "busybox")
	layerPath, size := busyboxLayer(t)
	proxy := registrytest.NewProxy(t, reg.URL(), func(r *http.Request, _ int) registrytest.Fault {
		if strings.HasSuffix(r.URL.Path, layerPath) {
			return registrytest.Fault{Corrupt: size / 2}
		}
		return registrytest.Fault{}
	})
	ref := proxy.Host + "/x/busybox:1"
	s := openStore(t)
	ctx := context.Background()

	_, err := pull(t, s, ref)
	if !errors.Is(err, errdefs.ErrDigestMismatch) {
		t.Fatalf("pull through a corrupting proxy: error %v, want ErrDigestMismatch", err)
	}
	layer := strings.TrimPrefix(layerPath, "/blobs/")
	if n := strings.Count(err.Error(), "sha256:"); !strings.Contains(err.Error(), layer) || n < 2 {
		t.Errorf("error %q should name the blob %s and the digest received", err, layer)
	}
	if _, err := s.Content().Info(ctx, digestOf(layer)); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("corrupt layer stat: %v, want ErrNotFound", err)
	}
	if _, err := s.Images().Get(ctx, ref); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("image record after a failed pull: %v, want ErrNotFound", err)
	}
	if left := ingestEntries(t, s.Root()); len(left) != 0 {
		t.Errorf("ingests left after a digest mismatch: %v", left)
	}
}

func TestPullResumesAfterCut(t *testing.T) {
	reg, _ := pushed(t, "busybox")
	layerPath, size := busyboxLayer(t)
	half := size / 2
	proxy := registrytest.NewProxy(t, reg.URL(), func(r *http.Request, seen int) registrytest.Fault {
		if strings.HasSuffix(r.URL.Path, layerPath) && seen == 0 {
			return registrytest.Fault{CutAfter: half}
		}
		return registrytest.Fault{}
	})
	ref := proxy.Host + "/x/busybox:1"
	s := openStore(t)

	// With one attempt the cut fails the pull and leaves the partial blob.
	_, err := pull(t, s, ref, remote.WithRetry(1, 0))
	if err == nil {
		t.Fatal("pull through a cutting proxy with one attempt succeeded")
	}
	if left := ingestEntries(t, s.Root()); len(left) != 1 {
		t.Fatalf("ingests after the cut: %v, want the one partial layer", left)
	}
	// The proxy resets the connection, which drops whatever the client had
	// not read yet, so the client keeps at most half.
	kept := ingestSize(s.Root())
	if kept <= 0 || kept > half {
		t.Fatalf("the cut pull kept %d bytes, want 1 to %d", kept, half)
	}

	res := mustPull(t, s, ref)
	reqs := proxy.Requests(layerPath)
	if len(reqs) != 2 {
		t.Fatalf("layer requests: %+v, want 2", reqs)
	}
	if want := fmt.Sprintf("bytes=%d-", kept); reqs[1].Range != want {
		t.Errorf("second request Range = %q, want %q", reqs[1].Range, want)
	}
	if reqs[1].Status != http.StatusPartialContent || reqs[1].Bytes != size-kept {
		t.Errorf("second request: status %d, %d bytes; want 206, %d", reqs[1].Status, reqs[1].Bytes, size-kept)
	}
	if got := res.Transferred; got != size-kept {
		t.Errorf("second pull transferred %d bytes, want the rest of the layer: %d", got, size-kept)
	}
}

func TestPullRetriesTransientFailures(t *testing.T) {
	reg, _ := pushed(t, "busybox")
	layerPath, size := busyboxLayer(t)
	proxy := registrytest.NewProxy(t, reg.URL(), func(r *http.Request, seen int) registrytest.Fault {
		switch {
		case strings.Contains(r.URL.Path, "/manifests/") && seen == 0:
			return registrytest.Fault{Status: http.StatusServiceUnavailable}
		case strings.HasSuffix(r.URL.Path, layerPath) && seen == 0:
			return registrytest.Fault{Status: http.StatusBadGateway}
		case strings.HasSuffix(r.URL.Path, layerPath) && seen == 1:
			return registrytest.Fault{CutAfter: size / 3}
		}
		return registrytest.Fault{}
	})
	s := openStore(t)
	mustPull(t, s, proxy.Host+"/x/busybox:1")

	reqs := proxy.Requests(layerPath)
	if len(reqs) != 3 {
		t.Fatalf("layer requests: %+v, want 502, cut, resumed", reqs)
	}
	var start int64
	if _, err := fmt.Sscanf(reqs[2].Range, "bytes=%d-", &start); err != nil || start <= 0 || start > size/3 {
		t.Errorf("third request Range = %q, want bytes=N- with N from 1 to %d", reqs[2].Range, size/3)
	}
}

func TestPullAuthErrorsFailAtOnce(t *testing.T) {
	reg, _ := pushed(t, "busybox")
	for _, code := range []int{http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound} {
		proxy := registrytest.NewProxy(t, reg.URL(), func(r *http.Request, _ int) registrytest.Fault {
			if strings.Contains(r.URL.Path, "/manifests/") {
				return registrytest.Fault{Status: code}
			}
			return registrytest.Fault{}
		})
		s := openStore(t)
		ref := proxy.Host + "/x/busybox:1"
		_, err := pull(t, s, ref, remote.WithRetry(5, time.Second))
		if err == nil {
			t.Errorf("status %d: pull succeeded", code)
			continue
		}
		if n := len(proxy.Requests("/manifests/")); n != 1 {
			t.Errorf("status %d: %d manifest requests, want 1 (no retry)", code, n)
		}
		if !strings.Contains(err.Error(), ref) || !strings.Contains(err.Error(), "check") {
			t.Errorf("status %d: error %q should name %s and what to check", code, err, ref)
		}
	}
}

func TestConcurrentPullsDownloadOnce(t *testing.T) {
	reg, _ := pushed(t, "busybox")
	proxy := registrytest.NewProxy(t, reg.URL(), func(r *http.Request, _ int) registrytest.Fault {
		if strings.Contains(r.URL.Path, "/blobs/") {
			return registrytest.Fault{Delay: 5 * time.Millisecond}
		}
		return registrytest.Fault{}
	})
	ref := proxy.Host + "/x/busybox:1"
	root := t.TempDir()

	// Two stores on one root stand for two strata processes.
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		s := openStoreAt(t, root)
		wg.Go(func() { _, errs[i] = pull(t, s, ref) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("pull %d: %v", i, err)
		}
	}
	count := map[string]int{}
	for _, r := range proxy.Requests("/blobs/") {
		count[r.Path]++
	}
	for path, n := range count {
		if n != 1 {
			t.Errorf("%s fetched %d times, want once", path, n)
		}
	}
	if len(count) != 2 {
		t.Errorf("blobs fetched: %v, want the config and the layer", count)
	}
}

package remote_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strata-containers/strata/errdefs"
	"github.com/strata-containers/strata/identity"
	"github.com/strata-containers/strata/remote"
	"github.com/strata-containers/strata/remote/internal/registrytest"
	"github.com/strata-containers/strata/unpack"
)

// Environment of TestHelperPull, which TestPullResumesAfterKill runs in a
// child process.
const (
	helperRefEnv  = "STRATA_TEST_PULL_REF"
	helperRootEnv = "STRATA_TEST_PULL_ROOT"
)

// TestHelperPull pulls for TestPullResumesAfterKill in a process it kills.
func TestHelperPull(t *testing.T) {
	ref := os.Getenv(helperRefEnv)
	if ref == "" {
		t.Skip("runs only as the child of TestPullResumesAfterKill")
	}
	s := openStoreAt(t, os.Getenv(helperRootEnv))
	mustPull(t, s, ref)
}

// ingestSize returns the size of the one ingest's data file, or -1.
func ingestSize(root string) int64 {
	files, _ := filepath.Glob(filepath.Join(root, "content", "ingest", "*", "data"))
	if len(files) != 1 {
		return -1
	}
	fi, err := os.Stat(files[0])
	if err != nil {
		return -1
	}
	return fi.Size()
}

func TestPullResumesAfterKill(t *testing.T) {
	reg, _ := pushed(t, "busybox")
	layerPath, size := busyboxLayer(t)
	proxy := registrytest.NewProxy(t, reg.URL(), func(r *http.Request, seen int) registrytest.Fault {
		if strings.HasSuffix(r.URL.Path, layerPath) && seen == 0 {
			return registrytest.Fault{Delay: 50 * time.Millisecond}
		}
		return registrytest.Fault{}
	})
	ref := proxy.Host + "/x/busybox:1"
	s := openStore(t)

	child := exec.Command(os.Args[0], "-test.run=^TestHelperPull$")
	child.Env = append(os.Environ(), helperRefEnv+"="+ref, helperRootEnv+"="+s.Root())
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for ingestSize(s.Root()) < 64<<10 {
		if time.Now().After(deadline) {
			child.Process.Kill()
			child.Wait()
			t.Fatal("the child pull wrote no layer data in 30s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := child.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	child.Wait()
	kept := ingestSize(s.Root())
	if kept <= 0 || kept >= size {
		t.Fatalf("killed pull kept %d bytes of %d", kept, size)
	}

	res := mustPull(t, s, ref)
	reqs := proxy.Requests(layerPath)
	if len(reqs) != 2 {
		t.Fatalf("layer requests: %+v, want 2", reqs)
	}
	if want := fmt.Sprintf("bytes=%d-", kept); reqs[1].Range != want {
		t.Errorf("request after the kill: Range %q, want %q", reqs[1].Range, want)
	}
	if res.Transferred != size-kept {
		t.Errorf("pull after the kill transferred %d bytes, want %d", res.Transferred, size-kept)
	}
}

func TestPullUnpackSkipsUnpackedChains(t *testing.T) {
	reg, _ := pushed(t, "debian")
	proxy := registrytest.NewProxy(t, reg.URL(), nil)
	ref := proxy.Host + "/x/debian:1"
	s := openOverlayStore(t)
	ctx := context.Background()
	sn, err := s.Snapshotter(ctx)
	if err != nil {
		t.Fatal(err)
	}
	locker, err := unpack.NewFileLocker(filepath.Join(s.Root(), "locks"))
	if err != nil {
		t.Fatal(err)
	}
	unpackOpt := remote.WithUnpack(sn, unpack.WithLocker(locker))
	first := mustPull(t, s, ref, unpackOpt)
	layers := first.Resolved.Layers

	// Drop the layer blobs and the top snapshot: only the top layer's chain
	// is missing now, so only its blob may be fetched again.
	for _, l := range layers {
		if err := s.Content().Delete(ctx, l.Descriptor.Digest); err != nil {
			t.Fatal(err)
		}
	}
	if err := sn.Remove(ctx, first.ChainID.String()); err != nil {
		t.Fatal(err)
	}
	before := len(proxy.Requests("/blobs/"))
	second := mustPull(t, s, ref, unpackOpt)
	if second.ChainID != first.ChainID {
		t.Errorf("chain ID %s after the second pull, want %s", second.ChainID, first.ChainID)
	}
	fetched := proxy.Requests("/blobs/")[before:]
	top := layers[len(layers)-1].Descriptor
	if len(fetched) != 1 || !strings.HasSuffix(fetched[0].Path, top.Digest.String()) {
		t.Errorf("blobs fetched by the second pull: %+v, want only the top layer %s", fetched, top.Digest)
	}
	for _, l := range layers[:len(layers)-1] {
		if _, err := s.Content().Info(ctx, l.Descriptor.Digest); !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("layer %s below the unpacked chain: stat %v, want not downloaded", l.Descriptor.Digest, err)
		}
	}
	if want := identity.ChainID(second.Resolved.DiffIDs()); second.ChainID != want {
		t.Errorf("chain ID %s, want %s", second.ChainID, want)
	}
}

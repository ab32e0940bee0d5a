package remote_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/strata-containers/strata/errdefs"
)

// schema1Manifest is a Docker schema 1 manifest as old registries serve
// it, signature left out.
const schema1Manifest = `{"schemaVersion":1,"name":"x/old","tag":"1","architecture":"amd64",
"fsLayers":[{"blobSum":"sha256:a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4"}],
"history":[{"v1Compatibility":"{}"}]}`

func TestPullRejectsSchema1(t *testing.T) {
	for _, contentType := range []string{
		"application/vnd.docker.distribution.manifest.v1+prettyjws",
		"application/json",
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch r.URL.Path {
			case "/v2/":
				w.WriteHeader(http.StatusOK)
			case "/v2/x/old/manifests/1":
				w.Header().Set("Content-Type", contentType)
				w.Write([]byte(schema1Manifest))
			default:
				http.NotFound(w, r)
			}
		}))
		s := openStore(t)
		ref := srv.Listener.Addr().String() + "/x/old:1"
		_, err := pull(t, s, ref)
		srv.Close()
		if !errors.Is(err, errdefs.ErrUnsupported) {
			t.Errorf("Content-Type %s: error %v, want ErrUnsupported", contentType, err)
			continue
		}
		if !strings.Contains(err.Error(), "schema 1") {
			t.Errorf("Content-Type %s: error %q does not say schema 1", contentType, err)
		}
	}
}

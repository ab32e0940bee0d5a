package remote

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-containers/strata/content"
	"github.com/strata-containers/strata/errdefs"
	"github.com/strata-containers/strata/log"
	"github.com/strata-containers/strata/oci"
)

// manifestAccept lists the manifest media types Pull requests. Schema 1 is
// listed last so that a registry with only a schema 1 manifest returns it,
// and Pull can report why it is rejected instead of reporting it missing.
var manifestAccept = strings.Join([]string{
	ocispec.MediaTypeImageIndex,
	ocispec.MediaTypeImageManifest,
	oci.MediaTypeDockerManifestList,
	oci.MediaTypeDockerManifest,
	oci.MediaTypeDockerSchema1Signed,
	oci.MediaTypeDockerSchema1,
}, ", ")

// ingestPoll is how often a pull checks whether another process finished
// writing a blob that it is also writing.
const ingestPoll = 100 * time.Millisecond

// errShortBody means a response body ended before the blob did, which a
// retry can resume.
var errShortBody = errors.New("response ended before the end of the blob")

// ingestRef is the content store ingest name for a blob, shared by every
// pull of that blob so that concurrent pulls write it once.
func ingestRef(d digest.Digest) string { return IngestRefPrefix + d.String() }

// IngestRefPrefix starts the content store ingest ref of every blob that
// Pull downloads. A partial ingest with this prefix can be resumed with an
// HTTP range request, so a store should keep it for a while.
const IngestRefPrefix = "remote-"

// fetchManifest fetches the manifest or index that identifier (a tag or a
// digest) names and stores it in cs. When want has a digest, the bytes
// must match it, and want's size too unless that is negative (unknown).
// The returned descriptor carries the media type, digest and size of the
// stored blob.
func (c *client) fetchManifest(ctx context.Context, cs content.Store, identifier string,
	want ocispec.Descriptor) (ocispec.Descriptor, []byte, error) {
	what := "fetch manifest " + c.ref.Repository() + ":" + identifier
	if want.Digest != "" {
		what = "fetch manifest " + want.Digest.String()
	}
	var (
		data      []byte
		mediaType string
		header    string
	)
	err := retry(ctx, c.cfg, what, func() error {
		resp, err := c.get(ctx, "manifests/"+identifier, http.Header{"Accept": {manifestAccept}}, http.StatusOK)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		data, err = readLimited(resp.Body, content.MaxBlobSize)
		mediaType, header = contentType(resp), resp.Header.Get("Docker-Content-Digest")
		return err
	})
	if err != nil {
		return ocispec.Descriptor{}, nil, classify(c.ref, what, err)
	}

	desc, err := manifestDescriptor(data, mediaType, header, want)
	if err != nil {
		return desc, nil, fmt.Errorf("%s: %w", what, err)
	}
	if err := ingestBytes(ctx, cs, desc, data); err != nil {
		return desc, nil, fmt.Errorf("%s: store blob %s: %w", what, desc.Digest, err)
	}
	return desc, data, nil
}

// manifestDescriptor checks the fetched bytes data and describes them. The
// digest is computed with the algorithm of the expected digest: want's, or
// the Docker-Content-Digest header's, or sha256.
func manifestDescriptor(data []byte, mediaType, header string, want ocispec.Descriptor) (ocispec.Descriptor, error) {
	if oci.IsSchema1(mediaType) {
		return ocispec.Descriptor{}, fmt.Errorf("registry sent a Docker schema 1 manifest (%s), which strata "+
			"does not read; push the image again with a current Docker, buildah or skopeo to store "+
			"it as schema 2 or OCI: %w", mediaType, errdefs.ErrUnsupported)
	}
	kind, err := oci.SniffKind(data)
	if err != nil {
		return ocispec.Descriptor{}, err
	}

	expect := want.Digest
	if expect == "" && header != "" {
		d, err := digest.Parse(header)
		if err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("parse Docker-Content-Digest header %q: %w: %w",
				header, errdefs.ErrInvalidArgument, err)
		}
		expect = d
	}
	alg := digest.SHA256
	if expect != "" {
		alg = expect.Algorithm()
	}
	got := alg.FromBytes(data)
	if expect != "" && got != expect {
		return ocispec.Descriptor{}, fmt.Errorf("registry sent bytes with digest %s, expected %s: %w",
			got, expect, errdefs.ErrDigestMismatch)
	}
	if want.Digest != "" && want.Size >= 0 && want.Size != int64(len(data)) {
		return ocispec.Descriptor{}, fmt.Errorf("manifest %s: registry sent %d bytes, expected %d: %w",
			want.Digest, len(data), want.Size, errdefs.ErrDigestMismatch)
	}

	// The media type inside the document wins over the header, which some
	// registries set loosely.
	mt := embeddedMediaType(data)
	if mt == "" && oci.Classify(mediaType) == kind {
		mt = mediaType
	}
	if mt == "" && kind == oci.KindIndex {
		mt = ocispec.MediaTypeImageIndex
	} else if mt == "" {
		mt = ocispec.MediaTypeImageManifest
	}
	return ocispec.Descriptor{MediaType: mt, Digest: got, Size: int64(len(data))}, nil
}

// embeddedMediaType returns the mediaType field of a manifest or index
// when it names a manifest or index type, or "".
func embeddedMediaType(data []byte) string {
	var doc struct {
		MediaType string `json:"mediaType"`
	}
	if json.Unmarshal(data, &doc) != nil {
		return ""
	}
	if k := oci.Classify(doc.MediaType); k == oci.KindIndex || k == oci.KindManifest {
		return doc.MediaType
	}
	return ""
}

func contentType(resp *http.Response) string {
	mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil {
		return ""
	}
	return mt
}

// readLimited reads all of r, failing when it holds more than limit bytes.
func readLimited(r io.Reader, limit int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("manifest is over the %d byte limit: %w", limit, errdefs.ErrLimit)
	}
	return data, nil
}

// ingestBytes stores data as the blob desc, waiting while another writer
// holds the same ingest.
func ingestBytes(ctx context.Context, cs content.Store, desc ocispec.Descriptor, data []byte) error {
	for {
		err := content.IngestBytes(ctx, cs, ingestRef(desc.Digest), desc, data)
		if !errors.Is(err, errdefs.ErrUnavailable) {
			return err
		}
		if err := sleep(ctx, ingestPoll); err != nil {
			return err
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// fetchBlob downloads the blob desc into cs unless it is stored already,
// and reports whether it was. While another pull writes the same blob,
// fetchBlob waits for it and then finds the blob stored, so concurrent
// pulls download each blob once. report is called with the number of bytes
// stored so far and the number resumed from an earlier attempt.
func (c *client) fetchBlob(ctx context.Context, cs content.Store, desc ocispec.Descriptor,
	report func(n, resumed int64)) (cached bool, err error) {
	if _, err := cs.Info(ctx, desc.Digest); err == nil {
		return true, nil
	}
	w, err := openWriter(ctx, cs, desc)
	if errors.Is(err, errdefs.ErrAlreadyExists) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("fetch blob %s: %w", desc.Digest, err)
	}
	defer func() {
		if cerr := w.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("fetch blob %s: %w", desc.Digest, cerr)
		}
	}()

	resumed := w.Offset()
	if resumed > 0 {
		log.G(ctx).Debug("resume blob download", "digest", desc.Digest, "offset", resumed)
	}
	what := "fetch blob " + desc.Digest.String()
	err = retry(ctx, c.cfg, what, func() error {
		return c.download(ctx, w, desc, func(n int64) { report(n, resumed) })
	})
	if errors.Is(err, errdefs.ErrDigestMismatch) {
		// A failed commit discards the ingest, so that the wrong bytes
		// are not resumed by the next pull.
		_ = w.Commit(ctx)
		return false, fmt.Errorf("%s: %w", what, err)
	}
	if err != nil {
		return false, classify(c.ref, what, err)
	}
	if err := w.Commit(ctx); err != nil && !errors.Is(err, errdefs.ErrAlreadyExists) {
		return false, fmt.Errorf("%s from registry %s: %w", what, c.ref.Registry(), err)
	}
	return false, nil
}

// openWriter opens the blob's writer, waiting while another process or
// goroutine holds it.
func openWriter(ctx context.Context, cs content.Store, desc ocispec.Descriptor) (content.Writer, error) {
	for {
		w, err := cs.Writer(ctx, ingestRef(desc.Digest), desc)
		if !errors.Is(err, errdefs.ErrUnavailable) {
			return w, err
		}
		if err := sleep(ctx, ingestPoll); err != nil {
			return nil, fmt.Errorf("wait for another pull of blob %s: %w", desc.Digest, err)
		}
	}
}

// download sends one GET for the rest of the blob, from w.Offset(), and
// writes the response into w. A body that ends early returns an error that
// [temporary] accepts, so the retry resumes from the new offset.
func (c *client) download(ctx context.Context, w content.Writer, desc ocispec.Descriptor, report func(int64)) error {
	off := w.Offset()
	if off == desc.Size {
		return nil // a complete earlier download that was not committed
	}
	header := http.Header{}
	if off > 0 {
		header.Set("Range", fmt.Sprintf("bytes=%d-", off))
	}
	resp, err := c.get(ctx, "blobs/"+desc.Digest.String(), header, http.StatusOK, http.StatusPartialContent)
	if err != nil {
		return err
	}
	defer resp.Body.Close()

	skip, err := rangeSkip(resp, off)
	if err != nil {
		return err
	}
	if skip > 0 {
		// The registry ignored the Range header and sent the whole blob.
		log.G(ctx).Debug("registry ignored the range request", "digest", desc.Digest, "offset", off)
		if _, err := io.CopyN(io.Discard, resp.Body, skip); err != nil {
			return err
		}
	}

	// One byte over the size is enough to tell that the registry sent too
	// much, which the writer rejects.
	body := io.LimitReader(resp.Body, desc.Size-off+1)
	buf := make([]byte, 256<<10)
	for {
		n, rerr := body.Read(buf)
		if n > 0 {
			c.transferred.Add(int64(n))
			if _, err := w.Write(buf[:n]); err != nil {
				return err
			}
			report(w.Offset())
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return rerr
		}
	}
	if w.Offset() < desc.Size {
		return fmt.Errorf("blob %s: got %d of %d bytes: %w", desc.Digest, w.Offset(), desc.Size, errShortBody)
	}
	return nil
}

// rangeSkip returns how many bytes of resp's body come before offset off:
// off when the registry responded 200 with the whole blob, 0 for a 206 that
// starts at off.
func rangeSkip(resp *http.Response, off int64) (int64, error) {
	if resp.StatusCode == http.StatusOK {
		return off, nil
	}
	cr := resp.Header.Get("Content-Range")
	spec, ok := strings.CutPrefix(cr, "bytes ")
	start, _, ok2 := strings.Cut(spec, "-")
	n, err := strconv.ParseInt(start, 10, 64)
	if !ok || !ok2 || err != nil || n != off {
		return 0, fmt.Errorf("registry responded to a request for bytes %d- with Content-Range %q: %w",
			off, cr, errdefs.ErrInvalidArgument)
	}
	return 0, nil
}

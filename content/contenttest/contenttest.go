// Package contenttest is a conformance suite for [content.Store]
// implementations. An implementation's tests call [Run] with a constructor.
package contenttest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-containers/strata/content"
	"github.com/strata-containers/strata/errdefs"
)

// Run runs the suite. newStore returns a store rooted at root, which is a
// fresh directory for each subtest. A subtest may call newStore twice with
// the same root, and the second store must show the same blobs.
func Run(t *testing.T, newStore func(t *testing.T, root string) content.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, newStore func() content.Store)
	}{
		{"IngestAndRead", testIngestAndRead},
		{"IngestSHA512", testIngestSHA512},
		{"IngestEmpty", testIngestEmpty},
		{"WrongDigest", testWrongDigest},
		{"ShortSize", testShortSize},
		{"WritePastSize", testWritePastSize},
		{"Resume", testResume},
		{"ResumeOtherDescriptor", testResumeOtherDescriptor},
		{"AlreadyExists", testAlreadyExists},
		{"Delete", testDelete},
		{"Walk", testWalk},
		{"NotFound", testNotFound},
		{"InvalidDigest", testInvalidDigest},
		{"ConcurrentSameRef", testConcurrentSameRef},
		{"ConcurrentSameBlob", testConcurrentSameBlob},
		{"ReadBlobLimit", testReadBlobLimit},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			tc.fn(t, func() content.Store { return newStore(t, root) })
		})
	}
}

func descFor(data []byte) ocispec.Descriptor {
	return ocispec.Descriptor{
		MediaType: ocispec.MediaTypeImageLayer,
		Digest:    digest.FromBytes(data),
		Size:      int64(len(data)),
	}
}

func mustIngest(t *testing.T, cs content.Store, data []byte) ocispec.Descriptor {
	t.Helper()
	desc := descFor(data)
	if err := content.IngestBytes(context.Background(), cs, "ref-"+desc.Digest.String(), desc, data); err != nil {
		t.Fatalf("ingest %s: %v", desc.Digest, err)
	}
	return desc
}

func checkBlob(t *testing.T, cs content.Store, desc ocispec.Descriptor, want []byte) {
	t.Helper()
	ctx := context.Background()
	got, err := content.ReadBlob(ctx, cs, desc)
	if err != nil {
		t.Fatalf("ReadBlob(%s): %v", desc.Digest, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("ReadBlob(%s) = %q, want %q", desc.Digest, got, want)
	}
	info, err := cs.Info(ctx, desc.Digest)
	if err != nil {
		t.Fatalf("Info(%s): %v", desc.Digest, err)
	}
	if info.Digest != desc.Digest || info.Size != desc.Size {
		t.Errorf("Info(%s) = %s %d, want %s %d", desc.Digest, info.Digest, info.Size, desc.Digest, desc.Size)
	}
	if info.CreatedAt.IsZero() {
		t.Errorf("Info(%s).CreatedAt is zero", desc.Digest)
	}
}

func checkAbsent(t *testing.T, cs content.Store, dgst digest.Digest) {
	t.Helper()
	if _, err := cs.Info(context.Background(), dgst); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Info(%s) error = %v, want ErrNotFound", dgst, err)
	}
	if ra, err := cs.ReaderAt(context.Background(), ocispec.Descriptor{Digest: dgst}); !errors.Is(err, errdefs.ErrNotFound) {
		if err == nil {
			ra.Close()
		}
		t.Errorf("ReaderAt(%s) error = %v, want ErrNotFound", dgst, err)
	}
}

func testIngestAndRead(t *testing.T, newStore func() content.Store) {
	cs := newStore()
	data := bytes.Repeat([]byte("strata layer data\n"), 10000)
	desc := mustIngest(t, cs, data)
	checkBlob(t, cs, desc, data)

	ra, err := cs.ReaderAt(context.Background(), desc)
	if err != nil {
		t.Fatal(err)
	}
	defer ra.Close()
	got, err := io.ReadAll(content.NewReader(ra))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Errorf("NewReader read %d bytes, want the %d ingested", len(got), len(data))
	}

	// A second store on the same root returns the blob.
	checkBlob(t, newStore(), desc, data)
}

func testIngestSHA512(t *testing.T, newStore func() content.Store) {
	cs := newStore()
	data := []byte("hashed with sha512")
	desc := ocispec.Descriptor{Digest: digest.SHA512.FromBytes(data), Size: int64(len(data))}
	if err := content.IngestBytes(context.Background(), cs, "sha512", desc, data); err != nil {
		t.Fatal(err)
	}
	checkBlob(t, cs, desc, data)
}

func testIngestEmpty(t *testing.T, newStore func() content.Store) {
	cs := newStore()
	desc := mustIngest(t, cs, nil)
	checkBlob(t, cs, desc, []byte{})
}

func testWrongDigest(t *testing.T, newStore func() content.Store) {
	cs := newStore()
	ctx := context.Background()
	data := []byte("the real bytes")
	claimed := descFor([]byte("other bytes..")) // same length as data
	claimed.Size = int64(len(data))

	err := content.IngestBytes(ctx, cs, "wrong", claimed, data)
	if !errors.Is(err, errdefs.ErrDigestMismatch) {
		t.Fatalf("ingest error = %v, want ErrDigestMismatch", err)
	}
	for _, d := range []digest.Digest{claimed.Digest, digest.FromBytes(data)} {
		if !strings.Contains(err.Error(), d.String()) {
			t.Errorf("error %q does not name digest %s", err, d)
		}
	}
	checkAbsent(t, cs, claimed.Digest)
	checkAbsent(t, cs, digest.FromBytes(data))
	checkEmpty(t, cs)

	// The bad data is gone: the same ref starts again from zero.
	w, err := cs.Writer(ctx, "wrong", claimed)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if w.Offset() != 0 {
		t.Errorf("Offset after a rejected commit = %d, want 0", w.Offset())
	}
}

func checkEmpty(t *testing.T, cs content.Store) {
	t.Helper()
	var got []digest.Digest
	if err := cs.Walk(context.Background(), func(i content.Info) error {
		got = append(got, i.Digest)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Errorf("Walk found %v, want no blobs", got)
	}
}

func testShortSize(t *testing.T, newStore func() content.Store) {
	cs := newStore()
	ctx := context.Background()
	data := []byte("twelve bytes")
	desc := descFor(data)
	desc.Size++

	w, err := cs.Writer(ctx, "short", desc)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	err = w.Commit(ctx)
	if !errors.Is(err, errdefs.ErrDigestMismatch) {
		t.Fatalf("Commit error = %v, want ErrDigestMismatch", err)
	}
	checkAbsent(t, cs, desc.Digest)
}

func testWritePastSize(t *testing.T, newStore func() content.Store) {
	cs := newStore()
	ctx := context.Background()
	data := []byte("twelve bytes")
	desc := descFor(data)
	desc.Size = 5

	w, err := cs.Writer(ctx, "long", desc)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.Write(data); !errors.Is(err, errdefs.ErrDigestMismatch) {
		t.Fatalf("Write past the size error = %v, want ErrDigestMismatch", err)
	}
	if err := w.Commit(ctx); err == nil {
		t.Fatal("Commit after a rejected write succeeded")
	}
	checkAbsent(t, cs, desc.Digest)
}

func testResume(t *testing.T, newStore func() content.Store) {
	cs := newStore()
	ctx := context.Background()
	data := bytes.Repeat([]byte("0123456789"), 1000)
	desc := descFor(data)

	w, err := cs.Writer(ctx, "resume", desc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data[:4321]); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	checkAbsent(t, cs, desc.Digest)

	// Reopen through another view, as a restarted process would.
	w, err = newStore().Writer(ctx, "resume", desc)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if w.Offset() != 4321 {
		t.Fatalf("Offset after reopening = %d, want 4321", w.Offset())
	}
	// Copy skips the bytes already written.
	if err := content.Copy(ctx, w, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	checkBlob(t, cs, desc, data)
}

func testResumeOtherDescriptor(t *testing.T, newStore func() content.Store) {
	cs := newStore()
	ctx := context.Background()
	first := []byte("first blob")
	w, err := cs.Writer(ctx, "shared-ref", descFor(first))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(first[:5]); err != nil {
		t.Fatal(err)
	}
	w.Close()

	second := []byte("second blob, longer")
	w, err = cs.Writer(ctx, "shared-ref", descFor(second))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if w.Offset() != 0 {
		t.Fatalf("Offset for a new descriptor on an old ref = %d, want 0", w.Offset())
	}
	if err := content.Copy(ctx, w, bytes.NewReader(second)); err != nil {
		t.Fatal(err)
	}
	checkBlob(t, cs, descFor(second), second)
}

func testAlreadyExists(t *testing.T, newStore func() content.Store) {
	cs := newStore()
	ctx := context.Background()
	data := []byte("stored once")
	desc := mustIngest(t, cs, data)

	if _, err := cs.Writer(ctx, "again", desc); !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Errorf("Writer for a stored blob error = %v, want ErrAlreadyExists", err)
	}
	if err := content.IngestBytes(ctx, cs, "again", desc, data); err != nil {
		t.Errorf("Ingest of a stored blob = %v, want nil", err)
	}
}

func testDelete(t *testing.T, newStore func() content.Store) {
	cs := newStore()
	ctx := context.Background()
	desc := mustIngest(t, cs, []byte("short-lived"))
	if err := cs.Delete(ctx, desc.Digest); err != nil {
		t.Fatal(err)
	}
	checkAbsent(t, cs, desc.Digest)
	if err := cs.Delete(ctx, desc.Digest); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("second Delete error = %v, want ErrNotFound", err)
	}
	// A deleted blob can be ingested again.
	mustIngest(t, cs, []byte("short-lived"))
}

func testWalk(t *testing.T, newStore func() content.Store) {
	cs := newStore()
	want := map[digest.Digest]int64{}
	for i := range 5 {
		desc := mustIngest(t, cs, []byte(fmt.Sprintf("blob %d", i)))
		want[desc.Digest] = desc.Size
	}
	sha512 := []byte("sha512 blob")
	d512 := ocispec.Descriptor{Digest: digest.SHA512.FromBytes(sha512), Size: int64(len(sha512))}
	if err := content.IngestBytes(context.Background(), cs, "walk-512", d512, sha512); err != nil {
		t.Fatal(err)
	}
	want[d512.Digest] = d512.Size

	// An unfinished ingest is not a blob.
	w, err := cs.Writer(context.Background(), "partial", descFor([]byte("partial blob")))
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("part"))
	defer w.Close()

	got := map[digest.Digest]int64{}
	err = cs.Walk(context.Background(), func(i content.Info) error {
		got[i.Digest] = i.Size
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Walk (-want +got):\n%s", diff)
	}

	stop := errors.New("stop")
	calls := 0
	err = cs.Walk(context.Background(), func(content.Info) error { calls++; return stop })
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("Walk stopping at the first error: calls = %d, error = %v", calls, err)
	}
}

func testNotFound(t *testing.T, newStore func() content.Store) {
	checkAbsent(t, newStore(), digest.FromString("never stored"))
}

func testInvalidDigest(t *testing.T, newStore func() content.Store) {
	cs := newStore()
	ctx := context.Background()
	for _, d := range []digest.Digest{"", "sha256:../../etc", "md5:d41d8cd98f00b204e9800998ecf8427e", "sha256:abc"} {
		if _, err := cs.Writer(ctx, "bad", ocispec.Descriptor{Digest: d, Size: 1}); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("Writer(%q) error = %v, want ErrInvalidArgument", d, err)
		}
		if _, err := cs.Info(ctx, d); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("Info(%q) error = %v, want ErrInvalidArgument", d, err)
		}
	}
}

func testConcurrentSameRef(t *testing.T, newStore func() content.Store) {
	ctx := context.Background()
	data := []byte("contended blob")
	desc := descFor(data)

	first, err := newStore().Writer(ctx, "contended", desc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newStore().Writer(ctx, "contended", desc); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Fatalf("second Writer for a held ref error = %v, want ErrUnavailable", err)
	}
	if _, err := first.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := first.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := newStore().Writer(ctx, "contended", desc); !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Errorf("Writer after the commit error = %v, want ErrAlreadyExists", err)
	}

	// Many goroutines racing on one ref: each either writes the blob or
	// finds it held or stored, and the stored blob is whole.
	data = bytes.Repeat([]byte("race"), 50000)
	desc = descFor(data)
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() {
			errs[i] = content.IngestBytes(ctx, newStore(), "race", desc, data)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil && !errors.Is(err, errdefs.ErrUnavailable) {
			t.Errorf("writer %d: %v", i, err)
		}
	}
	checkBlob(t, newStore(), desc, data)
}

func testConcurrentSameBlob(t *testing.T, newStore func() content.Store) {
	ctx := context.Background()
	data := bytes.Repeat([]byte("same blob, many refs "), 20000)
	desc := descFor(data)
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() {
			errs[i] = content.IngestBytes(ctx, newStore(), fmt.Sprintf("ref-%d", i), desc, data)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("writer %d: %v", i, err)
		}
	}
	checkBlob(t, newStore(), desc, data)
}

func testReadBlobLimit(t *testing.T, newStore func() content.Store) {
	desc := ocispec.Descriptor{Digest: digest.FromString("x"), Size: content.MaxBlobSize + 1}
	if _, err := content.ReadBlob(context.Background(), newStore(), desc); !errors.Is(err, errdefs.ErrLimit) {
		t.Errorf("ReadBlob over the limit error = %v, want ErrLimit", err)
	}
}

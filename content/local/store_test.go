package local

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-containers/strata/content"
	"github.com/strata-containers/strata/content/contenttest"
	"github.com/strata-containers/strata/errdefs"
)

func newTestStore(t *testing.T, root string, opts ...Opt) *Store {
	t.Helper()
	s, err := New(root, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	contenttest.Run(t, func(t *testing.T, root string) content.Store {
		return newTestStore(t, root)
	})
}

func TestBlobLayout(t *testing.T) {
	root := t.TempDir()
	s := newTestStore(t, root)
	data := []byte("layout")
	desc := ocispec.Descriptor{Digest: digest.FromBytes(data), Size: int64(len(data))}
	if err := content.IngestBytes(context.Background(), s, "r", desc, data); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(root, "blobs", "sha256", desc.Digest.Encoded())
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o444 {
		t.Errorf("blob mode = %v, want 0444", fi.Mode().Perm())
	}
	entries, err := os.ReadDir(filepath.Join(root, "ingest"))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Errorf("ingest dir has %d entries after commit, want 0", len(entries))
	}
}

func TestLockWait(t *testing.T) {
	root := t.TempDir()
	ctx := context.Background()
	data := []byte("waited for")
	desc := ocispec.Descriptor{Digest: digest.FromBytes(data), Size: int64(len(data))}

	held, err := newTestStore(t, root).Writer(ctx, "w", desc)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(200 * time.Millisecond)
		held.Write(data)
		held.Commit(ctx)
	}()
	_, err = newTestStore(t, root, WithLockWait(10*time.Second)).Writer(ctx, "w", desc)
	if !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Errorf("waiting Writer error = %v, want ErrAlreadyExists once the holder commits", err)
	}

	// A cancelled context ends the wait.
	data2 := []byte("never released")
	desc2 := ocispec.Descriptor{Digest: digest.FromBytes(data2), Size: int64(len(data2))}
	held2, err := newTestStore(t, root).Writer(ctx, "w2", desc2)
	if err != nil {
		t.Fatal(err)
	}
	defer held2.Close()
	cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	_, err = newTestStore(t, root, WithLockWait(time.Hour)).Writer(cctx, "w2", desc2)
	if !errors.Is(err, errdefs.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Writer with an expired context error = %v, want ErrUnavailable and DeadlineExceeded", err)
	}
}

func TestRemoveStaleIngests(t *testing.T) {
	root := t.TempDir()
	s := newTestStore(t, root)
	ctx := context.Background()

	open := func(ref string) content.Writer {
		data := []byte("partial " + ref)
		w, err := s.Writer(ctx, ref, ocispec.Descriptor{Digest: digest.FromBytes(data), Size: int64(len(data))})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(data[:4]); err != nil {
			t.Fatal(err)
		}
		return w
	}
	abandoned := open("abandoned")
	abandoned.Close()
	live := open("live")
	defer live.Close()

	// A fresh idle ingest is kept while it is newer than the cutoff.
	if n, err := s.RemoveStaleIngests(ctx, time.Hour); err != nil || n != 0 {
		t.Fatalf("RemoveStaleIngests(1h) = %d, %v, want 0, nil", n, err)
	}
	n, err := s.RemoveStaleIngests(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("RemoveStaleIngests(0) removed %d, want 1 (the live one is held)", n)
	}
	if _, err := os.Stat(s.ingestDir("abandoned")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("abandoned ingest still present: %v", err)
	}
	if _, err := os.Stat(s.ingestDir("live")); err != nil {
		t.Errorf("live ingest removed: %v", err)
	}
}

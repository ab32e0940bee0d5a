package image

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-containers/strata/errdefs"
)

func target(s string) ocispec.Descriptor {
	return ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString(s), Size: 42}
}

func TestPutGetListDelete(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "metadata.db")
	clock := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	s, err := NewStore(path, WithClock(func() time.Time { return clock }))
	if err != nil {
		t.Fatal(err)
	}

	if _, err := s.Get(ctx, "missing:1"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Get of a missing image error = %v, want ErrNotFound", err)
	}
	if got, err := s.List(ctx); err != nil || len(got) != 0 {
		t.Errorf("List of an empty store = %v, %v", got, err)
	}

	a := Image{Name: "example.com/a:1", Target: target("a"), Labels: map[string]string{"k": "v"}}
	if _, err := s.Put(ctx, a); err != nil {
		t.Fatal(err)
	}
	created := clock
	clock = clock.Add(time.Hour)
	a.Target = target("a2")
	a.Labels = nil
	stored, err := s.Put(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	want := Image{Name: a.Name, Target: target("a2"), CreatedAt: created, UpdatedAt: clock}
	if diff := cmp.Diff(want, stored); diff != "" {
		t.Errorf("Put update (-want +got):\n%s", diff)
	}

	// A second store on the same file, as another process would open it.
	s2, err := NewStore(path)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s2.Get(ctx, a.Name)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Get after update (-want +got):\n%s", diff)
	}

	b := Image{Name: "b:latest", Target: target("b"), Labels: map[string]string{"x": "y"}}
	if _, err := s.Put(ctx, b); err != nil {
		t.Fatal(err)
	}
	list, err := s2.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, img := range list {
		names = append(names, img.Name)
	}
	if diff := cmp.Diff([]string{"b:latest", "example.com/a:1"}, names); diff != "" {
		t.Errorf("List names (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(b.Labels, list[0].Labels); diff != "" {
		t.Errorf("List labels (-want +got):\n%s", diff)
	}

	if err := s.Delete(ctx, a.Name); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, a.Name); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("second Delete error = %v, want ErrNotFound", err)
	}
	if _, err := s.Get(ctx, a.Name); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Get after Delete error = %v, want ErrNotFound", err)
	}
}

func TestPutRejects(t *testing.T) {
	s, err := NewStore(filepath.Join(t.TempDir(), "metadata.db"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		img  Image
	}{
		{"empty name", Image{Target: target("x")}},
		{"space in name", Image{Name: "a b", Target: target("x")}},
		{"no media type", Image{Name: "a", Target: ocispec.Descriptor{Digest: digest.FromString("x")}}},
		{"bad digest", Image{Name: "a", Target: ocispec.Descriptor{MediaType: "m", Digest: "sha256:x"}}},
	}
	for _, tc := range tests {
		if _, err := s.Put(context.Background(), tc.img); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%s: Put error = %v, want ErrInvalidArgument", tc.name, err)
		}
	}
}

func TestConcurrentPut(t *testing.T) {
	path := filepath.Join(t.TempDir(), "metadata.db")
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() {
			s, err := NewStore(path)
			if err == nil {
				_, err = s.Put(context.Background(), Image{Name: fmt.Sprintf("img:%d", i), Target: target("x")})
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Put %d: %v", i, err)
		}
	}
	s, _ := NewStore(path)
	list, err := s.List(context.Background())
	if err != nil || len(list) != len(errs) {
		t.Errorf("List after concurrent puts = %d images, %v; want %d", len(list), err, len(errs))
	}
}

// Package image stores image records: a name mapped to the descriptor of
// the image's manifest, with timestamps and labels.
//
// Records live in a bbolt file, normally <strata-root>/metadata.db, that is
// opened for one transaction at a time through internal/boltdb so that many
// strata processes can share it. The bucket tree:
//
//	v1/                     schema version
//	  images/
//	    <name>/             one bucket per image
//	      target            JSON-encoded ocispec.Descriptor
//	      createdat         time.Time.MarshalBinary
//	      updatedat         time.Time.MarshalBinary
//	      labels/
//	        <key>           <value>
//
// A change to this tree needs a new version bucket and a migration.
package image

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"strings"
	"time"
	"unicode"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"

	"github.com/strata-containers/strata/errdefs"
	"github.com/strata-containers/strata/internal/boltdb"
)

// Image is a named image record.
type Image struct {
	// Name is the image reference, such as "docker.io/library/alpine:3.20".
	Name string
	// Target is the descriptor of the image's manifest, or of an index
	// when the record was stored that way.
	Target    ocispec.Descriptor
	CreatedAt time.Time
	UpdatedAt time.Time
	Labels    map[string]string
}

var (
	bucketV1     = []byte("v1")
	bucketImages = []byte("images")
	bucketLabels = []byte("labels")
	keyTarget    = []byte("target")
	keyCreatedAt = []byte("createdat")
	keyUpdatedAt = []byte("updatedat")
)

// maxNameLen bounds image names; bbolt keys must stay well under a page.
const maxNameLen = 1024

// Store reads and writes image records.
type Store struct {
	db  *boltdb.DB
	now func() time.Time
}

type config struct {
	now func() time.Time
}

// Opt configures a [Store].
type Opt func(*config)

// WithClock makes the store take CreatedAt and UpdatedAt from now, for
// tests.
func WithClock(now func() time.Time) Opt {
	return func(c *config) { c.now = now }
}

// NewStore returns a store for the bbolt file at path, normally
// <strata-root>/metadata.db. The file is created on first use.
func NewStore(path string, opts ...Opt) (*Store, error) {
	cfg := config{now: time.Now}
	for _, o := range opts {
		o(&cfg)
	}
	db, err := boltdb.New(path, createBuckets)
	if err != nil {
		return nil, fmt.Errorf("open image store %s: %w", path, err)
	}
	return &Store{db: db, now: cfg.now}, nil
}

func createBuckets(tx *bolt.Tx) error {
	v1, err := tx.CreateBucketIfNotExists(bucketV1)
	if err != nil {
		return fmt.Errorf("create bucket v1: %w", err)
	}
	if _, err := v1.CreateBucketIfNotExists(bucketImages); err != nil {
		return fmt.Errorf("create bucket v1/images: %w", err)
	}
	return nil
}

func imagesBucket(tx *bolt.Tx) *bolt.Bucket {
	v1 := tx.Bucket(bucketV1)
	if v1 == nil {
		return nil
	}
	return v1.Bucket(bucketImages)
}

// ValidateName checks that name can be stored: not empty, at most 1024
// bytes, and free of spaces and control characters.
func ValidateName(name string) error {
	if name == "" {
		return fmt.Errorf("check image name: empty name: %w", errdefs.ErrInvalidArgument)
	}
	if len(name) > maxNameLen {
		return fmt.Errorf("check image name %.40q...: longer than %d bytes: %w", name, maxNameLen, errdefs.ErrInvalidArgument)
	}
	if i := strings.IndexFunc(name, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }); i >= 0 {
		return fmt.Errorf("check image name %q: space or control character at byte %d: %w",
			name, i, errdefs.ErrInvalidArgument)
	}
	return nil
}

// Get returns the image name, or an error wrapping errdefs.ErrNotFound.
func (s *Store) Get(ctx context.Context, name string) (Image, error) {
	var img Image
	err := s.db.View(ctx, func(tx *bolt.Tx) error {
		b := imagesBucket(tx)
		if b == nil || b.Bucket([]byte(name)) == nil {
			return fmt.Errorf("get image %s: %w", name, errdefs.ErrNotFound)
		}
		var err error
		img, err = readImage(name, b.Bucket([]byte(name)))
		return err
	})
	return img, err
}

// List returns every image, sorted by name.
func (s *Store) List(ctx context.Context) ([]Image, error) {
	var out []Image
	err := s.db.View(ctx, func(tx *bolt.Tx) error {
		b := imagesBucket(tx)
		if b == nil {
			return nil
		}
		return b.ForEachBucket(func(k []byte) error {
			img, err := readImage(string(k), b.Bucket(k))
			if err != nil {
				return err
			}
			out = append(out, img)
			return nil
		})
	})
	return out, err
}

// Put creates the image img.Name or replaces its target and labels. It
// keeps the CreatedAt of an existing record, sets UpdatedAt to now, and
// returns the record as stored. The target must have a media type, a valid
// digest and a size that is not negative.
func (s *Store) Put(ctx context.Context, img Image) (Image, error) {
	if err := ValidateName(img.Name); err != nil {
		return Image{}, err
	}
	if img.Target.MediaType == "" {
		return Image{}, fmt.Errorf("put image %s: target %s has no media type: %w",
			img.Name, img.Target.Digest, errdefs.ErrInvalidArgument)
	}
	if err := img.Target.Digest.Validate(); err != nil {
		return Image{}, fmt.Errorf("put image %s: target digest %q: %w: %w",
			img.Name, img.Target.Digest, errdefs.ErrInvalidArgument, err)
	}
	if img.Target.Size < 0 {
		return Image{}, fmt.Errorf("put image %s: target size %d: %w", img.Name, img.Target.Size, errdefs.ErrInvalidArgument)
	}

	target, err := json.Marshal(img.Target)
	if err != nil {
		return Image{}, fmt.Errorf("put image %s: encode target: %w", img.Name, err)
	}
	now := s.now().UTC()
	stored := Image{Name: img.Name, Target: img.Target, CreatedAt: now, UpdatedAt: now, Labels: maps.Clone(img.Labels)}
	err = s.db.Update(ctx, func(tx *bolt.Tx) error {
		ib, err := imagesBucket(tx).CreateBucketIfNotExists([]byte(img.Name))
		if err != nil {
			return fmt.Errorf("put image %s: %w", img.Name, err)
		}
		if v := ib.Get(keyCreatedAt); v != nil {
			if err := stored.CreatedAt.UnmarshalBinary(v); err != nil {
				return fmt.Errorf("put image %s: decode createdat: %w", img.Name, err)
			}
		}
		return writeImage(ib, stored, target)
	})
	if err != nil {
		return Image{}, err
	}
	return stored, nil
}

// Delete removes the image name, or returns an error wrapping
// errdefs.ErrNotFound. Its blobs stay in the content store.
func (s *Store) Delete(ctx context.Context, name string) error {
	return s.db.Update(ctx, func(tx *bolt.Tx) error {
		err := imagesBucket(tx).DeleteBucket([]byte(name))
		if err == nil {
			return nil
		}
		if imagesBucket(tx).Bucket([]byte(name)) == nil {
			return fmt.Errorf("delete image %s: %w", name, errdefs.ErrNotFound)
		}
		return fmt.Errorf("delete image %s: %w", name, err)
	})
}

func writeImage(b *bolt.Bucket, img Image, target []byte) error {
	created, err := img.CreatedAt.MarshalBinary()
	if err != nil {
		return fmt.Errorf("put image %s: encode createdat: %w", img.Name, err)
	}
	updated, err := img.UpdatedAt.MarshalBinary()
	if err != nil {
		return fmt.Errorf("put image %s: encode updatedat: %w", img.Name, err)
	}
	for _, kv := range []struct{ k, v []byte }{
		{keyTarget, target}, {keyCreatedAt, created}, {keyUpdatedAt, updated},
	} {
		if err := b.Put(kv.k, kv.v); err != nil {
			return fmt.Errorf("put image %s: %w", img.Name, err)
		}
	}
	if b.Bucket(bucketLabels) != nil {
		if err := b.DeleteBucket(bucketLabels); err != nil {
			return fmt.Errorf("put image %s: clear labels: %w", img.Name, err)
		}
	}
	if len(img.Labels) == 0 {
		return nil
	}
	lb, err := b.CreateBucket(bucketLabels)
	if err != nil {
		return fmt.Errorf("put image %s: %w", img.Name, err)
	}
	for k, v := range img.Labels {
		if err := lb.Put([]byte(k), []byte(v)); err != nil {
			return fmt.Errorf("put image %s: label %q: %w", img.Name, k, err)
		}
	}
	return nil
}

func readImage(name string, b *bolt.Bucket) (Image, error) {
	img := Image{Name: name}
	if err := json.Unmarshal(b.Get(keyTarget), &img.Target); err != nil {
		return img, fmt.Errorf("read image %s: decode target: %w", name, err)
	}
	if err := img.CreatedAt.UnmarshalBinary(b.Get(keyCreatedAt)); err != nil {
		return img, fmt.Errorf("read image %s: decode createdat: %w", name, err)
	}
	if err := img.UpdatedAt.UnmarshalBinary(b.Get(keyUpdatedAt)); err != nil {
		return img, fmt.Errorf("read image %s: decode updatedat: %w", name, err)
	}
	if lb := b.Bucket(bucketLabels); lb != nil {
		img.Labels = map[string]string{}
		err := lb.ForEach(func(k, v []byte) error {
			img.Labels[string(k)] = string(v)
			return nil
		})
		if err != nil {
			return img, err
		}
	}
	return img, nil
}

// Command ctrd unpacks an OCI image layout the way containerd v2 does, for
// bench/run to compare against strata: containerd's own
// rootfs.ApplyLayersWithOpts with its overlay or native snapshotter and its
// file-system applier, in one process with no daemon.
//
//	ctrd -layout DIR -root DIR [-snapshotter overlayfs|native] [-ref latest] [-syncfs]
//
// It prints the chain ID of the top layer on stdout, and on stderr the gzip
// decompressor that containerd picked and whether syncfs was on. containerd
// runs igzip or unpigz when it finds them on PATH (unless
// CONTAINERD_DISABLE_IGZIP or CONTAINERD_DISABLE_PIGZ is true) and
// decompresses in process otherwise.
//
// -syncfs passes containerd's diff.WithSyncFs(true) to every layer's apply,
// as containerd does when its CRI plugin sets image_pull_with_sync_fs or its
// diff service sets sync_fs. The applier then calls syncfs(2) on the
// snapshot's directory after writing the layer and before the snapshot is
// committed. Without the flag the apply gets diff.WithSyncFs(false),
// containerd's default, and nothing is flushed before the commit.
//
// A second run on the same root finds every chain committed and applies
// nothing, which is the warm case.
//
// This is its own Go module so that strata's module never imports
// containerd.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/diff"
	"github.com/containerd/containerd/v2/core/diff/apply"
	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/containerd/v2/pkg/rootfs"
	"github.com/containerd/containerd/v2/plugins/snapshots/native"
	"github.com/containerd/containerd/v2/plugins/snapshots/overlay"
	"github.com/containerd/log"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func main() {
	layout := flag.String("layout", "", "OCI image layout `directory` to read")
	root := flag.String("root", "", "`directory` for the snapshotter's state")
	snapshotter := flag.String("snapshotter", "overlayfs", "snapshotter: overlayfs or native")
	ref := flag.String("ref", "latest", "org.opencontainers.image.ref.name of the image in the layout")
	syncFs := flag.Bool("syncfs", false,
		"flush each layer with syncfs(2) before its commit (containerd's diff.WithSyncFs)")
	flag.Parse()
	if *layout == "" || *root == "" {
		fmt.Fprintln(os.Stderr, "ctrd: -layout and -root are required")
		os.Exit(2)
	}
	_ = log.SetLevel("warn")

	chainID, err := run(context.Background(), *layout, *root, *snapshotter, *ref, *syncFs)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ctrd:", err)
		os.Exit(1)
	}
	fmt.Fprintln(os.Stderr, "ctrd: gzip decompressor:", gzipDecompressor())
	if *syncFs {
		fmt.Fprintln(os.Stderr, "ctrd: syncfs: on (diff.WithSyncFs(true))")
	} else {
		fmt.Fprintln(os.Stderr, "ctrd: syncfs: off (diff.WithSyncFs(false), containerd's default)")
	}
	fmt.Println(chainID)
}

func run(ctx context.Context, layout, root, snapshotter, ref string, syncFs bool) (digest.Digest, error) {
	p := layoutProvider(layout)
	layers, err := imageLayers(p, ref)
	if err != nil {
		return "", err
	}

	var sn snapshots.Snapshotter
	switch snapshotter {
	case "overlayfs":
		sn, err = overlay.NewSnapshotter(root)
	case "native":
		sn, err = native.NewSnapshotter(root)
	default:
		err = fmt.Errorf("unknown snapshotter %q: use overlayfs or native", snapshotter)
	}
	if err != nil {
		return "", fmt.Errorf("open snapshotter: %w", err)
	}
	defer sn.Close()

	// CRI's image pull in containerd v2.4.2 passes
	// diff.WithSyncFs(image_pull_with_sync_fs) to every layer's apply, true
	// or false, and so does this.
	opts := []diff.ApplyOpt{diff.WithSyncFs(syncFs)}
	return rootfs.ApplyLayersWithOpts(ctx, layers, sn, apply.NewFileSystemApplier(p), opts)
}

// imageLayers pairs the layer blobs of the manifest tagged ref with the diff
// IDs of its config.
func imageLayers(p layoutProvider, ref string) ([]rootfs.Layer, error) {
	var index ocispec.Index
	if err := p.readJSON(filepath.Join(string(p), "index.json"), &index); err != nil {
		return nil, err
	}
	var mdesc *ocispec.Descriptor
	for i, d := range index.Manifests {
		if d.Annotations[ocispec.AnnotationRefName] == ref {
			mdesc = &index.Manifests[i]
		}
	}
	if mdesc == nil {
		return nil, fmt.Errorf("layout %s has no manifest tagged %q", string(p), ref)
	}

	var manifest ocispec.Manifest
	if err := p.readJSON(p.blobPath(mdesc.Digest), &manifest); err != nil {
		return nil, err
	}
	var config ocispec.Image
	if err := p.readJSON(p.blobPath(manifest.Config.Digest), &config); err != nil {
		return nil, err
	}
	if len(config.RootFS.DiffIDs) != len(manifest.Layers) {
		return nil, fmt.Errorf("manifest %s has %d layers but its config %d diff IDs",
			mdesc.Digest, len(manifest.Layers), len(config.RootFS.DiffIDs))
	}

	layers := make([]rootfs.Layer, len(manifest.Layers))
	for i, blob := range manifest.Layers {
		layers[i] = rootfs.Layer{
			Blob: blob,
			Diff: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: config.RootFS.DiffIDs[i]},
		}
	}
	return layers, nil
}

// layoutProvider is a content.Provider that reads blobs straight from an
// OCI image layout directory, so that nothing is copied before the unpack.
type layoutProvider string

func (p layoutProvider) blobPath(d digest.Digest) string {
	return filepath.Join(string(p), "blobs", d.Algorithm().String(), d.Encoded())
}

func (p layoutProvider) readJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("decode %s: %w", path, err)
	}
	return nil
}

func (p layoutProvider) ReaderAt(_ context.Context, desc ocispec.Descriptor) (content.ReaderAt, error) {
	if err := desc.Digest.Validate(); err != nil {
		return nil, err
	}
	f, err := os.Open(p.blobPath(desc.Digest))
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &blobReader{File: f, size: fi.Size()}, nil
}

type blobReader struct {
	*os.File
	size int64
}

func (b *blobReader) Size() int64 { return b.size }

// gzipDecompressor names the gzip decompressor that containerd v2.4's
// pkg/archive/compression picks, by the same rules.
func gzipDecompressor() string {
	for _, c := range []struct{ cmd, env string }{
		{"igzip", "CONTAINERD_DISABLE_IGZIP"},
		{"unpigz", "CONTAINERD_DISABLE_PIGZ"},
	} {
		if disabled, _ := strconv.ParseBool(os.Getenv(c.env)); disabled {
			continue
		}
		if path, err := exec.LookPath(c.cmd); err == nil {
			return path
		} else if !errors.Is(err, exec.ErrNotFound) {
			return c.cmd + " (" + err.Error() + ")"
		}
	}
	return "klauspost/compress gzip (in process)"
}

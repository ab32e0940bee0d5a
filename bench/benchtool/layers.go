package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

type descriptor struct {
	Digest      string            `json:"digest"`
	Annotations map[string]string `json:"annotations"`
}

func layersMain(args []string) error {
	if len(args) != 1 {
		return errors.New("layers needs one OCI image layout directory")
	}
	layout := args[0]

	var index struct{ Manifests []descriptor }
	if err := readJSON(filepath.Join(layout, "index.json"), &index); err != nil {
		return err
	}
	var manifest string
	for _, d := range index.Manifests {
		if d.Annotations["org.opencontainers.image.ref.name"] == "latest" {
			manifest = d.Digest
		}
	}
	if manifest == "" {
		return fmt.Errorf("layout %s has no manifest tagged latest", layout)
	}
	var m struct{ Layers []descriptor }
	if err := readJSON(blobPath(layout, manifest), &m); err != nil {
		return err
	}
	for _, l := range m.Layers {
		p := blobPath(layout, l.Digest)
		kind, err := compressionOf(p)
		if err != nil {
			return err
		}
		fmt.Printf("%s %s\n", kind, p)
	}
	return nil
}

func blobPath(layout, dgst string) string {
	alg, hex, _ := strings.Cut(dgst, ":")
	return filepath.Join(layout, "blobs", alg, hex)
}

func readJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("decode %s: %w", path, err)
	}
	return nil
}

func compressionOf(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	var magic [4]byte
	n, err := io.ReadFull(f, magic[:])
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	switch {
	case bytes.HasPrefix(magic[:n], []byte{0x1f, 0x8b}):
		return "gzip", nil
	case bytes.HasPrefix(magic[:n], []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return "zstd", nil
	}
	return "none", nil
}

package archive

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/strata-containers/strata/archive/tartest"
)

// BenchmarkApply applies a layer of 10,000 small files in 100 directories
// into a fresh directory per iteration.
func BenchmarkApply(b *testing.B) {
	var es []tartest.Entry
	for d := range 100 {
		es = append(es, dir(fmt.Sprintf("d%d/", d)))
		for f := range 100 {
			es = append(es, file(fmt.Sprintf("d%d/f%d", d, f), "small file content\n"))
		}
	}
	layer := tartest.Tar(b, es...)
	b.SetBytes(int64(len(layer)))
	base := b.TempDir()
	for i := 0; b.Loop(); i++ {
		root := fmt.Sprintf("%s/%d", base, i)
		if err := os.Mkdir(root, 0o755); err != nil {
			b.Fatal(err)
		}
		if _, err := Apply(context.Background(), root, bytes.NewReader(layer)); err != nil {
			b.Fatal(err)
		}
	}
}

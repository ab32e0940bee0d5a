// Command gendata writes a fixed number of seeded pseudo-random bytes to
// standard output, for the benchmark images that scripts/build-images.sh
// makes. The same flags give the same bytes on every machine and Go
// release, because ChaCha8 and PCG are specified algorithms in math/rand/v2.
//
//	gendata -kind random -size 1073741824 >random.bin
//	gendata -kind text -size 1073741824 >text.txt
//
// Kind random is a ChaCha8 keystream, which gzip cannot shrink. Kind text
// is lines of twelve words drawn with a Zipf law from a vocabulary of
// 50,000 made-up words, which gzip -6 shrinks about 2.5 times.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
)

func main() {
	kind := flag.String("kind", "random", "what to write: random or text")
	size := flag.Int64("size", 1<<30, "number of bytes to write")
	seed := flag.Uint64("seed", 20240101, "seed of the generator")
	flag.Parse()

	w := bufio.NewWriterSize(os.Stdout, 1<<20)
	var err error
	switch *kind {
	case "random":
		err = writeRandom(w, *size, *seed)
	case "text":
		err = writeText(w, *size, *seed)
	default:
		err = fmt.Errorf("unknown kind %q: use random or text", *kind)
	}
	if err == nil {
		err = w.Flush()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gendata:", err)
		os.Exit(1)
	}
}

func writeRandom(w io.Writer, size int64, seed uint64) error {
	var key [32]byte
	pcg := rand.NewPCG(seed, seed)
	for i := range key {
		key[i] = byte(pcg.Uint64())
	}
	_, err := io.CopyN(w, rand.NewChaCha8(key), size)
	return err
}

// letters and weights are the English letter frequencies in percent, most
// frequent first, so that made-up words look like text to an entropy coder.
const letters = "etaoinshrdlcumwfgypbvkjxqz"

var weights = []float64{12.7, 9.1, 8.2, 7.5, 7.0, 6.7, 6.3, 6.1, 6.0, 4.3, 4.0, 2.8, 2.8,
	2.4, 2.4, 2.2, 2.0, 2.0, 1.9, 1.5, 1.0, 0.8, 0.15, 0.15, 0.1, 0.07}

func writeText(w io.Writer, size int64, seed uint64) error {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	vocab := makeVocab(r, 50000)
	zipf := rand.NewZipf(r, 1.01, 3, uint64(len(vocab)-1))

	line := make([]byte, 0, 256)
	for size > 0 {
		line = line[:0]
		for i := range 12 {
			if i > 0 {
				line = append(line, ' ')
			}
			line = append(line, vocab[zipf.Uint64()]...)
		}
		line = append(line, '\n')
		if int64(len(line)) > size {
			line = line[:size]
		}
		if _, err := w.Write(line); err != nil {
			return err
		}
		size -= int64(len(line))
	}
	return nil
}

func makeVocab(r *rand.Rand, n int) [][]byte {
	var total float64
	for _, f := range weights {
		total += f
	}
	vocab := make([][]byte, n)
	for i := range vocab {
		word := make([]byte, 2+r.IntN(10))
		for j := range word {
			word[j] = pickLetter(r.Float64() * total)
		}
		vocab[i] = word
	}
	return vocab
}

func pickLetter(x float64) byte {
	for i, f := range weights {
		if x < f {
			return letters[i]
		}
		x -= f
	}
	return letters[len(letters)-1]
}

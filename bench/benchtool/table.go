package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
)

// sample is one line that measure wrote.
type sample struct {
	image, tool, phase string
	wall, cpu          float64
	rssKiB             int64
	status             int
}

// imageSize is one line of the images file that bench/run writes.
type imageSize struct {
	name                string
	layers              int
	compressed, tarSize int64
	entries             int64
}

// stats summarises the samples of one tool and phase on one image.
type stats struct {
	tool, phase       string
	n, failed         int
	wall, wallMin     float64
	wallMax, cpu      float64
	rssMedian, rssMax int64
}

func tableMain(args []string) error {
	fs := flag.NewFlagSet("table", flag.ExitOnError)
	results := fs.String("results", "", "`file` that measure appended to")
	images := fs.String("images", "", "`file` of image sizes: name, layers, compressed bytes, tar bytes, entries")
	if err := fs.Parse(args); err != nil {
		return err
	}
	samples, err := readSamples(*results)
	if err != nil {
		return err
	}
	sizes, err := readSizes(*images)
	if err != nil {
		return err
	}

	w := bufio.NewWriter(os.Stdout)
	all := map[string][]stats{}
	for _, img := range sizes {
		st := summarise(samples, img.name)
		if len(st) == 0 {
			continue
		}
		all[img.name] = st
		writeImageTable(w, img, st)
	}
	writeTargets(w, all, sizes)
	return w.Flush()
}

func readSamples(path string) ([]sample, error) {
	var out []sample
	err := readTSV(path, 9, func(f []string) error {
		status, err := strconv.Atoi(f[8])
		if err != nil {
			return err
		}
		wall, err1 := strconv.ParseFloat(f[4], 64)
		user, err2 := strconv.ParseFloat(f[5], 64)
		sys, err3 := strconv.ParseFloat(f[6], 64)
		rss, err4 := strconv.ParseInt(f[7], 10, 64)
		if err := errors.Join(err1, err2, err3, err4); err != nil {
			return err
		}
		out = append(out, sample{
			image: f[0], tool: f[1], phase: f[2],
			wall: wall, cpu: user + sys, rssKiB: rss, status: status,
		})
		return nil
	})
	return out, err
}

func readSizes(path string) ([]imageSize, error) {
	var out []imageSize
	err := readTSV(path, 5, func(f []string) error {
		layers, err1 := strconv.Atoi(f[1])
		comp, err2 := strconv.ParseInt(f[2], 10, 64)
		tarSize, err3 := strconv.ParseInt(f[3], 10, 64)
		entries, err4 := strconv.ParseInt(f[4], 10, 64)
		if err := errors.Join(err1, err2, err3, err4); err != nil {
			return err
		}
		out = append(out, imageSize{f[0], layers, comp, tarSize, entries})
		return nil
	})
	return out, err
}

func readTSV(path string, fields int, fn func([]string) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for line := 1; s.Scan(); line++ {
		rec := strings.Split(s.Text(), "\t")
		if len(rec) != fields {
			return fmt.Errorf("%s:%d: %d fields, expected %d", path, line, len(rec), fields)
		}
		if err := fn(rec); err != nil {
			return fmt.Errorf("%s:%d: %w", path, line, err)
		}
	}
	return s.Err()
}

// summarise returns the stats of every tool and phase measured on image, in
// the order in which they first appear.
func summarise(samples []sample, image string) []stats {
	type key struct{ tool, phase string }
	var order []key
	groups := map[key][]sample{}
	for _, s := range samples {
		if s.image != image {
			continue
		}
		k := key{s.tool, s.phase}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], s)
	}

	var out []stats
	for _, k := range order {
		var walls, cpus []float64
		var rss []int64
		failed := 0
		for _, s := range groups[k] {
			if s.status != 0 {
				failed++
				continue
			}
			walls = append(walls, s.wall)
			cpus = append(cpus, s.cpu)
			rss = append(rss, s.rssKiB)
		}
		if len(walls) == 0 {
			out = append(out, stats{tool: k.tool, phase: k.phase, failed: failed})
			continue
		}
		slices.Sort(walls)
		out = append(out, stats{
			tool: k.tool, phase: k.phase, n: len(walls), failed: failed,
			wall: median(walls), wallMin: walls[0], wallMax: walls[len(walls)-1],
			cpu: median(cpus), rssMedian: medianInt(rss), rssMax: slices.Max(rss),
		})
	}
	return out
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func medianInt(v []int64) int64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

func writeImageTable(w io.Writer, img imageSize, st []stats) {
	fmt.Fprintf(w, "### %s\n\n", img.name)
	fmt.Fprintf(w, "%d layer(s), %.1f MB compressed, %.1f MB of tar, %d tar entries. "+
		"Wall and CPU in seconds, median (min to max) of n runs; MB/s and files/s "+
		"from the median wall over the tar bytes and entries.\n\n",
		img.layers, mb(img.compressed), mb(img.tarSize), img.entries)
	fmt.Fprintln(w, "| tool | phase | n | wall s median (min to max) | CPU s | MB/s | files/s | peak RSS MiB median (max) |")
	fmt.Fprintln(w, "| --- | --- | --- | --- | --- | --- | --- | --- |")
	for _, s := range st {
		if s.n == 0 {
			fmt.Fprintf(w, "| %s | %s | 0 | failed in all %d runs (see the log) | - | - | - | - |\n",
				s.tool, s.phase, s.failed)
			continue
		}
		rate, files := "-", "-"
		if s.phase == "cold" && s.wall > 0 {
			rate = fmt.Sprintf("%.0f", mb(img.tarSize)/s.wall)
			files = fmt.Sprintf("%.0f", float64(img.entries)/s.wall)
		}
		fmt.Fprintf(w, "| %s | %s | %d | %s (%s to %s) | %.3f | %s | %s | %.1f (%.1f) |\n",
			s.tool, s.phase, s.n, secs(s.wall), secs(s.wallMin), secs(s.wallMax), s.cpu,
			rate, files, float64(s.rssMedian)/1024, float64(s.rssMax)/1024)
	}
	fmt.Fprintln(w)
}

func secs(s float64) string {
	if s < 0.1 {
		return fmt.Sprintf("%.4f", s)
	}
	return fmt.Sprintf("%.3f", s)
}

func mb(b int64) float64 { return float64(b) / 1e6 }

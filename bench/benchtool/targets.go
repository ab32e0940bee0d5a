package main

import (
	"fmt"
	"io"
	"strings"
)

// writeTargets prints strata's targets as ratios of the medians, for each
// target whose figures were measured.
func writeTargets(w io.Writer, all map[string][]stats, sizes []imageSize) {
	find := func(image, tool, phase string) (stats, bool) {
		for _, s := range all[image] {
			if s.tool == tool && s.phase == phase {
				return s, true
			}
		}
		return stats{}, false
	}
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "not met"
	}

	fmt.Fprintln(w, "### Targets")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| target | measured | verdict |")
	fmt.Fprintln(w, "| --- | --- | --- |")

	if s, ok := find("debian", "strata-overlayfs", "cold"); ok {
		if c, ok := find("debian", "ctrd-overlayfs", "cold"); ok {
			r := s.wall / c.wall
			fmt.Fprintf(w, "| debian cold overlayfs: strata wall <= 0.5 x containerd v2 | %.2f x (%.3f s / %.3f s) | %s |\n",
				r, s.wall, c.wall, verdict(r <= 0.5))
		}
	}
	if s, ok := find("many-files", "strata-overlayfs", "cold"); ok {
		if c, ok := find("many-files", "ctrd-overlayfs", "cold"); ok {
			r := c.wall / s.wall
			fmt.Fprintf(w, "| many-files cold overlayfs: strata files/s >= 2 x containerd v2 | %.2f x | %s |\n",
				r, verdict(r >= 2))
		}
	}
	for _, img := range []string{"big-file", "big-file-text"} {
		s, ok1 := find(img, "strata-overlayfs", "cold")
		f, ok2 := find(img, "floor-decompress", "cold")
		if ok1 && ok2 {
			r := s.wall / f.wall
			fmt.Fprintf(w, "| %s cold overlayfs: strata wall <= 1.0 x pigz -dc | %.2f x (%.3f s / %.3f s) | %s |\n",
				img, r, s.wall, f.wall, verdict(r <= 1.0))
		}
	}

	var warmMax float64
	var warmWhere string
	var rssMax int64
	var rssWhere string
	for _, img := range sizes {
		for _, s := range all[img.name] {
			if !strings.HasPrefix(s.tool, "strata-") {
				continue
			}
			if s.phase == "warm" && s.wall > warmMax {
				warmMax, warmWhere = s.wall, img.name+" "+s.tool
			}
			if s.rssMax > rssMax {
				rssMax, rssWhere = s.rssMax, img.name+" "+s.tool+" "+s.phase
			}
		}
	}
	if warmWhere != "" {
		fmt.Fprintf(w, "| warm unpack < 20 ms (slowest median) | %.1f ms (%s) | %s |\n",
			warmMax*1000, warmWhere, verdict(warmMax < 0.020))
	}
	if rssWhere != "" {
		fmt.Fprintf(w, "| strata peak RSS < 64 MiB (max of all runs) | %.1f MiB (%s) | %s |\n",
			float64(rssMax)/1024, rssWhere, verdict(rssMax < 64*1024))
	}
	fmt.Fprintln(w)
}

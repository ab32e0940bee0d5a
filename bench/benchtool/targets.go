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

	// Each ratio is given against every baseline that ran: containerd with
	// the gzip program it found (igzip before unpigz) and with unpigz, and
	// the pigz and igzip floors. The syncfs baseline is containerd with a
	// syncfs before each commit, so that both sides flush each layer as
	// strata does by default.
	for _, base := range []struct{ tool, name string }{
		{"ctrd-overlayfs", "containerd v2"},
		{"ctrd-overlayfs-unpigz", "containerd v2 with unpigz"},
		{"ctrd-overlayfs-syncfs", "containerd v2 with syncfs (both flush each layer)"},
	} {
		if s, ok := find("debian", "strata-overlayfs", "cold"); ok {
			if c, ok := find("debian", base.tool, "cold"); ok {
				r := s.wall / c.wall
				fmt.Fprintf(w, "| debian cold overlayfs: strata wall <= 0.5 x %s | %.2f x (%.3f s / %.3f s) | %s |\n",
					base.name, r, s.wall, c.wall, verdict(r <= 0.5))
			}
		}
		if s, ok := find("many-files", "strata-overlayfs", "cold"); ok {
			if c, ok := find("many-files", base.tool, "cold"); ok {
				r := c.wall / s.wall
				fmt.Fprintf(w, "| many-files cold overlayfs: strata files/s >= 2 x %s | %.2f x | %s |\n",
					base.name, r, verdict(r >= 2))
			}
		}
	}
	for _, img := range []string{"big-file", "big-file-text"} {
		for _, floor := range []struct{ tool, name string }{
			{"floor-decompress", "pigz -dc"},
			{"floor-igzip", "igzip -dc"},
		} {
			s, ok1 := find(img, "strata-overlayfs", "cold")
			f, ok2 := find(img, floor.tool, "cold")
			if ok1 && ok2 {
				r := s.wall / f.wall
				fmt.Fprintf(w, "| %s cold overlayfs: strata wall <= 1.0 x %s | %.2f x (%.3f s / %.3f s) | %s |\n",
					img, floor.name, r, s.wall, f.wall, verdict(r <= 1.0))
			}
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

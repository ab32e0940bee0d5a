package oci

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-containers/strata/errdefs"
)

// DefaultPlatform fills the fields a requested platform leaves empty.
var DefaultPlatform = ocispec.Platform{OS: "linux", Architecture: "amd64"}

// Host returns the platform of the running program, normalized. On 32-bit
// arm the variant comes from /proc/cpuinfo, v7 when that cannot be read.
func Host() ocispec.Platform {
	p := ocispec.Platform{OS: runtime.GOOS, Architecture: runtime.GOARCH}
	if p.Architecture == "arm" {
		p.Variant = armVariant()
	}
	return Normalize(p)
}

// armVariant reads the ARM architecture version of the CPU.
func armVariant() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "v7"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		key, value, ok := strings.Cut(sc.Text(), ":")
		if !ok || strings.TrimSpace(key) != "CPU architecture" {
			continue
		}
		// 32-bit programs cannot run v8-only code, so v8 CPUs count as v7.
		if n, err := strconv.Atoi(strings.TrimSpace(value)); err == nil && n >= 5 && n < 8 {
			return "v" + strconv.Itoa(n)
		}
		return "v7"
	}
	return "v7"
}

// Normalize lower-cases p and maps common aliases to Go's names: x86_64 to
// amd64, aarch64 to arm64 (variant v8), armhf to arm/v7, armel to arm/v6,
// i386 and i686 to 386. A missing arm variant becomes v7 and amd64's v1
// becomes empty, so that equal platforms compare equal.
func Normalize(p ocispec.Platform) ocispec.Platform {
	p.OS = strings.ToLower(p.OS)
	p.Architecture = strings.ToLower(p.Architecture)
	p.Variant = strings.ToLower(p.Variant)
	switch p.Architecture {
	case "x86_64", "x86-64":
		p.Architecture = "amd64"
	case "aarch64":
		p.Architecture = "arm64"
	case "armhf":
		p.Architecture, p.Variant = "arm", "v7"
	case "armel":
		p.Architecture, p.Variant = "arm", "v6"
	case "i386", "i686":
		p.Architecture = "386"
	}
	switch p.Architecture {
	case "amd64":
		if p.Variant == "v1" {
			p.Variant = ""
		}
	case "arm64":
		if p.Variant == "" || p.Variant == "8" {
			p.Variant = "v8"
		}
	case "arm":
		switch p.Variant {
		case "":
			p.Variant = "v7"
		case "5", "6", "7", "8":
			p.Variant = "v" + p.Variant
		}
	}
	return p
}

// ParsePlatform parses "os/arch" or "os/arch/variant", for example
// "linux/arm/v7", and normalizes it.
func ParsePlatform(s string) (ocispec.Platform, error) {
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 || slices.Contains(parts, "") {
		return ocispec.Platform{}, fmt.Errorf("parse platform %q: expected os/arch or os/arch/variant: %w",
			s, errdefs.ErrInvalidArgument)
	}
	p := ocispec.Platform{OS: parts[0], Architecture: parts[1]}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	return Normalize(p), nil
}

// FormatPlatform returns p as "os/arch" or "os/arch/variant".
func FormatPlatform(p ocispec.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// Match scores how well an image built for have runs on want: 0 is no
// match, and higher is better. An exact match scores highest. An arm or
// amd64 image for an older variant than want's also runs there, so it
// matches with a lower score the older it is.
func Match(want, have ocispec.Platform) int {
	want, have = Normalize(want), Normalize(have)
	if want.OS != have.OS || want.Architecture != have.Architecture {
		return 0
	}
	if want.Variant == have.Variant {
		return 100
	}
	w, wok := variantLevel(want)
	h, hok := variantLevel(have)
	if !wok || !hok || h > w {
		return 0
	}
	return 100 - (w - h)
}

// variantLevel returns the number in an arm (v5 to v8) or amd64 (v1 to v4)
// variant.
func variantLevel(p ocispec.Platform) (int, bool) {
	v := p.Variant
	if p.Architecture == "amd64" && v == "" {
		v = "v1"
	}
	if p.Architecture != "arm" && p.Architecture != "amd64" {
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimPrefix(v, "v"))
	return n, err == nil && strings.HasPrefix(v, "v")
}

// SelectManifest returns the entry of index that best matches platform.
// Empty fields of platform are taken from [DefaultPlatform]. An index with
// a single entry that has no platform returns that entry. When nothing
// matches, the error wraps errdefs.ErrNotFound and lists the platforms the
// index offers.
func SelectManifest(index ocispec.Index, platform ocispec.Platform) (ocispec.Descriptor, error) {
	if platform.OS == "" {
		platform.OS = DefaultPlatform.OS
	}
	if platform.Architecture == "" {
		platform.Architecture = DefaultPlatform.Architecture
	}

	best, bestScore := -1, 0
	var offered []string
	for i, m := range index.Manifests {
		if m.Platform == nil {
			continue
		}
		offered = append(offered, FormatPlatform(*m.Platform))
		if score := Match(platform, *m.Platform); score > bestScore {
			best, bestScore = i, score
		}
	}
	if best >= 0 {
		return index.Manifests[best], nil
	}
	if len(index.Manifests) == 1 && index.Manifests[0].Platform == nil {
		return index.Manifests[0], nil
	}
	if len(offered) == 0 {
		return ocispec.Descriptor{}, fmt.Errorf("select manifest for %s: index has %d entries and none names a platform: %w",
			FormatPlatform(Normalize(platform)), len(index.Manifests), errdefs.ErrNotFound)
	}
	return ocispec.Descriptor{}, fmt.Errorf("select manifest for %s: index offers only %s: %w",
		FormatPlatform(Normalize(platform)), strings.Join(offered, ", "), errdefs.ErrNotFound)
}

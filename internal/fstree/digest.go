package fstree

import (
	"crypto/sha256"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
)

// maxDiffLines bounds [Diff]'s output, so that a tree compared with an empty
// one does not print thousands of lines into a test log.
const maxDiffLines = 200

// Digest returns the sha256 of entries in path order, whatever order they are
// given in. Two trees have the same digest exactly when [Walk], called with
// the same options, recorded the same entries for both.
func Digest(entries []Entry) digest.Digest {
	h := sha256.New()
	for _, e := range sorted(entries) {
		writeEntry(h, e)
	}
	return digest.NewDigest(digest.SHA256, h)
}

// writeEntry writes one line per entry. Every string is quoted, so a name
// with spaces, newlines or invalid UTF-8 cannot run into the next field.
func writeEntry(w io.Writer, e Entry) {
	fmt.Fprintf(w, "%q %s %04o %d %d %d %q %q %d %d %q %d",
		e.Path, e.Type, e.Mode, e.UID, e.GID, e.Size, e.Content, e.Target,
		e.Rdev, e.ModTime, e.LinkGroup, len(e.Xattrs))
	for _, x := range e.Xattrs {
		fmt.Fprintf(w, " %q=%q", x.Name, x.Value)
	}
	fmt.Fprintln(w)
}

func sorted(entries []Entry) []Entry {
	s := append([]Entry(nil), entries...)
	sort.SliceStable(s, func(i, j int) bool { return s[i].Path < s[j].Path })
	return s
}

// Diff describes how got differs from want, one line per difference, or
// returns "" when they are equal. A line starts with "-" for a path only in
// want, "+" for a path only in got, and "~" for a path in both whose fields
// differ, followed by each field as want -> got. Paths are quoted as Go
// strings. Past 200 lines the rest are counted, not listed.
func Diff(want, got []Entry) string {
	want, got = sorted(want), sorted(got)
	var lines []string
	i, j := 0, 0
	for i < len(want) || j < len(got) {
		switch {
		case j == len(got) || (i < len(want) && want[i].Path < got[j].Path):
			lines = append(lines, fmt.Sprintf("- %q %s", want[i].Path, want[i].Type))
			i++
		case i == len(want) || got[j].Path < want[i].Path:
			lines = append(lines, fmt.Sprintf("+ %q %s", got[j].Path, got[j].Type))
			j++
		default:
			if changes := diffFields(want[i], got[j]); changes != "" {
				lines = append(lines, fmt.Sprintf("~ %q %s", want[i].Path, changes))
			}
			i++
			j++
		}
	}

	if len(lines) > maxDiffLines {
		more := len(lines) - maxDiffLines
		lines = append(lines[:maxDiffLines], fmt.Sprintf("... and %d more differences", more))
	}
	if len(lines) == 0 {
		return ""
	}
	return strings.Join(lines, "\n") + "\n"
}

func diffFields(want, got Entry) string {
	var changes []string
	for _, f := range describe(want) {
		g := field(describe(got), f.name)
		if f.value != g {
			changes = append(changes, fmt.Sprintf("%s: %s -> %s", f.name, f.value, g))
		}
	}
	return strings.Join(changes, ", ")
}

type namedValue struct{ name, value string }

func field(fields []namedValue, name string) string {
	for _, f := range fields {
		if f.name == name {
			return f.value
		}
	}
	return ""
}

// describe renders each field of e the way a person reads it: octal modes,
// major:minor devices, UTC times.
func describe(e Entry) []namedValue {
	xattrs := make([]string, 0, len(e.Xattrs))
	for _, x := range e.Xattrs {
		xattrs = append(xattrs, fmt.Sprintf("%s=%q", x.Name, x.Value))
	}
	return []namedValue{
		{"type", string(e.Type)},
		{"mode", fmt.Sprintf("%04o", e.Mode)},
		{"uid", fmt.Sprint(e.UID)},
		{"gid", fmt.Sprint(e.GID)},
		{"size", fmt.Sprint(e.Size)},
		{"content", string(e.Content)},
		{"target", fmt.Sprintf("%q", e.Target)},
		{"xattrs", "[" + strings.Join(xattrs, " ") + "]"},
		{"rdev", fmt.Sprintf("%d:%d", major(e.Rdev), minor(e.Rdev))},
		{"mtime", time.Unix(0, e.ModTime).UTC().Format(time.RFC3339Nano)},
		{"linkgroup", fmt.Sprintf("%q", e.LinkGroup)},
	}
}

// major and minor split a device number in Linux's encoding, as glibc's
// gnu_dev_major and gnu_dev_minor do.
func major(dev uint64) uint64 { return (dev>>8)&0xfff | (dev>>32)&0xfffff000 }

func minor(dev uint64) uint64 { return dev&0xff | (dev>>12)&0xffffff00 }

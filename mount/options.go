package mount

import "strings"

// ReadOnly reports whether the options contain "ro" without a later "rw".
func (m Mount) ReadOnly() bool {
	ro := false
	for _, o := range m.Options {
		switch o {
		case "ro":
			ro = true
		case "rw":
			ro = false
		}
	}
	return ro
}

// UpperDir returns the value of the last "upperdir=" option, or "" when the
// mount has none.
func (m Mount) UpperDir() string { return m.option("upperdir") }

// WorkDir returns the value of the last "workdir=" option, or "" when the
// mount has none.
func (m Mount) WorkDir() string { return m.option("workdir") }

// LowerDirs returns the directories of the "lowerdir=" option, topmost first,
// with overlayfs escapes ("\:" and "\\") removed. It returns nil when the
// mount has no lowerdir option.
func (m Mount) LowerDirs() []string {
	v, ok := m.lookup("lowerdir")
	if !ok {
		return nil
	}
	return SplitLowerDirs(v)
}

// SplitLowerDirs splits the value of an overlayfs "lowerdir=" option at
// unescaped colons and removes the backslash escapes.
func SplitLowerDirs(value string) []string {
	var (
		dirs []string
		cur  strings.Builder
	)
	for i := 0; i < len(value); i++ {
		c := value[i]
		switch {
		case c == '\\' && i+1 < len(value):
			i++
			cur.WriteByte(value[i])
		case c == ':':
			dirs = append(dirs, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(c)
		}
	}
	return append(dirs, cur.String())
}

// JoinLowerDirs builds the value of a "lowerdir=" option from directories
// given topmost first, escaping colons and backslashes in them.
func JoinLowerDirs(dirs []string) string {
	escaped := make([]string, len(dirs))
	r := strings.NewReplacer(`\`, `\\`, `:`, `\:`)
	for i, d := range dirs {
		escaped[i] = r.Replace(d)
	}
	return strings.Join(escaped, ":")
}

func (m Mount) option(name string) string {
	v, _ := m.lookup(name)
	return v
}

func (m Mount) lookup(name string) (string, bool) {
	var (
		value string
		found bool
	)
	prefix := name + "="
	for _, o := range m.Options {
		if v, ok := strings.CutPrefix(o, prefix); ok {
			value, found = v, true
		}
	}
	return value, found
}

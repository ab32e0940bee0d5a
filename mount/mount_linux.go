package mount

import (
	"errors"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// flagOption is what a mount(8) flag option does to the mount(2) flags.
type flagOption struct {
	clear bool
	flag  uintptr
}

var flagOptions = map[string]flagOption{
	"async":         {true, unix.MS_SYNCHRONOUS},
	"atime":         {true, unix.MS_NOATIME},
	"bind":          {false, unix.MS_BIND},
	"defaults":      {false, 0},
	"dev":           {true, unix.MS_NODEV},
	"diratime":      {true, unix.MS_NODIRATIME},
	"dirsync":       {false, unix.MS_DIRSYNC},
	"exec":          {true, unix.MS_NOEXEC},
	"mand":          {false, unix.MS_MANDLOCK},
	"noatime":       {false, unix.MS_NOATIME},
	"nodev":         {false, unix.MS_NODEV},
	"nodiratime":    {false, unix.MS_NODIRATIME},
	"noexec":        {false, unix.MS_NOEXEC},
	"nomand":        {true, unix.MS_MANDLOCK},
	"norelatime":    {true, unix.MS_RELATIME},
	"nostrictatime": {true, unix.MS_STRICTATIME},
	"nosuid":        {false, unix.MS_NOSUID},
	"rbind":         {false, unix.MS_BIND | unix.MS_REC},
	"relatime":      {false, unix.MS_RELATIME},
	"remount":       {false, unix.MS_REMOUNT},
	"ro":            {false, unix.MS_RDONLY},
	"rw":            {true, unix.MS_RDONLY},
	"strictatime":   {false, unix.MS_STRICTATIME},
	"suid":          {true, unix.MS_NOSUID},
	"sync":          {false, unix.MS_SYNCHRONOUS},
}

// propagationOptions change the propagation type of the mount, which
// mount(2) accepts only in a call of its own.
var propagationOptions = map[string]uintptr{
	"private":     unix.MS_PRIVATE,
	"rprivate":    unix.MS_PRIVATE | unix.MS_REC,
	"shared":      unix.MS_SHARED,
	"rshared":     unix.MS_SHARED | unix.MS_REC,
	"slave":       unix.MS_SLAVE,
	"rslave":      unix.MS_SLAVE | unix.MS_REC,
	"unbindable":  unix.MS_UNBINDABLE,
	"runbindable": unix.MS_UNBINDABLE | unix.MS_REC,
}

// parsedOptions are a mount's options split the way mount(2) takes them.
type parsedOptions struct {
	flags       uintptr
	propagation []uintptr
	data        []string
}

func parseOptions(options []string) parsedOptions {
	var p parsedOptions
	for _, o := range options {
		if f, ok := flagOptions[o]; ok {
			if f.clear {
				p.flags &^= f.flag
			} else {
				p.flags |= f.flag
			}
			continue
		}
		if f, ok := propagationOptions[o]; ok {
			p.propagation = append(p.propagation, f)
			continue
		}
		p.data = append(p.data, o)
	}
	return p
}

// Mount mounts m on target.
//
// A bind mount ("bind" type, or a "bind" or "rbind" option) is made first
// and then remounted when other flags such as "ro" are set, because
// mount(2) ignores them on the first call of a bind. An overlay whose data
// reaches the page size is mounted with the file system context API, and the
// package documentation gives the limits.
func (m Mount) Mount(target string) error {
	p := parseOptions(m.Options)
	if m.Type == "bind" {
		p.flags |= unix.MS_BIND
	}

	var err error
	switch {
	case p.flags&unix.MS_BIND != 0:
		err = m.mountBind(target, p)
	case m.Type == "overlay" && len(strings.Join(p.data, ",")) >= unix.Getpagesize():
		err = mountOverlayFS(target, p)
	default:
		err = unix.Mount(m.Source, target, m.Type, p.flags, strings.Join(p.data, ","))
	}
	if err == nil {
		err = setPropagation(target, p.propagation)
	}
	if err != nil {
		return &Error{Op: "mount", Type: m.Type, Source: m.Source, Target: target, Err: err}
	}
	return nil
}

func (m Mount) mountBind(target string, p parsedOptions) error {
	data := strings.Join(p.data, ",")
	bindFlags := p.flags & (unix.MS_BIND | unix.MS_REC)
	if err := unix.Mount(m.Source, target, "", bindFlags, data); err != nil {
		return err
	}

	rest := p.flags &^ (unix.MS_BIND | unix.MS_REC | unix.MS_REMOUNT)
	if rest == 0 {
		return nil
	}
	err := unix.Mount("", target, "", unix.MS_REMOUNT|unix.MS_BIND|rest, "")
	if err != nil {
		// Leave nothing half done: a bind that should be read-only must
		// not stay writable.
		if uerr := unix.Unmount(target, unix.MNT_DETACH); uerr != nil {
			return errors.Join(err, uerr)
		}
	}
	return err
}

func setPropagation(target string, propagation []uintptr) error {
	for _, f := range propagation {
		if err := unix.Mount("", target, "", f, ""); err != nil {
			return err
		}
	}
	return nil
}

// Unmount unmounts target once with the umount2(2) flags given, such as
// unix.MNT_DETACH.
func Unmount(target string, flags int) error {
	if err := unix.Unmount(target, flags); err != nil {
		return &Error{Op: "unmount", Target: target, Err: err}
	}
	return nil
}

// busyRetries and busyDelay bound how long UnmountAll waits for a busy
// mount to come free before it detaches it.
const (
	busyRetries = 50
	busyDelay   = 20 * time.Millisecond
)

// UnmountAll unmounts every mount stacked on target, topmost first, and
// returns nil once target is no longer a mount point or does not exist.
// A mount that stays busy for about a second is detached (MNT_DETACH), so
// the kernel removes it once its last user is gone.
func UnmountAll(target string) error {
	busy := 0
	for {
		err := unix.Unmount(target, 0)
		switch {
		case err == nil:
			busy = 0
			continue
		case errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOENT):
			return nil
		case errors.Is(err, unix.EBUSY) && busy < busyRetries:
			busy++
			time.Sleep(busyDelay)
			continue
		case errors.Is(err, unix.EBUSY):
			err = unix.Unmount(target, unix.MNT_DETACH)
			if err == nil {
				busy = 0
				continue
			}
		}
		return &Error{Op: "unmount", Target: target, Err: err}
	}
}

package mount

import "errors"

// All mounts each of mounts on target in order. When one fails, it unmounts
// the ones it mounted before returning the error.
func All(mounts []Mount, target string) error {
	for i, m := range mounts {
		if err := m.Mount(target); err != nil {
			// Each earlier mount is stacked on target, so unmounting
			// target i times removes exactly those.
			for range i {
				if uerr := Unmount(target, 0); uerr != nil {
					return errors.Join(err, uerr)
				}
			}
			return err
		}
	}
	return nil
}

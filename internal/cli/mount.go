package cli

import (
	"errors"

	"github.com/spf13/cobra"

	"github.com/strata-containers/strata/errdefs"
	"github.com/strata-containers/strata/store"
)

func newMountCmd(g *globals) *cobra.Command {
	var rw bool
	cmd := &cobra.Command{
		Use:   "mount [--rw] NAME TARGET",
		Short: "Mount an image's root file system",
		Long: `Mount unpacks the image NAME when needed and mounts a read-only view of its
root file system at the directory TARGET. With --rw the mount is writable, on
a new active snapshot whose changes 'strata umount' discards.`,
		Args: exactArgs("NAME", "TARGET"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			s, err := g.open(ctx, store.WithExisting())
			if err != nil {
				return err
			}
			defer s.Close()

			err = s.Mount(ctx, args[0], args[1], rw)
			if errors.Is(err, errdefs.ErrAlreadyExists) {
				return withHint(err, "run 'strata umount "+args[1]+"' first")
			}
			return imageHint(err)
		},
	}
	cmd.Flags().BoolVar(&rw, "rw", false, "mount a writable snapshot instead of a read-only view")
	return cmd
}

func newUmountCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "umount TARGET",
		Aliases: []string{"unmount"},
		Short:   "Unmount an image mounted by 'strata mount'",
		Long: `Umount unmounts the strata mount at TARGET and removes the snapshot behind
it. For a --rw mount, its changes are discarded.`,
		Args: exactArgs("TARGET"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			s, err := g.open(ctx, store.WithExisting())
			if err != nil {
				return err
			}
			defer s.Close()
			return s.Unmount(ctx, args[0])
		},
	}
}

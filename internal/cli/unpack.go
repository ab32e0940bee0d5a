package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/strata-containers/strata/store"
)

func newUnpackCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "unpack NAME",
		Short: "Apply an image's layers into snapshots",
		Long: `Unpack applies the layers of the image NAME onto the snapshotter, skipping
layers already unpacked, and prints the chain ID of the top layer: the name
of the committed snapshot that holds the image's root file system.`,
		Args: exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			s, err := g.open(ctx, store.WithExisting())
			if err != nil {
				return err
			}
			defer s.Close()

			bar := newProgress(g.stderr, isTerminal(g.stderr))
			chainID, err := s.Unpack(ctx, args[0], bar.option())
			bar.finish()
			if err != nil {
				return imageHint(err)
			}
			fmt.Fprintln(cmd.OutOrStdout(), chainID)
			return nil
		},
	}
}

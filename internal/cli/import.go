package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newImportCmd(g *globals) *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "import [--name NAME] PATH",
		Short: "Import images from an OCI layout, OCI archive or docker save archive",
		Long: `Import copies every image in PATH into the content store and names it.
PATH is an OCI image layout folder, an OCI layout tar (skopeo's oci-archive)
or a docker save tar. Names come from the org.opencontainers.image.ref.name or
io.containerd.image.name annotations, or from RepoTags; --name replaces them.
Prints one line per image: its name and manifest digest.`,
		Args: exactArgs("PATH"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			s, err := g.open(ctx)
			if err != nil {
				return err
			}
			defer s.Close()

			imgs, err := s.Import(ctx, args[0], name)
			if err != nil {
				return err
			}
			for _, img := range imgs {
				fmt.Fprintf(cmd.OutOrStdout(), "%s %s\n", img.Name, img.Target.Digest)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "name to give the image instead of the names in PATH")
	return cmd
}

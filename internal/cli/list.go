package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/strata-containers/strata/store"
)

func newImagesCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "images",
		Short: "List imported images",
		Long: `Images lists the imported images: name, manifest digest, size of the stored
blobs, number of layers, and whether the image is unpacked in the selected
snapshotter. The table is for people and may change; --json is stable.`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			s, err := g.open(ctx, store.WithExisting())
			if err != nil {
				return err
			}
			defer s.Close()

			imgs, err := s.ListImages(ctx)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), imgs)
			}
			rows := [][]string{{"NAME", "DIGEST", "SIZE", "LAYERS", "UNPACKED", "CREATED"}}
			for _, img := range imgs {
				unpacked := "no"
				if img.Unpacked {
					unpacked = "yes"
				}
				rows = append(rows, []string{img.Name, img.Digest.String(), humanBytes(img.Size),
					fmt.Sprint(img.Layers), unpacked, img.Created.Local().Format(time.DateTime)})
			}
			return writeTable(cmd.OutOrStdout(), rows)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON instead of a table")
	return cmd
}

func newSnapshotsCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "snapshots",
		Short: "List the snapshots of the selected snapshotter",
		Long: `Snapshots lists the snapshots of the snapshotter that --snapshotter selects:
committed layers named by chain ID, and the active snapshots and views behind
mounts. The table is for people and may change; --json is stable.`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			s, err := g.open(ctx, store.WithExisting())
			if err != nil {
				return err
			}
			defer s.Close()

			infos, err := s.ListSnapshots(ctx)
			if err != nil {
				return err
			}
			if asJSON {
				if infos == nil {
					return writeJSON(cmd.OutOrStdout(), []any{})
				}
				return writeJSON(cmd.OutOrStdout(), infos)
			}
			rows := [][]string{{"NAME", "PARENT", "KIND", "CREATED"}}
			for _, info := range infos {
				parent := info.Parent
				if parent == "" {
					parent = "-"
				}
				rows = append(rows, []string{info.Name, parent, info.Kind.String(),
					info.Created.Local().Format(time.DateTime)})
			}
			return writeTable(cmd.OutOrStdout(), rows)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON instead of a table")
	return cmd
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func writeTable(w io.Writer, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// humanBytes formats n in IEC units, as ls -h and du -h do.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/strata-containers/strata/store"
)

// errUnhealthy is returned by 'strata check' when problems remain, so that
// it exits with status 1 after printing its report.
type errUnhealthy struct{ remaining int }

func (e errUnhealthy) Error() string {
	if e.remaining == 1 {
		return "check found 1 problem that remains"
	}
	return fmt.Sprintf("check found %d problems that remain", e.remaining)
}

func newCheckCmd(g *globals) *cobra.Command {
	var asJSON, repair bool
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Verify the store and optionally repair it",
		Long: `Check verifies the store: the digest of every blob, that the blobs of every
image exist, partial ingests and extraction snapshots left by processes that
were killed, the snapshot records of every snapshotter against their
directories (leftover, missing and dangling ones), and the files of every
committed snapshot against the manifest of sizes and sha256 digests recorded
before it was committed. A power loss with --sync=false shows up there as
truncated or empty files.

--repair removes leftovers and corrupt blobs, and removes damaged snapshots
together with the snapshots built on them, so that the next unpack extracts
them again. A damaged snapshot under a mount is labelled broken instead, and
stays a problem until it is unmounted and check --repair runs again.

The exit status is 0 when the store is healthy (after --repair: when every
problem was repaired) and 1 otherwise. The table is for people and may
change; --json is stable.`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			// Open's own recovery would remove leftovers before they are
			// reported.
			s, err := g.open(ctx, store.WithExisting(), store.WithoutRecovery())
			if err != nil {
				return err
			}
			defer s.Close()

			rep, err := s.Check(ctx, repair)
			if err != nil {
				return err
			}
			if asJSON {
				err = writeJSON(cmd.OutOrStdout(), rep)
			} else {
				err = writeCheckReport(cmd, rep)
			}
			if err != nil {
				return err
			}
			remaining, repairable := 0, 0
			for _, p := range rep.Problems {
				if p.Repaired {
					continue
				}
				remaining++
				// --repair cannot bring back a missing blob: only a new
				// import can.
				if p.Kind != store.ProblemMissingBlob {
					repairable++
				}
			}
			if remaining == 0 {
				return nil
			}
			hint := "see the details above"
			switch {
			case !repair && repairable > 0:
				hint = "run 'strata check --repair'"
			case repairable == 0:
				hint = "import the images with missing blobs again"
			}
			return withHint(errUnhealthy{remaining}, hint)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON instead of a table")
	cmd.Flags().BoolVar(&repair, "repair", false,
		"remove leftovers, corrupt blobs and damaged snapshots")
	return cmd
}

func writeCheckReport(cmd *cobra.Command, rep store.CheckReport) error {
	w := cmd.OutOrStdout()
	if len(rep.Problems) > 0 {
		rows := [][]string{{"KIND", "WHERE", "DETAIL", "REPAIRED"}}
		for _, p := range rep.Problems {
			where := p.Path
			if where == "" {
				where = strings.TrimPrefix(p.Snapshotter+"/"+p.Snapshot, "/")
			}
			if where == "" || where == "/" {
				where = p.Image
			}
			repaired := "no"
			if p.Repaired {
				repaired = "yes"
			}
			rows = append(rows, []string{p.Kind, where, p.Detail, repaired})
		}
		if err := writeTable(w, rows); err != nil {
			return err
		}
	}
	state := "healthy"
	if !rep.Healthy {
		state = "unhealthy"
	}
	_, err := fmt.Fprintf(w, "checked %d blobs, %d snapshots, %d files: %s\n",
		rep.Blobs, rep.Snapshots, rep.Files, state)
	return err
}

package main

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/lifeboat-backup/lifeboat/internal/ops"
	"github.com/lifeboat-backup/lifeboat/internal/ui"
)

type maintenanceOptions struct {
	quick bool
	json  bool
}

func newMaintenanceCommand(g *globalOptions) *cobra.Command {
	var opts maintenanceOptions
	cmd := &cobra.Command{
		Use:   "maintenance [--quick] [--json]",
		Short: "Free the space forgotten points and failed backups leave",
		Long: `Run the repository's upkeep, as serve does every day: compact the
indexes and (unless --quick) delete the data that no restore point holds any
more, left by forget or by backups that failed half-way. Data is deleted
only once kopia's safety margins have passed (hours, so that a backup
running elsewhere never loses what it just wrote): space forgotten a
moment ago is freed by a later run. This host becomes the repository's
maintenance owner.

EXIT STATUS
  0 done; 1 error; 10 no repository; 12 wrong or missing password.`,
		Example: `  lifeboat forget --keep-daily 7 && lifeboat maintenance
  lifeboat maintenance --quick --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			g.json = opts.json
			ctx := cmd.Context()
			env := g.env(cmd, false)
			defer env.Close(ctx)
			res, err := ops.Maintain(ctx, &env.Env, ops.MaintenanceRequest{Quick: opts.quick}, ops.Observer{})
			if err != nil {
				return err
			}
			if opts.json {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(res)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "maintenance done in %s: %d blobs (%s) before, %d blobs (%s) now, %s freed\n",
				res.Duration.Round(1e6), res.BlobsBefore, ui.Bytes(res.BytesBefore), res.BlobsAfter, ui.Bytes(res.BytesAfter), ui.Bytes(max(0, res.BytesBefore-res.BytesAfter)))
			return nil
		},
	}
	cmd.Flags().BoolVar(&opts.quick, "quick", false, "only compact indexes; delete no data")
	cmd.Flags().BoolVar(&opts.json, "json", false, "print the result as JSON")
	return cmd
}

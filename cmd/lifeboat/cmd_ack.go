package main

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lifeboat-backup/lifeboat/internal/ops"
)

type ackOptions struct{ json bool }

func newAckCommand(g *globalOptions) *cobra.Command {
	var opts ackOptions
	cmd := &cobra.Command{
		Use:   "ack POINT",
		Short: "Accept a suspect restore point's anomaly",
		Long: `Record that the anomaly the guard found in POINT (an ID or a unique
prefix of one, UNIT@latest, UNIT@TIME) is understood and accepted: the
files were deleted on purpose, the data was rewritten by a migration.

While a unit has a suspect point nobody acknowledged, retention keeps the
good points before it; after ack, normal retention applies again and the
point counts as good in the unit's history. The acknowledgement is stored
in the repository beside the point, so every host sees it. Acknowledging a
point twice changes nothing.

With --json, prints the point (as snapshots --json does) with
"already_acked".

EXIT STATUS
  0 acknowledged; 1 error (no such point, or the point is not suspect);
  10 no repository; 12 wrong or missing password.`,
		Example: `  lifeboat ack 3f2a91
  lifeboat ack volume/pgdata@latest --json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			g.json = opts.json
			return runAck(cmd, opts, g, args)
		},
	}
	cmd.Flags().BoolVar(&opts.json, "json", false, "print a JSON object")
	return cmd
}

func runAck(cmd *cobra.Command, opts ackOptions, g *globalOptions, args []string) error {
	ctx := cmd.Context()
	env := g.env(cmd, false)
	defer env.Close(ctx)
	res, err := ops.Ack(ctx, &env.Env, args[0])
	if err != nil {
		return err
	}
	if opts.json {
		return json.NewEncoder(cmd.OutOrStdout()).Encode(res)
	}
	state := "acknowledged"
	if res.Already {
		state = "already acknowledged"
	}
	fmt.Fprintf(cmd.OutOrStdout(), "%s %s of %s: %s; retention treats %s normally again\n",
		state, res.ID, res.Unit, strings.Join(res.Anomalies, "; "), res.Unit)
	return nil
}

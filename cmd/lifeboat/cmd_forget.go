package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/lifeboat-backup/lifeboat/internal/backup"
	"github.com/lifeboat-backup/lifeboat/internal/ops"
	"github.com/lifeboat-backup/lifeboat/internal/policy"
)

type forgetOptions struct {
	keep   policy.Retention
	dryRun bool
	json   bool
}

func newForgetCommand(g *globalOptions) *cobra.Command {
	var opts forgetOptions
	cmd := &cobra.Command{
		Use:   "forget [UNIT] --keep-…",
		Short: "Forget restore points a retention policy does not keep",
		Long: `Apply a grandfather-father-son retention policy to the restore points of
UNIT (or of every unit, each on its own), newest first: keep the last N,
and the newest point of each of the last N hours, days, weeks, months and
years. The newest point of a unit is always kept. Without --keep-… flags,
each unit's lifeboat.retention label (last=3,daily=7,weekly=4) decides, and
units without one keep every point. Forgotten points leave
the listing at once; their data is freed by repository maintenance once no
other point shares it. Timeline images of forgotten points (--images
commit) lose their local tags.

EXIT STATUS
  0 done; 1 error; 10 no repository; 12 wrong or missing password.`,
		Example: `  lifeboat forget project/shop --keep-last 3 --keep-daily 7 --dry-run
  lifeboat forget --keep-daily 7 --keep-weekly 4 --keep-monthly 12`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			g.json = opts.json
			return runForget(cmd, opts, g, args)
		},
	}
	f := cmd.Flags()
	f.IntVar(&opts.keep.Last, "keep-last", 0, "keep the newest N points")
	f.IntVar(&opts.keep.Hourly, "keep-hourly", 0, "keep the newest point of each of the last N hours")
	f.IntVar(&opts.keep.Daily, "keep-daily", 0, "keep the newest point of each of the last N days")
	f.IntVar(&opts.keep.Weekly, "keep-weekly", 0, "keep the newest point of each of the last N weeks")
	f.IntVar(&opts.keep.Monthly, "keep-monthly", 0, "keep the newest point of each of the last N months")
	f.IntVar(&opts.keep.Yearly, "keep-yearly", 0, "keep the newest point of each of the last N years")
	f.BoolVarP(&opts.dryRun, "dry-run", "n", false, "only say what would be forgotten")
	f.BoolVar(&opts.json, "json", false, "print the verdicts as a JSON array")
	return cmd
}

func runForget(cmd *cobra.Command, opts forgetOptions, g *globalOptions, args []string) error {
	ctx := cmd.Context()
	req := ops.ForgetRequest{Keep: opts.keep, DryRun: opts.dryRun}
	if len(args) == 1 {
		req.Unit = args[0]
	}
	if err := req.Validate(); err != nil {
		return err
	}
	env := g.env(cmd, false)
	defer env.Close(ctx)
	res, err := ops.Forget(ctx, &env.Env, req, ops.Observer{})
	if opts.json {
		if res == nil {
			res = []backup.ForgetResult{}
		}
		if jerr := json.NewEncoder(cmd.OutOrStdout()).Encode(res); jerr != nil {
			return jerr
		}
		return err
	}
	tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTIME\tUNIT\tVERDICT\tWHY")
	verdict := map[bool]string{true: "keep", false: "forget"}
	if opts.dryRun {
		verdict[false] = "would forget"
	}
	for _, r := range res {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", shortID(r.ID), r.Time.Local().Format(time.DateTime), r.Unit, verdict[r.Keep], strings.Join(r.Reasons, ","))
	}
	if ferr := tw.Flush(); ferr != nil {
		return ferr
	}
	return err
}

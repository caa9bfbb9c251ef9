package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/lifeboat-backup/lifeboat/internal/ops"
	"github.com/lifeboat-backup/lifeboat/internal/repository"
	"github.com/lifeboat-backup/lifeboat/internal/ui"
)

type snapshotsOptions struct {
	json   bool
	format string
}

func newSnapshotsCommand(g *globalOptions) *cobra.Command {
	var opts snapshotsOptions
	cmd := &cobra.Command{
		Use:   "snapshots [UNIT]",
		Short: "List restore points, newest first",
		Long: `List the restore points in the repository, newest first; with UNIT
(volume/NAME), only that unit's. Listing reads labels only, never trees.

A point the anomaly guard found unlike its unit's history is marked
SUSPECT (or "acked" once acknowledged with ` + "`lifeboat ack`" + `), with its reasons
below it.

With --json, prints one array of objects: id, unit, kind, host, time,
consistency, downtime_ms, bytes, files, trigger, duration_ms (the whole
job's), phases_ms (plan, images, live_pass, prestage, freeze, frozen_pass,
thaw, upload, snapshot_pass, dumps, store; dumps and images overlap the passes),
bytes_added, dumps (sizes by container/file), suspect, anomalies, acked, and
last_drill (time, passed, rto_ms) for a point a restore drill proved or
failed (see lifeboat drill).

EXIT STATUS
  0 listed; 1 error; 10 no repository; 12 wrong or missing password.`,
		Example: `  lifeboat snapshots
  lifeboat snapshots volume/pgdata --json
  lifeboat snapshots --format '{{.ID}} {{.Unit}} {{.Time.Format "2006-01-02"}}'`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			g.json = opts.json
			return runSnapshots(cmd, opts, g, args)
		},
	}
	cmd.Flags().BoolVar(&opts.json, "json", false, "print a JSON array")
	cmd.Flags().StringVar(&opts.format, "format", "", formatHelp)
	return cmd
}

func runSnapshots(cmd *cobra.Command, opts snapshotsOptions, g *globalOptions, args []string) error {
	ctx := cmd.Context()
	if err := checkFormat(opts.format); err != nil {
		return fmt.Errorf("%w: %w", ops.ErrInvalid, err)
	}
	repo, err := g.openRepository(ctx, true)
	if err != nil {
		return err
	}
	defer repo.Close(ctx)
	unit := ""
	if len(args) == 1 {
		unit = args[0]
		if !containsSlash(unit) {
			unit = "volume/" + unit
		}
	}
	points, err := repo.List(ctx, unit)
	if err != nil {
		return err
	}
	if opts.json {
		if points == nil {
			points = []repository.Point{}
		}
		return json.NewEncoder(cmd.OutOrStdout()).Encode(points)
	}
	if opts.format != "" {
		return printFormatted(cmd.OutOrStdout(), opts.format, points)
	}
	tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTIME\tUNIT\tCONSISTENCY\tDOWNTIME\tFILES\tSIZE\tHOST\tLAST DRILL\tANOMALY")
	for _, p := range points {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%dms\t%d\t%s\t%s\t%s\t%s\n", shortID(p.ID),
			p.Time.Local().Format(time.DateTime), p.Unit, p.Consistency, p.DowntimeMS, p.Files, ui.Bytes(p.Bytes), p.Host, lastDrill(p.LastDrill), anomalyMark(p))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, p := range points {
		if p.Suspect && !p.Acked {
			fmt.Fprintf(cmd.OutOrStdout(), "%s SUSPECT: %s (accept with `lifeboat ack %s`)\n", p.ID[:min(12, len(p.ID))], strings.Join(p.Anomalies, "; "), p.ID)
		}
	}
	return nil
}

// anomalyMark is the ANOMALY column: empty for a good point.
func anomalyMark(p repository.Point) string {
	switch {
	case p.Suspect && p.Acked:
		return "acked"
	case p.Suspect:
		return "SUSPECT"
	}
	return ""
}

// lastDrill is a point's last drill in a word or two: "passed, RTO 12.3s".
func lastDrill(d *repository.DrillSummary) string {
	switch {
	case d == nil:
		return "-"
	case d.Passed:
		return "passed, RTO " + ms(d.RTOMS)
	}
	return "FAILED"
}

func containsSlash(s string) bool {
	for i := range len(s) {
		if s[i] == '/' {
			return true
		}
	}
	return false
}

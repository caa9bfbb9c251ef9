package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/lifeboat-backup/lifeboat/internal/drill"
	"github.com/lifeboat-backup/lifeboat/internal/ops"
)

type drillOptions struct {
	json     bool
	noWait   bool
	settle   time.Duration
	fromHost string
}

func newDrillCommand(g *globalOptions) *cobra.Command {
	var opts drillOptions
	cmd := &cobra.Command{
		Use:   "drill UNIT[@POINT]",
		Short: "Prove that a restore point comes back and works",
		Long: `Restore a point into a sandbox beside everything else and check that it
works. UNIT alone drills its newest point; UNIT@TIME, an ID or a prefix of
one name another.

The sandbox is made on this engine (or DOCKER_HOST's, which must run on
this host): every name prefixed lbdrill-<id>-, internal networks of its
own with no route out, no published host port, restart policy no,
volumes and bind mounts as fresh copies (no host path is mounted),
images from the point or the engine. The original unit is not touched:
never paused, stopped or written.

The containers start in dependency order; each one's healthcheck must
pass, or it must keep running for the settle time. Then:
  - each database's restored files are checked with its own tool
    (pg_amcheck, mariadb-check, redis-check-rdb, SQLite integrity_check);
  - each dump in the point is loaded into a scratch server of the same
    image and checked the same way;
  - the probes of the labels run: lifeboat.drill.probe=CMD (exec in the
    container, exit 0 passes) and lifeboat.drill.http=PORT/PATH (a GET
    from inside the sandbox network, 2xx or 3xx passes).
The recovery time (RTO) runs from the start of the restore until every
service is up and every probe passes.

Everything the drill made is removed after, also after a kill (the next
lifeboat command does it). The result is recorded in the repository
beside the point; lifeboat snapshots shows each point's last drill. A
drill holds a lock of its own: it never delays a backup of the unit, but
a second drill of the unit waits for the first (or, with --no-wait,
refuses).

EXIT STATUS
  0 every check passed; 1 a check failed (named with its output) or an
  error; 10 no repository; 11 another drill of the unit runs (--no-wait);
  12 wrong or missing password; 130 interrupted.`,
		Example: `  lifeboat drill project/shop
  lifeboat drill container/pg@2026-11-24T15:30:00Z --json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			g.json = opts.json
			return runDrill(cmd, opts, g, args[0])
		},
	}
	f := cmd.Flags()
	f.BoolVar(&opts.json, "json", false, "print the result as JSON")
	f.BoolVar(&opts.noWait, "no-wait", false, "refuse when another drill of the unit runs, instead of waiting for it")
	f.DurationVar(&opts.settle, "settle", drill.DefaultSettle, "how long a container without a healthcheck must keep running")
	f.StringVar(&opts.fromHost, "from-host", "", "drill that host's point of UNIT, not this host's")
	return cmd
}

func runDrill(cmd *cobra.Command, opts drillOptions, g *globalOptions, arg string) error {
	ctx := cmd.Context()
	req := ops.DrillRequest{Point: arg, SettleSeconds: opts.settle.Seconds(), NoWait: opts.noWait, FromHost: opts.fromHost}
	if err := req.Validate(); err != nil {
		return err
	}
	env := g.env(cmd, false)
	defer env.Close(ctx)
	obs, pr := g.observer(cmd)
	res, err := ops.Drill(ctx, &env.Env, req, obs)
	pr.Done()
	if res.Point == "" || (err != nil && !errors.Is(err, drill.ErrFailed)) {
		return err
	}
	if opts.json {
		if jerr := writeSummary(cmd.OutOrStdout(), res); jerr != nil {
			return jerr
		}
		return err
	}
	if !g.quiet || err != nil {
		printDrill(cmd.OutOrStdout(), res)
	}
	return err
}

func printDrill(w io.Writer, res drill.Result) {
	verdict := "PASSED"
	if !res.Passed {
		verdict = "FAILED"
	}
	fmt.Fprintf(w, "drill of %s, point %s, in sandbox %s: %s\n", res.Unit, res.Point[:min(12, len(res.Point))], res.Sandbox, verdict)
	if res.RTOMS > 0 {
		fmt.Fprintf(w, "RTO %s (restore start to every service up and every probe passing), drill %s\n", ms(res.RTOMS), ms(res.DurationMS))
	} else {
		fmt.Fprintf(w, "RTO none: the services never were all up with every probe passing; drill %s\n", ms(res.DurationMS))
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CHECK\tCONTAINER\tRESULT\tTIME\tOUTPUT")
	for _, c := range res.Checks {
		r := "ok"
		if !c.Passed {
			r = "FAILED"
		}
		first, _, _ := strings.Cut(c.Output, "\n")
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", c.Name, c.Container, r, ms(c.DurationMS), first)
	}
	tw.Flush()
	for _, c := range res.Failed() {
		fmt.Fprintf(w, "\n%s %s failed:\n", c.Name, c.Container)
		for _, l := range strings.Split(c.Output, "\n") {
			fmt.Fprintln(w, "  "+l)
		}
	}
	if res.Cleanup != "" {
		fmt.Fprintf(w, "\nthe sandbox is not all removed yet (the next lifeboat command retries): %s\n", res.Cleanup)
	}
}

func ms(n int64) string {
	return (time.Duration(n) * time.Millisecond).Round(100 * time.Millisecond).String()
}

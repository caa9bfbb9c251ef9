package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/lifeboat-backup/lifeboat/internal/ops"
	"github.com/lifeboat-backup/lifeboat/internal/ui"
)

type recoverOptions struct {
	from     string
	fromHost string
	list     bool
	noState  bool
	json     bool
	noWait   bool
}

func newRecoverCommand(g *globalOptions) *cobra.Command {
	var opts recoverOptions
	cmd := &cobra.Command{
		Use:   "recover --from s3://BUCKET/PREFIX [UNIT...]",
		Short: "Bring a whole host back from an offsite copy",
		Long: `Recover a host from a repository alone, typically the offsite copy that
lifeboat replicate made, on a fresh host that has only Docker: the copy's
address (LIFEBOAT_S3_ENDPOINT, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY
in the environment, as for --repository s3://…) and the repository
password (LIFEBOAT_PASSWORD_FILE or LIFEBOAT_PASSWORD).

--list says what the copy holds: each host, its units and their newest
points. Otherwise recover restores, from the newest points of the host
--from-host names (or of the only host in the copy):

  1. lifeboat's own state (unit lifeboat/state, made by lifeboat serve
     daily and by backup --state): the config file, written as
     lifeboat.yaml into the state directory (--state-dir), without the
     secrets it held (they are named: give them again), and the job
     history; --no-state skips it; a state directory that holds other
     ones is refused before anything is written (the same ones, from a
     run before, are kept);
  2. every unit (or the UNITs named), each through restore with its
     images, in dependency order: volumes, then units whose networks,
     volumes or containers others use before those others; each
     project's containers start in their depends_on order.

A unit that fails is reported and the others go on; run recover again
naming the failed units. The time from the start to each unit's
containers running, and to the last, is printed.

EXIT STATUS
  0 every unit recovered; 1 error (nothing recovered); 3 some units
  failed; 10 no repository at --from; 12 wrong or missing password;
  130 interrupted.`,
		Example: `  export LIFEBOAT_S3_ENDPOINT=http://10.0.0.5:9000 AWS_ACCESS_KEY_ID=… AWS_SECRET_ACCESS_KEY=…
  export LIFEBOAT_PASSWORD_FILE=/root/lifeboat.password
  lifeboat recover --from s3://backups/host1 --list
  lifeboat recover --from s3://backups/host1
  lifeboat recover --from s3://backups/shared --from-host web1 project/shop --no-state`,
		RunE: func(cmd *cobra.Command, args []string) error {
			g.json = opts.json
			return runRecover(cmd, opts, g, args)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.from, "from", "", "the copy to recover from: s3://BUCKET/PREFIX (or any repository location)")
	f.StringVar(&opts.fromHost, "from-host", "", "the host whose units to recover, when the copy holds several hosts'")
	f.BoolVar(&opts.list, "list", false, "only list the copy's hosts, units and newest points")
	f.BoolVar(&opts.noState, "no-state", false, "do not restore lifeboat's own state (config, job history)")
	f.BoolVar(&opts.json, "json", false, "print the result as JSON")
	f.BoolVar(&opts.noWait, "no-wait", false, "refuse a unit another backup or restore holds, instead of waiting for it")
	return cmd
}

func runRecover(cmd *cobra.Command, opts recoverOptions, g *globalOptions, args []string) error {
	ctx := cmd.Context()
	req := ops.RecoverRequest{From: opts.from, Units: args, FromHost: opts.fromHost, List: opts.list, NoState: opts.noState, NoWait: opts.noWait}
	if err := req.Validate(); err != nil {
		return err
	}
	g.repository = req.From
	env := g.env(cmd, false)
	defer env.Close(ctx)
	obs, pr := g.observer(cmd)
	res, err := ops.Recover(ctx, &env.Env, req, obs)
	pr.Done()
	if err != nil && len(res.Units) == 0 {
		return err // refused, or failed before any unit: one line
	}
	if opts.json {
		if werr := writeSummary(cmd.OutOrStdout(), res); werr != nil {
			return werr
		}
		return err
	}
	out := cmd.OutOrStdout()
	if opts.list || !g.quiet {
		printCopy(out, res)
	}
	if opts.list {
		return err
	}
	if res.State != nil {
		printState(out, *res.State)
	}
	for _, u := range res.Units {
		printRecovered(out, cmd.ErrOrStderr(), u)
	}
	if res.Host != "" && !g.quiet {
		fmt.Fprintf(out, "recovered %d of %d units of %s: every restored container running %s after the start\n",
			res.Restored, res.Restored+res.Failed, res.Host, ms(res.ToRunningMS))
	}
	return err
}

func printCopy(w io.Writer, res ops.RecoverResult) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tUNIT\tNEWEST POINT\tTIME\tSIZE")
	for _, h := range res.Hosts {
		for _, p := range h.Points {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", h.Host, p.Unit, shortID(p.ID), p.Time.Format(time.RFC3339), ui.Bytes(p.Bytes))
		}
	}
	tw.Flush()
}

func printState(w io.Writer, s ops.StateRestore) {
	if s.Skipped != "" {
		fmt.Fprintf(w, "state: not restored: %s\n", s.Skipped)
		return
	}
	var parts []string
	if s.Config != "" {
		parts = append(parts, "config to "+s.Config+" (it was "+s.ConfigPath+")")
	}
	if s.Jobs != "" {
		parts = append(parts, fmt.Sprintf("job history (%d jobs) to %s", s.StateManifest.Jobs, s.Jobs))
	}
	fmt.Fprintf(w, "state %s: %s\n", shortID(s.Point), strings.Join(parts, ", "))
	if len(s.SecretsLeftOut) > 0 {
		fmt.Fprintf(w, "state: secrets were left out of the backup: set %s again in %s\n", strings.Join(s.SecretsLeftOut, ", "), s.Config)
	}
}

func printRecovered(out, stderr io.Writer, u ops.RecoveredUnit) {
	switch u.Status {
	case "skipped":
		fmt.Fprintf(out, "%s: skipped: %s\n", u.Unit, u.Skipped)
	case "failed":
		fmt.Fprintf(stderr, "%s: FAILED (point %s): %s\n", u.Unit, shortID(u.Point), u.Error)
	default:
		fmt.Fprintf(out, "%s: restored point %s of %s: images %s, data and start %s; running at +%s\n",
			u.Unit, shortID(u.Point), u.PointTime.Format(time.RFC3339), ms(u.ImagesMS), ms(u.RestoreMS), ms(u.RunningMS))
	}
}

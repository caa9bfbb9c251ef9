package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lifeboat-backup/lifeboat/internal/backup"
	"github.com/lifeboat-backup/lifeboat/internal/ops"
	"github.com/lifeboat-backup/lifeboat/internal/priority"
	"github.com/lifeboat-backup/lifeboat/internal/ui"
)

type backupOptions struct {
	all         bool
	consistency string
	images      string
	registry    string
	json        bool
	noWait      bool
	parallel    int
	priority    string
	state       bool
	config      string
}

func newBackupCommand(g *globalOptions) *cobra.Command {
	var opts backupOptions
	cmd := &cobra.Command{
		Use:   "backup UNIT... | --all",
		Short: "Make restore points",
		Long: `Back up units into the repository, one restore point per unit.

A UNIT is project/NAME (every container of a Compose project),
container/NAME, volume/NAME, or a bare NAME resolved in that order. --all
backs up every project, every container in no project, and every volume no
container uses. A container's run configuration, writable layer, named
volumes and bind mounts are captured; a project's networks too.

--consistency: none reads live; pause freezes every running container of
the unit at one instant for a second, short pass over what changed; stop
stops them in reverse dependency order and starts them again; auto (the
default) pauses units with running containers. The freeze time is reported
as downtime_ms. Whatever happens, frozen containers are resumed: a journal
written before freezing is replayed by the next lifeboat command.

Units are backed up --parallel at a time (default 4; 1: one after
another). Each restore point is printed as its unit ends, so with more
than one at once they may come in another order than the units'.

One job per unit at a time on this host: a unit that another backup or
restore (from the CLI or lifeboat serve) holds is waited for, with a
message naming the holder; --no-wait refuses it instead (exit status 11).

--state backs up lifeboat's own state as unit lifeboat/state instead:
the config file (--config, env LIFEBOAT_CONFIG) without the secrets it
holds (S3 keys, webhook secret, notification and ping URLs; API tokens
stay as the hashes the file holds) and the daemon's job history. The API
token, the repository password and S3 keys are never stored. lifeboat
serve does it daily; lifeboat recover restores it first.

The first backup of a unit reads everything; later ones read only files
whose metadata changed and store only new chunks. With the default
repository, the first backup creates it.

With --json, one JSON object per restore point made is printed on stdout
(message_type "summary"): id, unit, time, consistency, downtime_ms, bytes,
files, bytes_added, ...

After each backup the anomaly guard compares the new point with the unit's
history (files or bytes shrinking sharply, a dump shrinking or empty, most
data stored anew although the unit rarely changes, a backup far slower
than usual). A suspect point is saved and marked: a warning on stderr
names the reasons and ` + "`lifeboat ack ID`" + `, --json says "suspect": true and
"anomalies", and the exit status stays 0, since the backup did happen.

EXIT STATUS
  0 every unit backed up (suspect points included); 1 error; 3 some units failed;
  10 no repository; 11 the unit is locked by another job (--no-wait);
  12 wrong or missing password; 130 interrupted.`,
		Example: `  lifeboat backup --all
  lifeboat backup project/shop --consistency pause
  lifeboat backup volume/pgdata --json
  lifeboat backup --state --config /etc/lifeboat/lifeboat.yaml`,
		RunE: func(cmd *cobra.Command, args []string) error {
			g.json = opts.json
			return runBackup(cmd, opts, g, args)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&opts.all, "all", false, "back up every unit on the host")
	f.StringVar(&opts.consistency, "consistency", "auto", "auto, none, pause, stop, snapshot, dump, dump+pause (dump+stop, dump+snapshot), or a fallback list such as snapshot,pause")
	f.StringVar(&opts.images, "images", "", "none, ref, save, commit or commit,save: keep images in the restore point, make timeline images (default: label lifeboat.images, else ref; images in no registry are always kept unless none)")
	f.StringVar(&opts.registry, "registry", os.Getenv("LIFEBOAT_REGISTRY"), "HOST:PORT to push timeline images to, with --images commit,push (env LIFEBOAT_REGISTRY)")
	f.BoolVar(&opts.json, "json", false, "print JSON lines")
	f.BoolVar(&opts.noWait, "no-wait", false, "refuse a unit another backup or restore holds, instead of waiting for it")
	f.IntVar(&opts.parallel, "parallel", backup.DefaultParallel, "how many units to back up at once (1: one after another)")
	f.StringVar(&opts.priority, "priority", priority.Low, "low: lifeboat's threads yield the CPU and disk to the containers (nice 10) except while a unit is frozen; normal")
	f.BoolVar(&opts.state, "state", false, "back up lifeboat's own state (config without secrets, job history) as unit lifeboat/state")
	f.StringVar(&opts.config, "config", os.Getenv("LIFEBOAT_CONFIG"), "with --state: the daemon's config file (env LIFEBOAT_CONFIG)")
	return cmd
}

func runBackup(cmd *cobra.Command, opts backupOptions, g *globalOptions, args []string) error {
	ctx := cmd.Context()
	if opts.state {
		return runBackupState(cmd, opts, g, args)
	}
	req := ops.BackupRequest{Units: args, All: opts.all, Consistency: opts.consistency, Images: opts.images, Registry: opts.registry, Trigger: "manual", NoWait: opts.noWait, Parallel: opts.parallel, Priority: opts.priority}
	if err := req.Validate(); err != nil {
		return err
	}
	env := g.env(cmd, true)
	defer env.Close(ctx)
	obs, pr := g.observer(cmd)
	defer pr.Done()
	stdout, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
	enc := json.NewEncoder(stdout)
	obs.UnitDone = func(r backup.Result) {
		if r.Err == nil && r.Suspect {
			// Said even with --json and --quiet: the backup succeeded,
			// but its data may be damage, and someone should look.
			defer pr.Println(stderr, suspectWarning(r))
		}
		switch {
		case r.Err != nil:
			return // reported once, by main
		case r.Skipped != "":
			if !opts.json && !g.quiet {
				pr.Println(stderr, "skipped "+r.Unit+": "+r.Skipped)
			}
		case opts.json:
			_ = enc.Encode(struct {
				MessageType string `json:"message_type"`
				backup.Result
			}{"summary", r})
		case !g.quiet:
			pr.Println(stdout, fmt.Sprintf("%s  %s  %d files  %s  (%s new)  %s",
				r.ID, r.Unit, r.Files, ui.Bytes(r.Bytes), ui.Bytes(r.AddedBytes), r.Consistency))
			for _, nk := range r.NotKept {
				pr.Println(stderr, "  not kept: "+nk)
			}
		}
	}
	results, err := ops.Backup(ctx, &env.Env, req, obs)
	if err == nil && req.All && len(results) == 0 && !opts.json && !g.quiet {
		pr.Println(stderr, firstSteps(g))
	}
	return err
}

// suspectWarning names the anomalies of a suspect point and the way to
// accept them.
func suspectWarning(r backup.Result) string {
	return fmt.Sprintf("warning: restore point %s of %s is suspect: %s; older good points are kept until you run `lifeboat ack %s`",
		r.ID, r.Unit, strings.Join(r.Anomalies, "; "), r.ID)
}

// runBackupState makes a restore point of lifeboat's own state.
func runBackupState(cmd *cobra.Command, opts backupOptions, g *globalOptions, args []string) error {
	if len(args) > 0 || opts.all {
		return fmt.Errorf("%w: --state backs up lifeboat's own state alone: give no units or --all with it", ops.ErrInvalid)
	}
	ctx := cmd.Context()
	env := g.env(cmd, true)
	defer env.Close(ctx)
	obs, pr := g.observer(cmd)
	res, err := ops.BackupState(ctx, &env.Env, ops.StateBackupRequest{ConfigPath: opts.config, Trigger: "manual", NoWait: opts.noWait}, obs)
	pr.Done()
	if err != nil {
		return err
	}
	if opts.json {
		return writeSummary(cmd.OutOrStdout(), res)
	}
	if !g.quiet {
		fmt.Fprintf(cmd.OutOrStdout(), "%s  %s  config %t, %d jobs\n", res.ID, res.Unit, res.HasConfig, res.Jobs)
		if len(res.SecretsLeftOut) > 0 {
			fmt.Fprintf(cmd.OutOrStdout(), "left out (secrets): %s\n", strings.Join(res.SecretsLeftOut, ", "))
		}
	}
	return nil
}

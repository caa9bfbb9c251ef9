package main

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lifeboat-backup/lifeboat/internal/ops"
	"github.com/lifeboat-backup/lifeboat/internal/restore"
	"github.com/lifeboat-backup/lifeboat/internal/ui"
)

type restoreOptions struct {
	volume     string
	container  string
	imageOnly  bool
	path       string
	target     string
	composeDir string
	as         string
	ports      string
	force      bool
	json       bool
	dump       bool
	into       string
	withUsers  bool
	dryRun     bool
	noWait     bool
	fromHost   string
}

// restoreLong is restore's help: what each way of restoring does.
const restoreLong = `Restore a restore point. SNAPSHOT is an ID, a unique prefix of one,
UNIT@latest or UNIT@TIME (the newest point at or before TIME).

  (no flag)             recreate the whole unit: networks, volumes, bind
                        mounts, containers with their configuration and
                        writable layers, started in dependency order; on this
                        engine or the one DOCKER_HOST names
  --as NAME             a copy beside the original under a new project name
                        (container_names get NAME_ in front)
  --ports none|shift=N  publish no host port, or every host port plus N
                        (engine-chosen ports stay so), so that a copy can
                        run beside the original that holds them
  --compose-dir DIR     write a project's Compose files and .env into DIR
                        instead of where they were (a copy writes them
                        only there)
  --container C         only that container
  --target DIR          extract into a directory instead of touching Docker;
                        with --volume V only that volume's files, directly in
                        DIR; with --container C or --path P only that part
  --volume V [--as N]   restore into a Docker volume (created if missing)
  --dump --container C [--into D]
                        load C's database dumps (taken with consistency
                        dump or auto) into the running container C, or D:
                        psql/pg_restore, mysql, or an RDB replace and restart
                        for Redis; a database that holds data is refused
                        without --force; the source's users and grants
                        (MariaDB's mysql schema, PostgreSQL roles the
                        server has) only with --with-users
  --image-only          only load the images the point holds (docker save
                        archives, kept with --images save or for images
                        that exist in no registry), with their tags

Nothing is overwritten without --force: what exists is listed and the
restore refused; a bind source or Compose file that equals the point's is
used as it is. With --force a volume's contents are replaced only once the
restored copy is complete, and a replaced container is kept, renamed, until
the new one runs. Images the point holds are loaded first where the engine
lacks them; any other missing image is an error naming it. Files are written atomically and flushed
before restore reports success. Hard links, xattrs, ACLs, device nodes and
FIFOs are re-applied; anything that cannot be restored is listed.

A restore into Docker holds the lock of the point's unit and of every unit
it writes (a copy's, a volume's users'): it waits for a backup or restore
of them that runs (from the CLI or lifeboat serve), with a message naming
it, or with --no-wait refuses (exit status 11). --target takes no lock.

EXIT STATUS
  0 restored; 1 error; 10 no repository; 11 a unit is locked by another
  job (--no-wait); 12 wrong or missing password; 130 interrupted.`

func newRestoreCommand(g *globalOptions) *cobra.Command {
	var opts restoreOptions
	cmd := &cobra.Command{
		Use:   "restore SNAPSHOT",
		Short: "Bring a restore point back",
		Long:  restoreLong,
		Example: `  lifeboat restore volume/pgdata@latest --volume pgdata --as pgdata-copy
  lifeboat restore project/shop@latest --as shop-test --ports shift=1000 --dry-run
  lifeboat restore 3f2a --target /tmp/restored
  lifeboat restore volume/web@2026-11-24T15:30:00Z --volume web --target ./web`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			g.json = opts.json
			return runRestore(cmd, opts, g, args[0])
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.volume, "volume", "", "restore only this volume")
	f.StringVar(&opts.container, "container", "", "restore only this container")
	f.BoolVar(&opts.imageOnly, "image-only", false, "only load the images the restore point holds, with their tags")
	f.StringVar(&opts.path, "path", "", "restore only this path of the restore point (with --target)")
	f.StringVar(&opts.target, "target", "", "extract into this directory")
	f.StringVar(&opts.composeDir, "compose-dir", "", "write a project's Compose files and .env into this directory instead of where they were")
	f.StringVar(&opts.as, "as", "", "restore the volume under this name")
	f.StringVar(&opts.ports, "ports", "", "with a restore into Docker: none (publish no host port) or shift=N (add N to every host port)")
	f.BoolVar(&opts.force, "force", false, "write into a non-empty target, replacing its contents")
	f.BoolVar(&opts.json, "json", false, "print the result as JSON")
	f.BoolVarP(&opts.dryRun, "dry-run", "n", false, "only say what the restore would create, replace or refuse")
	f.BoolVar(&opts.dump, "dump", false, "load the database dumps of --container into a running container")
	f.StringVar(&opts.into, "into", "", "with --dump: the running container to load into (default: --container)")
	f.StringVar(&opts.fromHost, "from-host", "", "with UNIT@latest or UNIT@TIME: that host's points, not this host's (a repository several hosts share)")
	f.BoolVar(&opts.noWait, "no-wait", false, "refuse when another backup or restore holds the unit, instead of waiting for it")
	f.BoolVar(&opts.withUsers, "with-users", false, "with --dump: load the source's users and grants too, replacing the server's own")
	return cmd
}

// request is the restore the flags ask for: the API's request too.
func (o restoreOptions) request(ref string) ops.RestoreRequest {
	return ops.RestoreRequest{Point: ref, Volume: o.volume, Container: o.container, ImageOnly: o.imageOnly, Path: o.path, Target: o.target,
		As: o.as, Ports: o.ports, Force: o.force, WithUsers: o.withUsers, Dump: o.dump, Into: o.into, DryRun: o.dryRun, NoWait: o.noWait, ComposeDir: o.composeDir, FromHost: o.fromHost}
}

func runRestore(cmd *cobra.Command, opts restoreOptions, g *globalOptions, ref string) error {
	ctx := cmd.Context()
	req := opts.request(ref)
	env := g.env(cmd, false)
	// Checked before anything is opened: a bad request touches nothing.
	if _, err := req.Validate(&env.Env); err != nil {
		return err
	}
	defer env.Close(ctx)
	obs, pr := g.observer(cmd)
	res, err := ops.Restore(ctx, &env.Env, req, obs)
	pr.Done()
	if res.Plan != nil {
		if perr := printRestorePlan(cmd, opts, *res.Plan); perr != nil {
			return perr
		}
		return err
	}
	if err != nil {
		return err
	}
	switch {
	case opts.json:
		return writeSummary(cmd.OutOrStdout(), res.Summary())
	case res.Unit != nil:
		printUnitRestore(cmd, g, *res.Unit)
	case res.Dump != nil:
		printDumpLoad(cmd, g, *res.Dump)
	case res.Files != nil:
		printRestore(cmd, g, *res.Files)
	}
	return nil
}

func printRestore(cmd *cobra.Command, g *globalOptions, res restore.Result) {
	for _, nk := range res.NotKept {
		fmt.Fprintln(cmd.ErrOrStderr(), "not restored: "+nk)
	}
	if g.quiet {
		return
	}
	where := res.Target
	if res.Volume != "" {
		where = "volume " + res.Volume
	}
	fmt.Fprintf(cmd.OutOrStdout(), "restored %s (%s) to %s: %d files, %s\n", shortID(res.ID), res.Unit, where, res.Files, ui.Bytes(res.Bytes))
}

func printUnitRestore(cmd *cobra.Command, g *globalOptions, res restore.UnitResult) {
	for _, nk := range res.NotKept {
		fmt.Fprintln(cmd.ErrOrStderr(), "not restored: "+nk)
	}
	if !g.quiet {
		fmt.Fprintf(cmd.OutOrStdout(), "restored %s (%s): containers %v, volumes %v\n", shortID(res.ID), res.Unit, res.Containers, res.Volumes)
		if len(res.ComposeFiles) > 0 {
			fmt.Fprintf(cmd.OutOrStdout(), "compose files written: %s\n", strings.Join(res.ComposeFiles, ", "))
		}
	}
}

func printDumpLoad(cmd *cobra.Command, g *globalOptions, res restore.DumpResult) {
	if !g.quiet {
		fmt.Fprintf(cmd.OutOrStdout(), "loaded %s dumps of %s from %s into %s: %s, %s\n", res.Profile, res.Container, shortID(res.ID), res.Into, strings.Join(res.Files, ", "), ui.Bytes(res.Bytes))
	}
}

func printRestorePlan(cmd *cobra.Command, opts restoreOptions, p restore.Plan) error {
	out := cmd.OutOrStdout()
	if opts.json {
		return json.NewEncoder(out).Encode(p)
	}
	for _, c := range p.Create {
		fmt.Fprintln(out, "would create: "+c)
	}
	for _, l := range p.Ports {
		fmt.Fprintln(out, l)
	}
	for _, r := range p.Replace {
		fmt.Fprintln(out, "would replace: "+r)
	}
	for _, r := range p.Refused {
		fmt.Fprintln(out, "refused: "+r)
	}
	return nil
}

func shortID(id string) string { return id[:min(12, len(id))] }

package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lifeboat-backup/lifeboat/internal/backup"
	"github.com/lifeboat-backup/lifeboat/internal/progress"
	"github.com/lifeboat-backup/lifeboat/internal/restore"
	"github.com/lifeboat-backup/lifeboat/internal/ui"
)

type restoreOptions struct {
	volume    string
	container string
	imageOnly bool
	path      string
	target    string
	as        string
	force     bool
	json      bool
	dump      bool
	into      string
	withUsers bool
	dryRun    bool
	noWait    bool
}

// scope is what the restore writes, for its locks.
func (o restoreOptions) scope() backup.RestoreScope {
	return backup.RestoreScope{Volume: o.volume, As: o.as, Target: o.target, ImageOnly: o.imageOnly, Dump: o.dump, Into: o.into}
}

func newRestoreCommand(g *globalOptions) *cobra.Command {
	var opts restoreOptions
	cmd := &cobra.Command{
		Use:   "restore SNAPSHOT",
		Short: "Bring a restore point back",
		Long: `Restore a restore point. SNAPSHOT is an ID, a unique prefix of one,
UNIT@latest or UNIT@TIME (the newest point at or before TIME).

  (no flag)             recreate the whole unit: networks, volumes, bind
                        mounts, containers with their configuration and
                        writable layers, started in dependency order; on this
                        engine or the one DOCKER_HOST names
  --as NAME             a copy beside the original under a new project name
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
restore refused. With --force a volume's contents are replaced only once the
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
  job (--no-wait); 12 wrong or missing password; 130 interrupted.`,
		Example: `  lifeboat restore volume/pgdata@latest --volume pgdata --as pgdata-copy
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
	f.StringVar(&opts.as, "as", "", "restore the volume under this name")
	f.BoolVar(&opts.force, "force", false, "write into a non-empty target, replacing its contents")
	f.BoolVar(&opts.json, "json", false, "print the result as JSON")
	f.BoolVarP(&opts.dryRun, "dry-run", "n", false, "only say what the restore would create, replace or refuse")
	f.BoolVar(&opts.dump, "dump", false, "load the database dumps of --container into a running container")
	f.StringVar(&opts.into, "into", "", "with --dump: the running container to load into (default: --container)")
	f.BoolVar(&opts.noWait, "no-wait", false, "refuse when another backup or restore holds the unit, instead of waiting for it")
	f.BoolVar(&opts.withUsers, "with-users", false, "with --dump: load the source's users and grants too, replacing the server's own")
	return cmd
}

func runRestore(cmd *cobra.Command, opts restoreOptions, g *globalOptions, ref string) error {
	ctx := cmd.Context()
	// The checks are the API's too: one function for both.
	req := restore.Request{Options: restore.Options{Ref: ref, Volume: opts.volume, Container: opts.container, ImageOnly: opts.imageOnly, Path: opts.path, Target: opts.target, As: opts.as, Force: opts.force, WithUsers: opts.withUsers, Log: g.log},
		Dump: opts.dump, Into: opts.into}
	kind, err := req.Validate()
	if err != nil {
		return err
	}
	if kind == restore.LoadDump {
		return runLoadDumps(cmd, opts, g, ref)
	}
	opts.path, opts.target = req.Path, req.Target
	repo, err := g.openRepository(ctx, true)
	if err != nil {
		return err
	}
	defer repo.Close(ctx)
	pr := ui.NewProgress(os.Stderr, g.showProgress())
	c := progress.New()
	pr.Track("restore "+ref, c)
	ro := req.Options
	ro.Progress = c
	ro.JournalDir = g.restoreJournalDir()
	if opts.dryRun {
		pr.Done()
		return runRestorePlan(cmd, opts, g, ro)
	}
	var res restore.Result
	if opts.target != "" {
		res, err = restore.ToDirectory(ctx, repo, ro)
	} else {
		eng, cerr := g.connectEngine(ctx)
		if cerr != nil {
			pr.Done()
			return cerr
		}
		defer eng.Close()
		// Not err: the restore's error below must reach the check after
		// this block.
		locks, lerr := g.lockRestore(ctx, repo, eng, &ro, opts.scope(), opts.noWait, func(s string) { pr.Println(os.Stderr, s) })
		if lerr != nil {
			pr.Done()
			return lerr
		}
		defer locks.Release()
		if opts.volume == "" {
			ur, err := restore.ToUnit(ctx, repo, eng, ro)
			pr.Done()
			if err != nil {
				return err
			}
			return printUnitRestore(cmd, opts, g, ur)
		}
		res, err = restore.ToVolume(ctx, repo, eng, ro)
	}
	pr.Done()
	if err != nil {
		return err
	}
	return printRestore(cmd, opts, g, res)
}

func printRestore(cmd *cobra.Command, opts restoreOptions, g *globalOptions, res restore.Result) error {
	if opts.json {
		return json.NewEncoder(os.Stdout).Encode(struct {
			MessageType string `json:"message_type"`
			restore.Result
		}{"summary", res})
	}
	for _, nk := range res.NotKept {
		fmt.Fprintln(cmd.ErrOrStderr(), "not restored: "+nk)
	}
	if g.quiet {
		return nil
	}
	where := res.Target
	if res.Volume != "" {
		where = "volume " + res.Volume
	}
	fmt.Fprintf(cmd.OutOrStdout(), "restored %s (%s) to %s: %d files, %s\n", res.ID[:min(12, len(res.ID))], res.Unit, where, res.Files, ui.Bytes(res.Bytes))
	return nil
}

func printUnitRestore(cmd *cobra.Command, opts restoreOptions, g *globalOptions, res restore.UnitResult) error {
	if opts.json {
		return json.NewEncoder(os.Stdout).Encode(struct {
			MessageType string `json:"message_type"`
			restore.UnitResult
		}{"summary", res})
	}
	for _, nk := range res.NotKept {
		fmt.Fprintln(cmd.ErrOrStderr(), "not restored: "+nk)
	}
	if !g.quiet {
		fmt.Fprintf(cmd.OutOrStdout(), "restored %s (%s): containers %v, volumes %v\n", res.ID[:min(12, len(res.ID))], res.Unit, res.Containers, res.Volumes)
	}
	return nil
}

func runLoadDumps(cmd *cobra.Command, opts restoreOptions, g *globalOptions, ref string) error {
	ctx := cmd.Context()
	repo, err := g.openRepository(ctx, true)
	if err != nil {
		return err
	}
	defer repo.Close(ctx)
	eng, err := g.connectEngine(ctx)
	if err != nil {
		return err
	}
	defer eng.Close()
	ro := restore.Options{Ref: ref, Container: opts.container, Force: opts.force, WithUsers: opts.withUsers, Log: g.log}
	locks, err := g.lockRestore(ctx, repo, eng, &ro, opts.scope(), opts.noWait, nil)
	if err != nil {
		return err
	}
	defer locks.Release()
	res, err := restore.LoadDumps(ctx, repo, eng, ro, opts.into)
	if err != nil {
		return err
	}
	if opts.json {
		return json.NewEncoder(os.Stdout).Encode(struct {
			MessageType string `json:"message_type"`
			restore.DumpResult
		}{"summary", res})
	}
	if !g.quiet {
		fmt.Fprintf(cmd.OutOrStdout(), "loaded %s dumps of %s from %s into %s: %s, %s\n", res.Profile, res.Container, res.ID[:min(12, len(res.ID))], res.Into, strings.Join(res.Files, ", "), ui.Bytes(res.Bytes))
	}
	return nil
}

func runRestorePlan(cmd *cobra.Command, opts restoreOptions, g *globalOptions, ro restore.Options) error {
	ctx := cmd.Context()
	repo, err := g.openRepository(ctx, true)
	if err != nil {
		return err
	}
	defer repo.Close(ctx)
	eng, err := g.connectEngine(ctx)
	if err != nil {
		return err
	}
	defer eng.Close()
	p, err := restore.DryRun(ctx, repo, eng, ro)
	if err != nil {
		return err
	}
	if opts.json {
		return json.NewEncoder(os.Stdout).Encode(p)
	}
	out := cmd.OutOrStdout()
	for _, c := range p.Create {
		fmt.Fprintln(out, "would create: "+c)
	}
	for _, r := range p.Replace {
		fmt.Fprintln(out, "would replace: "+r)
	}
	for _, r := range p.Refused {
		fmt.Fprintln(out, "refused: "+r)
	}
	if len(p.Refused) > 0 {
		return fmt.Errorf("%w: the restore would be refused (see above)", restore.ErrConflict)
	}
	return nil
}

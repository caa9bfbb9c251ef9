package main

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/lifeboat-backup/lifeboat/internal/ops"
	"github.com/lifeboat-backup/lifeboat/internal/replicate"
	"github.com/lifeboat-backup/lifeboat/internal/ui"
)

type replicateOptions struct {
	to         string
	delete     bool
	lockMode   string
	lockPeriod string
	json       bool
}

func newReplicateCommand(g *globalOptions) *cobra.Command {
	var opts replicateOptions
	cmd := &cobra.Command{
		Use:   "replicate --to s3://BUCKET/PREFIX",
		Short: "Copy the repository offsite, forever-incrementally",
		Long: `Copy the repository to S3-compatible storage (or another directory). Only
what the copy lacks is sent: after the first run, about what changed since
the last. Packs go first, indexes after them, the format blob last, so a
copy cut at any moment (a lost link, a stopped server) is still the
previous copy, and the next run completes it. The copy is the same
repository, with the same password: if this host's repository is lost,
point LIFEBOAT_REPOSITORY at it and restore.

The endpoint comes from LIFEBOAT_S3_ENDPOINT (HOST:PORT for TLS,
http://HOST:PORT for plain HTTP), the keys from AWS_ACCESS_KEY_ID and
AWS_SECRET_ACCESS_KEY; the bucket must exist. A destination that holds
another repository is refused.

With --lock-mode and --lock-period, every blob written to the copy gets S3
object-lock retention for the period, and every blob already there that
this repository still needs gets its lock extended to the period from now:
until then, not even these keys can delete or overwrite it (an overwrite
makes a new version; the locked one stays). The bucket must have been
created with object lock. compliance: nobody can lift the lock;
governance: keys with s3:BypassGovernanceRetention can. Replicate deletes
nothing unless --delete: its keys need no delete permission. Check the
lock with "lifeboat offsite verify".

EXIT STATUS
  0 copied; 1 error (the copy is still the previous one: run again);
  10 no repository; 12 wrong or missing password; 130 interrupted.`,
		Example: `  LIFEBOAT_S3_ENDPOINT=http://127.0.0.1:9000 lifeboat replicate --to s3://backups/host1
  lifeboat replicate --to s3://backups/host1 --delete --json
  lifeboat replicate --to s3://locked/host1 --lock-mode compliance --lock-period 30d
  LIFEBOAT_REPOSITORY=s3://backups/host1 lifeboat restore project/shop@latest`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			g.json = opts.json
			return runReplicateCommand(cmd, opts, g)
		},
	}
	cmd.Flags().StringVar(&opts.to, "to", "", "the copy's location, s3://BUCKET/PREFIX")
	cmd.Flags().BoolVar(&opts.delete, "delete", false, "also delete from the copy what maintenance deleted here")
	cmd.Flags().StringVar(&opts.lockMode, "lock-mode", "", "lock the copy's blobs with S3 object lock: governance or compliance")
	cmd.Flags().StringVar(&opts.lockPeriod, "lock-period", "", "how long each blob stays locked from this run, at least a day: 30d, 720h")
	cmd.Flags().BoolVar(&opts.json, "json", false, "print the result as JSON")
	return cmd
}

func runReplicateCommand(cmd *cobra.Command, opts replicateOptions, g *globalOptions) error {
	ctx := cmd.Context()
	req := ops.ReplicateRequest{To: opts.to, Delete: opts.delete, LockMode: opts.lockMode, LockPeriod: opts.lockPeriod}
	if err := req.Validate(); err != nil {
		return err
	}
	env := g.env(cmd, false)
	defer env.Close(ctx)
	obs, pr := g.observer(cmd)
	res, err := ops.Replicate(ctx, &env.Env, req, obs)
	pr.Done()
	if err != nil {
		return err
	}
	if opts.json {
		return writeSummary(cmd.OutOrStdout(), res)
	}
	if !g.quiet {
		printReplicateStats(cmd.OutOrStdout(), opts.to, res.Stats)
	}
	return nil
}

func printReplicateStats(w io.Writer, to string, st replicate.Stats) {
	fmt.Fprintf(w, "replicated to %s in %s\n", to, ui.Duration(st.Duration))
	fmt.Fprintf(w, "  sent:          %6d blobs  %10s  (%s/s)\n", st.BlobsSent, ui.Bytes(st.BytesSent), ui.Bytes(int64(st.BytesPerSecond)))
	fmt.Fprintf(w, "  already there: %6d blobs  %10s\n", st.BlobsPresent, ui.Bytes(st.BytesPresent))
	if st.LockedUntil != nil {
		fmt.Fprintf(w, "  lock extended: %6d blobs\n", st.BlobsExtended)
		fmt.Fprintf(w, "  locked until:  %s or later, every blob this repository needs\n", st.LockedUntil.Format(time.RFC3339))
	}
	if st.BlobsDeleted > 0 {
		fmt.Fprintf(w, "  deleted:       %6d blobs  %10s\n", st.BlobsDeleted, ui.Bytes(st.BytesDeleted))
	}
}

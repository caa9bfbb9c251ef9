package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/lifeboat-backup/lifeboat/internal/failpoint"
	"github.com/lifeboat-backup/lifeboat/internal/progress"
	"github.com/lifeboat-backup/lifeboat/internal/replicate"
	"github.com/lifeboat-backup/lifeboat/internal/repository"
	"github.com/lifeboat-backup/lifeboat/internal/ui"
)

type replicateOptions struct {
	to     string
	delete bool
	json   bool
}

// replicateSummary is the --json output.
type replicateSummary struct {
	MessageType string `json:"message_type"` // "summary"
	To          string `json:"to"`
	replicate.Stats
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

EXIT STATUS
  0 copied; 1 error (the copy is still the previous one: run again);
  10 no repository; 12 wrong or missing password; 130 interrupted.`,
		Example: `  LIFEBOAT_S3_ENDPOINT=http://127.0.0.1:9000 lifeboat replicate --to s3://backups/host1
  lifeboat replicate --to s3://backups/host1 --delete --json
  LIFEBOAT_REPOSITORY=s3://backups/host1 lifeboat restore project/shop@latest`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			g.json = opts.json
			return runReplicateCommand(cmd.Context(), opts, g, cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&opts.to, "to", "", "the copy's location, s3://BUCKET/PREFIX")
	cmd.Flags().BoolVar(&opts.delete, "delete", false, "also delete from the copy what maintenance deleted here")
	cmd.Flags().BoolVar(&opts.json, "json", false, "print the result as JSON")
	return cmd
}

func runReplicateCommand(ctx context.Context, opts replicateOptions, g *globalOptions, stdout io.Writer) error {
	if opts.to == "" {
		return errors.New("--to s3://BUCKET/PREFIX is needed: where to copy the repository")
	}
	repo, err := g.openRepository(ctx, true)
	if err != nil {
		return err
	}
	defer repo.Close(context.WithoutCancel(ctx))
	pr := ui.NewProgress(os.Stderr, g.showProgress())
	c := progress.New()
	pr.Track("replicate to "+opts.to, c)
	st, err := runReplicate(ctx, repo, opts.to, opts.delete, g.log, c)
	pr.Done()
	if err != nil {
		return err
	}
	if opts.json {
		return json.NewEncoder(stdout).Encode(replicateSummary{MessageType: "summary", To: opts.to, Stats: st})
	}
	if !g.quiet {
		printReplicateStats(stdout, opts.to, st)
	}
	return nil
}

func printReplicateStats(w io.Writer, to string, st replicate.Stats) {
	fmt.Fprintf(w, "replicated to %s in %s\n", to, ui.Duration(st.Duration))
	fmt.Fprintf(w, "  sent:          %6d blobs  %10s  (%s/s)\n", st.BlobsSent, ui.Bytes(st.BytesSent), ui.Bytes(int64(st.BytesPerSecond)))
	fmt.Fprintf(w, "  already there: %6d blobs  %10s\n", st.BlobsPresent, ui.Bytes(st.BytesPresent))
	if st.BlobsDeleted > 0 {
		fmt.Fprintf(w, "  deleted:       %6d blobs  %10s\n", st.BlobsDeleted, ui.Bytes(st.BytesDeleted))
	}
}

// runReplicate copies repo to the location to. The daemon's offsite job
// calls it too, without progress counters.
func runReplicate(ctx context.Context, repo *repository.Repository, to string, del bool, log *slog.Logger, c *progress.Counters) (replicate.Stats, error) {
	src, err := repo.Blobs()
	if err != nil {
		return replicate.Stats{}, err
	}
	dst, loc, err := repository.TargetStorage(ctx, to)
	if err != nil {
		return replicate.Stats{}, fmt.Errorf("replicate: %w", err)
	}
	defer dst.Close(context.WithoutCancel(ctx))
	if loc.Long() == repo.Location().Long() {
		return replicate.Stats{}, fmt.Errorf("replicate to %s: that is the repository itself", loc)
	}
	st, err := replicate.Copy(ctx, src, dst, replicate.Options{Delete: del, Progress: func(p replicate.Progress) {
		// Lets the end-to-end test cut the server in the middle of a copy.
		failpoint.Sleep("replicate-slow", 500*time.Millisecond)
		if c != nil {
			c.TotalFiles.Store(p.BlobsToSend)
			c.TotalBytes.Store(p.BytesToSend)
			c.Files.Store(p.BlobsSent)
			c.Bytes.Store(p.BytesSent)
		}
	}})
	switch {
	case errors.Is(err, replicate.ErrOtherRepository):
		return st, fmt.Errorf("replicate to %s: %w: choose an empty prefix, or one that holds a copy of this repository", loc.Long(), err)
	case err != nil && ctx.Err() == nil:
		return st, fmt.Errorf("replicate to %s: %w (sent %d blobs, %s, before that; the copy is still the previous one, and the next run goes on from there)",
			loc.Long(), err, st.BlobsSent, ui.Bytes(st.BytesSent))
	case err != nil:
		return st, err
	}
	log.Info("replicated", "to", loc.Long(), "blobs_sent", st.BlobsSent, "bytes_sent", st.BytesSent,
		"blobs_already_there", st.BlobsPresent, "blobs_deleted", st.BlobsDeleted, "duration_ms", st.Duration.Milliseconds())
	return st, nil
}

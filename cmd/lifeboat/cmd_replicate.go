package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
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

func newReplicateCommand(g *globalOptions) *cobra.Command {
	var opts replicateOptions
	cmd := &cobra.Command{
		Use:   "replicate --to s3://BUCKET/PREFIX",
		Short: "Copy the repository offsite, forever-incrementally",
		Long: `Copy the repository to S3-compatible storage. Only what the copy lacks is
sent: after the first run, about what changed since the last. Packs go
first and indexes after them, so a copy cut at any moment (a lost link, a
stopped server) is still the previous copy, and the next run completes it.
The copy is the same repository, with the same password: if this host's
repository is lost, point LIFEBOAT_REPOSITORY at it and restore.

The endpoint comes from LIFEBOAT_S3_ENDPOINT (http://HOST:PORT for plain
HTTP), the keys from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.

EXIT STATUS
  0 copied; 1 error; 10 no repository; 12 wrong or missing password.`,
		Example: `  LIFEBOAT_S3_ENDPOINT=http://127.0.0.1:9000 lifeboat replicate --to s3://backups/host1
  LIFEBOAT_REPOSITORY=s3://backups/host1 lifeboat restore project/shop@latest`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			g.json = opts.json
			if opts.to == "" {
				return errors.New("--to s3://BUCKET/PREFIX is needed: where to copy the repository")
			}
			ctx := cmd.Context()
			repo, err := g.openRepository(ctx, true)
			if err != nil {
				return err
			}
			defer repo.Close(ctx)
			pr := ui.NewProgress(os.Stderr, g.showProgress())
			c := progress.New()
			pr.Track("replicate to "+opts.to, c)
			st, err := runReplicate(ctx, repo, opts.to, opts.delete, g.log, c)
			pr.Done()
			if opts.json {
				if jerr := json.NewEncoder(os.Stdout).Encode(st); jerr != nil {
					return jerr
				}
			} else if !g.quiet && err == nil {
				fmt.Fprintf(cmd.OutOrStdout(), "sent %d blobs, %s (%s/s); %d blobs, %s already there", st.BlobsSent, ui.Bytes(st.BytesSent),
					ui.Bytes(int64(st.BytesPerSecond)), st.BlobsPresent, ui.Bytes(st.BytesPresent))
				if st.BlobsDeleted > 0 {
					fmt.Fprintf(cmd.OutOrStdout(), "; %d deleted", st.BlobsDeleted)
				}
				fmt.Fprintln(cmd.OutOrStdout())
			}
			return err
		},
	}
	cmd.Flags().StringVar(&opts.to, "to", "", "the copy's location, s3://BUCKET/PREFIX")
	cmd.Flags().BoolVar(&opts.delete, "delete", false, "also delete from the copy what maintenance deleted here")
	cmd.Flags().BoolVar(&opts.json, "json", false, "print the result as JSON")
	return cmd
}

// runReplicate copies repo to the S3 location to.
func runReplicate(ctx context.Context, repo *repository.Repository, to string, del bool, log *slog.Logger, c *progress.Counters) (replicate.Stats, error) {
	src, err := repo.Blobs()
	if err != nil {
		return replicate.Stats{}, err
	}
	dst, loc, err := repository.TargetStorage(ctx, to)
	if err != nil {
		return replicate.Stats{}, err
	}
	defer dst.Close(ctx)
	var blobs atomic.Int64
	st, err := replicate.Copy(ctx, src, dst, replicate.Options{Delete: del, Progress: func(n, b int64) {
		failpoint.Sleep("replicate-slow", 500*time.Millisecond)
		blobs.Store(n)
		if c != nil {
			c.Files.Store(n)
			c.Bytes.Store(b)
		}
	}})
	if err != nil {
		return st, fmt.Errorf("replicate to %s: %w (sent %d blobs before; the next run goes on from there)", loc, err, blobs.Load())
	}
	log.Info("replicated", "to", loc.String(), "blobs_sent", st.BlobsSent, "bytes_sent", st.BytesSent, "already_there", st.BlobsPresent)
	return st, nil
}

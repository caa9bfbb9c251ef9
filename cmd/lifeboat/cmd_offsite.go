package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/lifeboat-backup/lifeboat/internal/ops"
)

func newOffsiteCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "offsite",
		Short: "Check the offsite copy",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newOffsiteVerifyCommand(g))
	return cmd
}

type offsiteVerifyOptions struct {
	to       string
	lockMode string
	json     bool
}

func newOffsiteVerifyCommand(g *globalOptions) *cobra.Command {
	var opts offsiteVerifyOptions
	cmd := &cobra.Command{
		Use:   "verify --to s3://BUCKET/PREFIX",
		Short: "Prove with the S3 server that the offsite copy is locked",
		Long: `Prove, with the server itself, that the offsite copy made by
"lifeboat replicate --lock-mode" cannot be destroyed with this host's keys:

  bucket-lock       the bucket has object lock enabled
  blob-retention    every object of the copy is locked (in --lock-mode,
                    when given) and its lock has not ended
  canary-delete     a canary object written beside the copy
                    (PREFIX.lifeboat-canary/...) and locked for a day
                    cannot have its version deleted (for governance, not
                    even with the bypass header)
  canary-overwrite  after that and an overwrite, the canary's locked
                    version is still there, unchanged

Every check runs; each prints passed or failed with the server's answer.
It uses the endpoint and keys replicate uses (LIFEBOAT_S3_ENDPOINT,
AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY).

EXIT STATUS
  0 every check passed; 1 a check failed, or the copy could not be reached.`,
		Example: `  lifeboat offsite verify --to s3://locked/host1
  lifeboat offsite verify --to s3://locked/host1 --lock-mode compliance --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			g.json = opts.json
			return runOffsiteVerify(cmd, opts, g)
		},
	}
	cmd.Flags().StringVar(&opts.to, "to", "", "the copy's location, s3://BUCKET/PREFIX")
	cmd.Flags().StringVar(&opts.lockMode, "lock-mode", "", "the lock every blob must carry: governance or compliance (default: either)")
	cmd.Flags().BoolVar(&opts.json, "json", false, "print the result as JSON")
	return cmd
}

func runOffsiteVerify(cmd *cobra.Command, opts offsiteVerifyOptions, g *globalOptions) error {
	ctx := cmd.Context()
	req := ops.VerifyOffsiteRequest{To: opts.to, LockMode: opts.lockMode}
	if err := req.Validate(); err != nil {
		return err
	}
	env := g.env(cmd, false)
	defer env.Close(ctx)
	res, err := ops.VerifyOffsite(ctx, &env.Env, req, ops.Observer{})
	if err != nil && !errors.Is(err, ops.ErrOffsiteUnproven) {
		return err
	}
	if opts.json {
		if jerr := writeSummary(cmd.OutOrStdout(), res); jerr != nil {
			return jerr
		}
		return err
	}
	w := cmd.OutOrStdout()
	fmt.Fprintf(w, "offsite copy %s: %d blobs, %d locked\n", res.To, res.Blobs, res.BlobsLocked)
	for _, c := range res.Checks {
		state := "passed"
		if !c.OK {
			state = "FAILED"
		}
		fmt.Fprintf(w, "  %-16s %-6s  %s\n", c.Name, state, c.Detail)
	}
	return err
}

package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lifeboat-backup/lifeboat/internal/ops"
	"github.com/lifeboat-backup/lifeboat/internal/repository"
	"github.com/lifeboat-backup/lifeboat/internal/ui"
)

type checkOptions struct {
	readData string
	json     bool
}

func newCheckCommand(g *globalOptions) *cobra.Command {
	var opts checkOptions
	cmd := &cobra.Command{
		Use:   "check [--read-data PERCENT]",
		Short: "Verify the repository",
		Long: `Verify the repository: every index entry points into a pack that exists
and is long enough; every restore point's tree loads; every file's contents
are indexed and stored in an existing pack. With --read-data PERCENT a
random share of the files (100: all) is read back in full, decrypted and
checked against its hash: the only way to find bytes damaged on disk.
The check reads the storage itself, through a connection with an empty
cache of its own. Each problem names the restore points it affects.

EXIT STATUS
  0 no problem; 1 problems found (or the check could not run);
  10 no repository; 12 wrong or missing password.`,
		Example: `  lifeboat check
  lifeboat check --read-data 10%
  lifeboat check --read-data 100 --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			g.json = opts.json
			pct, err := ops.ParsePercent(opts.readData)
			if err != nil {
				return fmt.Errorf("--read-data: %w", err)
			}
			env := g.env(cmd, false)
			defer env.Close(cmd.Context())
			// Through a connection of its own, with an empty cache (Fresh):
			// what is checked is the storage, not a local copy of it.
			res, err := ops.Check(cmd.Context(), &env.Env, ops.CheckRequest{ReadData: pct}, ops.Observer{})
			if err != nil && !errors.Is(err, repository.ErrCheckFailed) {
				return err
			}
			if opts.json {
				if jerr := json.NewEncoder(cmd.OutOrStdout()).Encode(res); jerr != nil {
					return jerr
				}
			} else {
				printCheck(cmd, res)
			}
			return err
		},
	}
	cmd.Flags().StringVar(&opts.readData, "read-data", "0", "read back this percentage of the files' content (0-100, e.g. 10%)")
	cmd.Flags().BoolVar(&opts.json, "json", false, "print the result as JSON")
	return cmd
}

func printCheck(cmd *cobra.Command, res repository.CheckResult) {
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "%d restore points, %d files, %d directories, %d contents in %d blobs\n", res.Points, res.Files, res.Dirs, res.Contents, res.Blobs)
	if res.DataVerified {
		fmt.Fprintf(out, "read back %d files (%s), %.4g%% of them\n", res.ReadFiles, ui.Bytes(res.ReadBytes), res.ReadDataPct)
	} else {
		fmt.Fprintln(out, "file contents not read back (use --read-data PERCENT to find damaged bytes)")
	}
	for _, p := range res.Problems {
		fmt.Fprintf(cmd.ErrOrStderr(), "problem: %s\n", p.What)
		if len(p.Points) > 0 {
			fmt.Fprintf(cmd.ErrOrStderr(), "  restore points: %s\n", strings.Join(p.Points, ", "))
		}
		for _, path := range p.Paths {
			fmt.Fprintf(cmd.ErrOrStderr(), "  e.g. %s\n", path)
		}
	}
	if len(res.Problems) == 0 {
		fmt.Fprintln(out, "no problems found")
	}
}

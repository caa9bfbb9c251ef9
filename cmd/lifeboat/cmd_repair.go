package main

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/lifeboat-backup/lifeboat/internal/ops"
	"github.com/lifeboat-backup/lifeboat/internal/repository"
)

type repairOptions struct {
	readData string
	dryRun   bool
	json     bool
}

func newRepairCommand(g *globalOptions) *cobra.Command {
	var opts repairOptions
	cmd := &cobra.Command{
		Use:   "repair [--dry-run] [--json]",
		Short: "Rebuild a damaged repository's index and say what is lost",
		Long: `Repair what can be repaired after damage to the repository's storage.
Index blobs that cannot be read are set aside (kept under the name
` + repository.QuarantinePrefix + `…, never deleted), and the index is rebuilt
from the packs, each of which records its own contents: restore points whose
data is intact come back whole. Then the repository is checked, as
` + "`lifeboat check`" + ` does, and every problem left is named with the points it
hurts: those are lost. Restore point records whose pack is gone cannot be
rebuilt; they are counted. Nothing that could be recovered is deleted.

Lifeboat does not repair on its own when it opens a damaged repository: a
repair writes to the repository, which a listing or a restore must not do
behind the user's back; the error says to run this command.

EXIT STATUS
  0 repaired, nothing lost; 1 something is lost (named above) or the repair
  could not run; 10 no repository; 12 wrong or missing password.`,
		Example: `  lifeboat repair --dry-run
  lifeboat repair --read-data 100%
  lifeboat repair --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			g.json = opts.json
			pct, err := ops.ParsePercent(opts.readData)
			if err != nil {
				return fmt.Errorf("--read-data: %w", err)
			}
			res, err := repository.Repair(cmd.Context(), g.repoOptions(false), repository.RepairOptions{DryRun: opts.dryRun, ReadData: pct})
			if err != nil && !errors.Is(err, repository.ErrCheckFailed) {
				return err
			}
			if opts.json {
				if jerr := json.NewEncoder(cmd.OutOrStdout()).Encode(res); jerr != nil {
					return jerr
				}
				return err
			}
			printRepair(cmd, res)
			return err
		},
	}
	cmd.Flags().StringVar(&opts.readData, "read-data", "0", "in the check that follows, read back this percentage of the files' content")
	cmd.Flags().BoolVarP(&opts.dryRun, "dry-run", "n", false, "only say what would be done")
	cmd.Flags().BoolVar(&opts.json, "json", false, "print the result as JSON")
	return cmd
}

func printRepair(cmd *cobra.Command, res repository.RepairResult) {
	out := cmd.OutOrStdout()
	would := ""
	if res.DryRun {
		would = "would be "
	}
	for _, id := range res.SetAside {
		fmt.Fprintf(out, "unreadable index blob %s %sset aside as %s%s\n", id, would, repository.QuarantinePrefix, id)
	}
	if res.DryRun && len(res.SetAside) > 0 && res.Packs == 0 {
		fmt.Fprintln(out, "the index cannot be rebuilt before that blob is set aside: run without --dry-run")
		return
	}
	fmt.Fprintf(out, "read %d packs: %d index entries %srebuilt\n", res.Packs, res.Recovered, would)
	for _, p := range res.UnreadablePacks {
		fmt.Fprintf(cmd.ErrOrStderr(), "pack %s unreadable: its contents are lost\n", p)
	}
	for _, id := range res.LostRecords {
		fmt.Fprintf(cmd.ErrOrStderr(), "restore point record %s unreadable: %sdropped, the point it described is lost\n", id, would)
	}
	if res.Dropped > 0 {
		fmt.Fprintf(out, "%d index entries of lost packs no restore point needs dropped\n", res.Dropped)
	}
	printCheck(cmd, res.Check)
}

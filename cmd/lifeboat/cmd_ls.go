package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/lifeboat-backup/lifeboat/internal/backup"
	"github.com/lifeboat-backup/lifeboat/internal/ops"
)

type lsOptions struct {
	json   bool
	format string
}

func newLsCommand(g *globalOptions) *cobra.Command {
	var opts lsOptions
	cmd := &cobra.Command{
		Use:   "ls",
		Short: "List the units on this Docker host and how their policy protects them",
		Long: `List every unit on the host: Compose projects, containers in no project,
and volumes no container uses, with their containers, volumes and bind
mounts, and the policy that applies (labels lifeboat.enable,
lifeboat.consistency, lifeboat.exclude, ...; defaults otherwise), including
the consistency mode a backup would use now and why.

EXIT STATUS
  0 listed; 1 error (the Docker Engine cannot be reached, ...).`,
		Example: `  lifeboat ls
  lifeboat ls --json | jq '.[] | select(.policy.enabled)'
  lifeboat ls --format '{{.Unit}} {{.Consistency}} {{join .Volumes ","}}'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			g.json = opts.json
			if err := checkFormat(opts.format); err != nil {
				return fmt.Errorf("%w: %w", ops.ErrInvalid, err)
			}
			eng, err := g.connectEngine(cmd.Context())
			if err != nil {
				return err
			}
			defer eng.Close()
			units, err := backup.List(cmd.Context(), eng)
			if err != nil {
				return err
			}
			if opts.json {
				if units == nil {
					units = []backup.UnitInfo{}
				}
				return json.NewEncoder(cmd.OutOrStdout()).Encode(units)
			}
			if opts.format != "" {
				return printFormatted(cmd.OutOrStdout(), opts.format, units)
			}
			if len(units) == 0 {
				fmt.Fprint(cmd.ErrOrStderr(), firstSteps(g))
				return nil
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "UNIT\tCONTAINERS\tVOLUMES\tBINDS\tSCHEDULE\tCONSISTENCY\tWHY")
			for _, u := range units {
				why := u.Reason
				if u.Error != "" {
					why = "error: " + u.Error
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", u.Unit, dash(strings.Join(u.Containers, ",")), dash(strings.Join(u.Volumes, ",")), len(u.Binds), schedule(u), u.Consistency, why)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			for _, u := range units {
				for _, w := range u.Warnings {
					fmt.Fprintf(cmd.ErrOrStderr(), "warning: %s: %s\n", u.Unit, w)
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&opts.json, "json", false, "print a JSON array")
	cmd.Flags().StringVar(&opts.format, "format", "", formatHelp)
	return cmd
}

// schedule is when serve backs the unit up: its label's schedule, or
// "unscheduled" for a protected unit nothing will back up on its own.
func schedule(u backup.UnitInfo) string {
	switch {
	case !u.Policy.Enabled:
		return "-"
	case u.Policy.Schedule == "":
		return "unscheduled"
	}
	return u.Policy.Schedule
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// firstSteps says how to start when the engine has nothing to protect.
func firstSteps(g *globalOptions) string {
	return `Nothing to protect on this Docker Engine yet: no containers and no volumes.
Lifeboat backs up what runs there. To start:
  docker run -d --name web --label lifeboat.schedule=@daily -v webdata:/data IMAGE
                                     (any container; the label schedules its backups)
  lifeboat backup --all              back up every unit now
  lifeboat serve                     the daemon: schedules, retention, drills, the web UI
                                     on http://127.0.0.1:8420/ (sign in with the token in
                                     ` + g.stateDir + `/api.token, generated at first start)
`
}

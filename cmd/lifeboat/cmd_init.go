package main

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/lifeboat-backup/lifeboat/internal/repository"
)

type initOptions struct{ json bool }

func newInitCommand(g *globalOptions) *cobra.Command {
	var opts initOptions
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Create a repository",
		Long: `Create an encrypted, compressed, deduplicating repository at
LIFEBOAT_REPOSITORY (or --repository), by default ` + repository.DefaultPath() + `.

The password comes from LIFEBOAT_PASSWORD_FILE, LIFEBOAT_PASSWORD or a prompt
on a terminal. For the default repository without any of these, a random
password is generated into a 0600 file beside it.

EXIT STATUS
  0 created; 1 error (the path is not empty, not writable, ...);
  12 no password given.`,
		Example: `  LIFEBOAT_REPOSITORY=/srv/backup LIFEBOAT_PASSWORD_FILE=/root/lb.pw lifeboat init`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			g.json = opts.json
			return runInit(cmd, opts, g)
		},
	}
	cmd.Flags().BoolVar(&opts.json, "json", false, "print the result as JSON")
	return cmd
}

func runInit(cmd *cobra.Command, opts initOptions, g *globalOptions) error {
	res, err := repository.Init(cmd.Context(), g.repoOptions(false))
	if err != nil {
		return err
	}
	if opts.json {
		return json.NewEncoder(cmd.OutOrStdout()).Encode(map[string]any{
			"message_type": "summary", "repository": res.Path,
			"password_generated": res.PasswordGenerated, "password_file": res.PasswordFile,
		})
	}
	announceInit(cmd.ErrOrStderr(), res)
	fmt.Fprintln(cmd.OutOrStdout(), res.Path)
	return nil
}

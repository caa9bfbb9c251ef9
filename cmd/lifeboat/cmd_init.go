package main

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/lifeboat-backup/lifeboat/internal/replicate"
	"github.com/lifeboat-backup/lifeboat/internal/repository"
)

type initOptions struct {
	json                 bool
	lockMode, lockPeriod string
	keyDerivation        string
}

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

On S3, --lock-mode and --lock-period (at least 2d) make every blob kopia
writes carry S3 object lock for the period, in a bucket made with object
lock; full maintenance extends the locks, so what retention keeps stays
locked. The lock is part of the repository's format: it needs no flag after
init.

--key-derivation says how the password becomes the key: scrypt (the default,
memory-hard: guessing on GPUs costs memory too; about 0.15 s of a core on
every open, 0.4 s where the kernel gives no transparent huge pages) or pbkdf2 (PBKDF2-SHA256 with 600,000 rounds, the one FIPS 140
approves; about 0.1 s). The stock kopia CLI opens both.

EXIT STATUS
  0 created; 1 error (the path is not empty, not writable, ...);
  12 no password given.`,
		Example: `  LIFEBOAT_REPOSITORY=/srv/backup LIFEBOAT_PASSWORD_FILE=/root/lb.pw lifeboat init
  lifeboat init -r s3://backups/host1 --lock-mode compliance --lock-period 30d`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			g.json = opts.json
			return runInit(cmd, opts, g)
		},
	}
	cmd.Flags().BoolVar(&opts.json, "json", false, "print the result as JSON")
	cmd.Flags().StringVar(&opts.lockMode, "lock-mode", "", "S3 object lock of every blob: governance or compliance (with --lock-period)")
	cmd.Flags().StringVar(&opts.lockPeriod, "lock-period", "", "how long each blob stays locked, as 30d or 720h; maintenance extends it (with --lock-mode)")
	cmd.Flags().StringVar(&opts.keyDerivation, "key-derivation", "", "how the password becomes the key: scrypt (the default) or pbkdf2 (FIPS 140)")
	return cmd
}

func runInit(cmd *cobra.Command, opts initOptions, g *globalOptions) error {
	ro := g.repoOptions(false)
	if opts.lockMode != "" || opts.lockPeriod != "" {
		if opts.lockMode == "" || opts.lockPeriod == "" {
			return errors.New("give --lock-mode governance|compliance and --lock-period (as 30d) together")
		}
		d, err := replicate.ParsePeriod(opts.lockPeriod)
		if err != nil {
			return fmt.Errorf("--lock-period: %w", err)
		}
		ro.LockMode, ro.LockPeriod = opts.lockMode, d
	}
	ro.KeyDerivation = opts.keyDerivation
	res, err := repository.Init(cmd.Context(), ro)
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

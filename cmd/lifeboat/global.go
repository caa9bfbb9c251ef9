package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/lifeboat-backup/lifeboat/internal/engine"
	"github.com/lifeboat-backup/lifeboat/internal/journal"
	"github.com/lifeboat-backup/lifeboat/internal/repository"
	"github.com/lifeboat-backup/lifeboat/internal/secret"
)

// globalOptions are the flags every command shares. Each has a LIFEBOAT_*
// variable; a flag wins over the variable.
type globalOptions struct {
	repository   string
	passwordFile string
	cacheDir     string
	stateDir     string
	logLevel     string
	verbose      bool
	quiet        bool
	cpuProfile   string
	memProfile   string
	pointInTime  string    // as given
	pit          time.Time // resolved in setup; zero without --point-in-time
	engine       string    // --engine: one of the config file's engines
	json         bool      // set by the commands that take --json, read by main for errors
	log          *slog.Logger
}

func newRootCommand(g *globalOptions) *cobra.Command {
	root := &cobra.Command{
		Use:   "lifeboat",
		Short: "Agentless backup and restore for Docker hosts",
		Long: `Lifeboat backs up Docker volumes (and, as it grows, containers and whole
Compose projects) into a deduplicated, compressed, encrypted repository,
and brings them back: a file, a volume, on this host or another.

Start with:
  lifeboat backup --all          back up every volume into the default repository
  lifeboat snapshots             list restore points
  lifeboat restore volume/NAME@latest --volume NAME --as NAME-copy`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version + " (zstd: " + repository.ZstdEncoder() + ")",
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return g.setup(cmd)
		},
	}
	f := root.PersistentFlags()
	f.StringVarP(&g.repository, "repository", "r", os.Getenv("LIFEBOAT_REPOSITORY"), "repository path (env LIFEBOAT_REPOSITORY; default "+repository.DefaultPath()+")")
	f.StringVar(&g.passwordFile, "password-file", os.Getenv("LIFEBOAT_PASSWORD_FILE"), "file holding the repository password (env LIFEBOAT_PASSWORD_FILE)")
	f.StringVar(&g.cacheDir, "cache-dir", os.Getenv("LIFEBOAT_CACHE_DIR"), "where repository caches live (env LIFEBOAT_CACHE_DIR)")
	f.StringVar(&g.stateDir, "state-dir", envOr("LIFEBOAT_STATE_DIR", defaultStateDir()), "where the freeze journal and the unit locks live (env LIFEBOAT_STATE_DIR)")
	f.StringVar(&g.logLevel, "log-level", envOr("LIFEBOAT_LOG_LEVEL", "warn"), "log level: debug, info, warn or error (env LIFEBOAT_LOG_LEVEL)")
	f.BoolVarP(&g.verbose, "verbose", "v", false, "log at info level")
	f.BoolVarP(&g.quiet, "quiet", "q", false, "no progress, errors only")
	f.StringVar(&g.pointInTime, "point-in-time", os.Getenv("LIFEBOAT_POINT_IN_TIME"), "open the S3 repository read-only as it was then: RFC3339 or DURATION-ago, as 2h-ago (env LIFEBOAT_POINT_IN_TIME)")
	f.StringVar(&g.engine, "engine", os.Getenv("LIFEBOAT_ENGINE"), "act on this engine of the config file's engines: (env LIFEBOAT_ENGINE; file from LIFEBOAT_CONFIG)")
	f.StringVar(&g.cpuProfile, "cpu-profile", "", "write a CPU profile to this file (for developers)")
	_ = f.MarkHidden("cpu-profile")
	f.StringVar(&g.memProfile, "mem-profile", "", "write the heap profile of the largest heap to this file (for developers)")
	_ = f.MarkHidden("mem-profile")
	root.AddCommand(newInitCommand(g), newLsCommand(g), newBackupCommand(g), newSnapshotsCommand(g), newRestoreCommand(g), newForgetCommand(g), newServeCommand(g), newCheckCommand(g), newReplicateCommand(g), newMaintenanceCommand(g), newRepairCommand(g), newDrillCommand(g))
	root.AddCommand(newAckCommand(g))
	root.AddCommand(newOffsiteCommand(g))
	root.AddCommand(newRecoverCommand(g))
	root.AddCommand(newEnginesCommand(g))
	return root
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func (g *globalOptions) setup(cmd *cobra.Command) error {
	level := g.logLevel
	if g.verbose && !cmd.Flags().Changed("log-level") {
		level = "info"
	}
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return fmt.Errorf("--log-level %q: use debug, info, warn or error", level)
	}
	g.log = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: l}))
	if g.pointInTime != "" {
		// Resolved once, so every open in this command sees one moment.
		t, err := repository.ParsePointInTime(g.pointInTime, time.Now())
		if err != nil {
			return fmt.Errorf("--point-in-time: %w", err)
		}
		g.pit = t
	}
	if g.cpuProfile != "" {
		f, err := os.Create(g.cpuProfile)
		if err != nil {
			return fmt.Errorf("--cpu-profile: %w", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("--cpu-profile: %w", err)
		}
		cobra.OnFinalize(pprof.StopCPUProfile)
	}
	if g.memProfile != "" {
		h, err := startHeapProfile(g.memProfile)
		if err != nil {
			return err
		}
		cobra.OnFinalize(h.Stop)
	}
	return g.replayJournal(cmd.Context(), cmd.ErrOrStderr())
}

// defaultStateDir holds lifeboat's own state on this host: the freeze
// journal now, job history later.
func defaultStateDir() string {
	if os.Geteuid() == 0 {
		return "/var/lib/lifeboat"
	}
	if d := os.Getenv("XDG_STATE_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "lifeboat")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".local", "state", "lifeboat")
}

func (g *globalOptions) journalDir() string { return filepath.Join(g.stateDir, "journal") }

// replayJournal resumes containers that an interrupted lifeboat left
// paused or stopped. It runs before every command, and costs one ReadDir
// when there is nothing to do.
func (g *globalOptions) replayJournal(ctx context.Context, stderr io.Writer) error {
	// Helpers first: a killed restore's volume is removed only once no
	// helper mounts it.
	g.replayHelpers(ctx, stderr)
	g.replayRestores(ctx, stderr)
	if _, err := os.Stat(g.journalDir()); err != nil {
		return nil
	}
	j, err := journal.Open(g.journalDir(), g.log)
	if err != nil {
		return err
	}
	done, err := j.Replay(ctx, func(ctx context.Context, host string) (journal.Undoer, error) {
		return engine.ConnectHost(ctx, host, g.log)
	})
	for _, r := range done {
		if r.Err != nil {
			fmt.Fprintf(stderr, "lifeboat: could not resume containers of an interrupted backup of %s: %v (will retry at the next run)\n", r.Unit, r.Err)
		} else {
			fmt.Fprintf(stderr, "lifeboat: resumed %s of an interrupted backup of %s\n", strings.Join(r.Containers, ", "), r.Unit)
		}
	}
	return err
}

// showProgress reports whether a progress line may be drawn.
func (g *globalOptions) showProgress() bool { return !g.quiet && !g.json }

// usingDefault reports whether the repository is the embedded default,
// which is created on first use with a generated password.
func (g *globalOptions) usingDefault() bool { return g.repository == "" }

func (g *globalOptions) repoOptions(readOnly bool) repository.Options {
	return repository.Options{
		Location: g.repository,
		StateDir: g.cacheDir,
		Logger:   g.log,
		ReadOnly: readOnly,
		// Every command gets the view through here; repository.Open
		// refuses it where it cannot hold (a write, a local directory).
		PointInTime: g.pit,
		Password: repository.PasswordSource{
			File:     g.passwordFile,
			Value:    secret.New(os.Getenv("LIFEBOAT_PASSWORD")),
			Prompt:   promptPassword,
			Generate: g.usingDefault(),
		},
	}
}

func (g *globalOptions) openRepository(ctx context.Context, readOnly bool) (*repository.Repository, error) {
	return repository.Open(ctx, g.repoOptions(readOnly))
}

// openOrCreateRepository opens the repository, creating the embedded
// default one on first use.
func (g *globalOptions) openOrCreateRepository(ctx context.Context, stderr io.Writer) (*repository.Repository, error) {
	r, err := g.openRepository(ctx, false)
	if err == nil || !g.usingDefault() || !errors.Is(err, repository.ErrNotFound) {
		return r, err
	}
	res, err := repository.Init(ctx, g.repoOptions(false))
	if err != nil {
		return nil, err
	}
	announceInit(stderr, res)
	return g.openRepository(ctx, false)
}

func announceInit(w io.Writer, res repository.InitResult) {
	fmt.Fprintf(w, "created repository at %s\n", res.Path)
	if res.PasswordGenerated {
		fmt.Fprintf(w, "its password was generated into %s (mode 0600).\n"+
			"Keep a copy of that file somewhere safe: without it no backup in this repository can be read.\n", res.PasswordFile)
	}
}

// promptPassword asks on the terminal, and twice for a new repository.
func promptPassword(confirm bool) (secret.Value, error) {
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil || !term.IsTerminal(int(tty.Fd())) {
		if tty != nil {
			tty.Close()
		}
		return secret.Value{}, repository.ErrNoPassword
	}
	defer tty.Close()
	read := func(prompt string) (string, error) {
		fmt.Fprint(tty, prompt)
		b, err := term.ReadPassword(int(tty.Fd()))
		fmt.Fprintln(tty)
		return strings.TrimRight(string(b), "\r\n"), err
	}
	pw, err := read("repository password: ")
	if err != nil {
		return secret.Value{}, fmt.Errorf("read password: %w", err)
	}
	if pw == "" {
		return secret.Value{}, errors.New("empty password")
	}
	if confirm {
		again, err := read("enter it again: ")
		if err != nil {
			return secret.Value{}, fmt.Errorf("read password: %w", err)
		}
		if again != pw {
			return secret.Value{}, errors.New("the passwords differ")
		}
	}
	return secret.New(pw), nil
}

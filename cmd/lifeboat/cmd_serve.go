package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/lifeboat-backup/lifeboat/internal/config"
	"github.com/lifeboat-backup/lifeboat/internal/daemon"
	"github.com/lifeboat-backup/lifeboat/internal/engine"
	"github.com/lifeboat-backup/lifeboat/internal/repository"
	"github.com/lifeboat-backup/lifeboat/internal/secret"
	"github.com/lifeboat-backup/lifeboat/internal/server"
	"github.com/lifeboat-backup/lifeboat/internal/webui"
)

type serveOptions struct {
	config    string
	listen    string
	tokenFile string
}

func newServeCommand(g *globalOptions) *cobra.Command {
	var opts serveOptions
	cmd := &cobra.Command{
		Use:   "serve [--config FILE]",
		Short: "Run the daemon: schedules, retention, repository upkeep, REST API and metrics",
		Long: `Run lifeboat as a daemon. It reads each unit's policy from labels
(lifeboat.enable, lifeboat.schedule — cron or @every 6h —, lifeboat.consistency,
lifeboat.retention, lifeboat.images, lifeboat.exclude) over the defaults of the
config file, follows the engine's events so a newly labelled container is
protected without a restart, and runs backups on schedule in a queue (at
most "concurrency" at once, never two on one unit). A run missed while the
daemon was down runs once at start. After each successful backup the unit's
retention is applied. Maintenance, check and the offsite copy run on the
config file's schedules. Job history is kept in --state-dir and survives
restarts. SIGTERM lets running jobs finish for a few seconds, then cancels
them; whatever they froze is thawed.

The REST API (/api/v1, OpenAPI at /api/v1/openapi.json), /healthz,
Prometheus /metrics and the web UI listen on 127.0.0.1:8420 unless told
otherwise (HTTPS with api.tls_cert and api.tls_key). Every path but
/healthz needs a bearer token or a web UI session. The token file is the
admin token; without one (and without api.tokens) a token is generated into
STATE_DIR/api.token (mode 0600). api.tokens adds viewer, operator and admin
tokens by their SHA-256. Viewers see status and points, operators also run
jobs and restore into Docker, admins also restore into host directories
(only under restore.target_roots) and see captured secrets unmasked.
Timeouts and connection caps (api.max_conns, api.max_conns_per_client) keep
slow clients from starving the daemon.`,
		Example: `  lifeboat serve
  lifeboat serve --config /etc/lifeboat/lifeboat.yaml
  curl -H "Authorization: Bearer $(cat /var/lib/lifeboat/api.token)" http://127.0.0.1:8420/api/v1/units`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runServe(cmd, opts, g) },
	}
	f := cmd.Flags()
	f.StringVar(&opts.config, "config", os.Getenv("LIFEBOAT_CONFIG"), "config file, YAML (env LIFEBOAT_CONFIG)")
	f.StringVar(&opts.listen, "listen", "", "API address, HOST:PORT (default from the config, else "+config.DefaultListen+")")
	f.StringVar(&opts.tokenFile, "token-file", os.Getenv("LIFEBOAT_TOKEN_FILE"), "file holding the API's bearer token (env LIFEBOAT_TOKEN_FILE)")
	return cmd
}

func runServe(cmd *cobra.Command, opts serveOptions, g *globalOptions) error {
	ctx := cmd.Context()
	cfg, err := config.Load(opts.config)
	if err != nil {
		return err
	}
	applyServeConfig(cmd, &opts, g, cfg)
	creds, err := loadCredentials(cfg, opts.tokenFile, g.stateDir, cmd.ErrOrStderr())
	if err != nil {
		return err
	}
	sessionTTL, _ := time.ParseDuration(cfg.API.SessionTTL) // checked at load
	// With engines: in the file, the daemon connects to each itself, so
	// that one not answering does not keep it from the others.
	var eng *engine.Client
	engineHost := fmt.Sprintf("%d engines", len(cfg.Engines))
	if len(cfg.Engines) == 0 {
		if eng, err = g.connectEngine(ctx); err != nil {
			return err
		}
		defer eng.Close()
		engineHost = eng.Host()
	}
	repo, err := g.openOrCreateRepository(ctx, cmd.ErrOrStderr())
	if err != nil {
		return err
	}
	defer repo.Close(context.WithoutCancel(ctx))
	d, err := daemon.New(daemon.Options{Config: cfg, ConfigPath: opts.config, Repo: repo, Engine: eng, StateDir: g.stateDir, Version: version, Log: g.log,
		// Checks read the storage through a connection of their own, with
		// an empty cache; a password that can only be typed is not asked
		// again (the check then goes through the daemon's connection).
		Fresh: func() repository.Options {
			ro := g.repoOptions(true)
			ro.Password.Prompt, ro.Password.Generate = nil, false
			return ro
		},
	})
	if err != nil {
		return err
	}
	srv, ln, err := startAPI(cfg, server.Options{Credentials: creds, Backend: d, Log: g.log, UI: webui.Handler(), SessionTTL: sessionTTL})
	if err != nil {
		return err
	}
	g.log.Info("lifeboat serve started", "listen", ln.Addr().String(), "tls", cfg.API.TLSCert != "", "tokens", len(creds), "repository", repo.Path(), "engine", engineHost)
	err = d.Run(ctx)
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	if ctx.Err() != nil {
		g.log.Info("lifeboat serve stopped")
		return nil // SIGTERM is how a daemon is meant to end
	}
	return err
}

// The daemon is the API's back end; it does not import the server.
var _ server.Backend = (*daemon.Daemon)(nil)

// applyServeConfig merges the config file under the flags and variables,
// which win.
func applyServeConfig(cmd *cobra.Command, opts *serveOptions, g *globalOptions, cfg *config.Config) {
	if g.repository == "" {
		g.repository = cfg.Repository
	}
	if g.passwordFile == "" {
		g.passwordFile = cfg.PasswordFile
	}
	if opts.listen != "" {
		cfg.Listen = opts.listen
	}
	if opts.tokenFile == "" {
		opts.tokenFile = cfg.TokenFile
	}
	// The offsite copy's endpoint and keys may come from the file; the
	// environment wins. They stay in this process: kopia's config never
	// holds them.
	for k, v := range map[string]string{"LIFEBOAT_S3_ENDPOINT": cfg.Offsite.Endpoint, "AWS_ACCESS_KEY_ID": cfg.Offsite.AccessKeyID, "AWS_SECRET_ACCESS_KEY": cfg.Offsite.SecretAccessKey} {
		if v != "" && os.Getenv(k) == "" {
			os.Setenv(k, v)
		}
	}
	if cfg.StateDir != "" && !cmd.Flags().Changed("state-dir") && os.Getenv("LIFEBOAT_STATE_DIR") == "" {
		g.stateDir = cfg.StateDir
		// The restore journal lives there: finish or roll back what a
		// killed restore left, before any job runs.
		g.replayRestores(cmd.Context(), cmd.ErrOrStderr())
	}
	if !cmd.Flags().Changed("log-level") && os.Getenv("LIFEBOAT_LOG_LEVEL") == "" && !g.quiet {
		g.log = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
}

// startAPI listens on cfg.Listen and serves the API there, with the
// server's timeouts and connection caps, and TLS when configured.
func startAPI(cfg *config.Config, opts server.Options) (*http.Server, net.Listener, error) {
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, nil, fmt.Errorf("listen on %s: %w (choose another with --listen or listen: in the config)", cfg.Listen, err)
	}
	limits := server.Limits{MaxConns: cfg.API.MaxConns, MaxConnsPerClient: cfg.API.MaxConnsPerClient}
	srv, sln, err := server.HTTPServer(server.New(opts), ln, limits, cfg.API.TLSCert, cfg.API.TLSKey, opts.Log)
	if err != nil {
		ln.Close()
		return nil, nil, err
	}
	go func() {
		if err := srv.Serve(sln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			opts.Log.Error("API server", "err", err)
		}
	}()
	return srv, sln, nil
}

// loadCredentials gathers the API's tokens: the token file's (admin; the
// file given, or STATE_DIR/api.token, generated on first start unless the
// config file lists tokens of its own) and the config file's hashed ones.
func loadCredentials(cfg *config.Config, tokenFile, stateDir string, stderr io.Writer) ([]server.Credential, error) {
	var creds []server.Credential
	if tokenFile != "" || len(cfg.API.Tokens) == 0 {
		tok, err := loadToken(tokenFile, stateDir, stderr)
		if err != nil {
			return nil, err
		}
		// Only the hash is kept: the token itself is not held in memory
		// for the daemon's lifetime.
		creds = append(creds, server.Credential{Role: server.Admin, Hash: server.HashToken(tok.Reveal())})
	}
	for i, t := range cfg.API.Tokens {
		role, err := server.ParseRole(t.Role)
		if err != nil {
			return nil, fmt.Errorf("api.tokens[%d]: %w", i, err)
		}
		h, err := server.ParseHash(t.SHA256)
		if err != nil {
			return nil, fmt.Errorf("api.tokens[%d]: %w", i, err)
		}
		creds = append(creds, server.Credential{Role: role, Hash: h})
	}
	return creds, nil
}

// loadToken reads the API token, or generates one into the state
// directory on first start.
func loadToken(path, stateDir string, stderr io.Writer) (secret.Value, error) {
	if path == "" {
		path = filepath.Join(stateDir, "api.token")
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			b := make([]byte, 32)
			if _, err := rand.Read(b); err != nil {
				return secret.Value{}, err
			}
			if err := os.MkdirAll(stateDir, 0o700); err != nil {
				return secret.Value{}, fmt.Errorf("state directory: %w", err)
			}
			if err := os.WriteFile(path, []byte(hex.EncodeToString(b)+"\n"), 0o600); err != nil {
				return secret.Value{}, fmt.Errorf("write API token: %w", err)
			}
			fmt.Fprintf(stderr, "generated the API token into %s (mode 0600)\n", path)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return secret.Value{}, fmt.Errorf("API token: %w (give --token-file, or remove the setting to have one generated)", err)
	}
	tok := strings.TrimSpace(string(b))
	if len(tok) < 16 {
		return secret.Value{}, fmt.Errorf("API token in %s is shorter than 16 characters: use a long random one (openssl rand -hex 32)", path)
	}
	return secret.New(tok), nil
}

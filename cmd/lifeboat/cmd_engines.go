package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/lifeboat-backup/lifeboat/internal/config"
	"github.com/lifeboat-backup/lifeboat/internal/engine"
	"github.com/lifeboat-backup/lifeboat/internal/ops"
)

type enginesOptions struct{ json bool }

func newEnginesCommand(g *globalOptions) *cobra.Command {
	var opts enginesOptions
	cmd := &cobra.Command{
		Use:   "engines",
		Short: "List the Docker Engines of the config file and whether they answer",
		Long: `List the engines of the config file (engines:, file from LIFEBOAT_CONFIG):
each one's name, address, version, engine ID and unit count, or why it
cannot be reached. Without engines: in the file, the one engine of
DOCKER_HOST, named local. --engine NAME makes any command act on one.

EXIT STATUS
  0 every engine answered; 1 one did not, or the config file is bad.`,
		Example: `  lifeboat engines
  LIFEBOAT_CONFIG=/etc/lifeboat.yaml lifeboat engines --json
  lifeboat --engine web1 ls`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			g.json = opts.json
			cfg, err := g.config()
			if err != nil {
				return err
			}
			list := ops.Engines(cmd.Context(), cfg.EngineList(), ops.Env{Log: g.log, Defaults: cfg.PolicyDefaults()})
			if err := printEngines(cmd, opts, list); err != nil {
				return err
			}
			for _, e := range list {
				if !e.Reachable {
					return fmt.Errorf("engine %s does not answer: %s", e.Name, e.Error)
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&opts.json, "json", false, "print a JSON array")
	return cmd
}

func printEngines(cmd *cobra.Command, opts enginesOptions, list []ops.EngineStatus) error {
	if opts.json {
		return json.NewEncoder(cmd.OutOrStdout()).Encode(list)
	}
	tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ENGINE\tHOST\tVERSION\tENGINE ID\tUNITS\tSTATUS")
	for _, e := range list {
		status := "ok"
		if !e.Reachable {
			status = "unreachable: " + e.Error
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", e.Name, e.Host, e.Version, e.EngineID, e.Units, status)
	}
	return tw.Flush()
}

// config is the config file of LIFEBOAT_CONFIG (serve's --config), or
// the defaults.
func (g *globalOptions) config() (*config.Config, error) {
	return config.Load(os.Getenv("LIFEBOAT_CONFIG"))
}

// engineEndpoint is the engine --engine names, from the config file.
func (g *globalOptions) engineEndpoint() (config.Engine, bool, error) {
	if g.engine == "" {
		return config.Engine{}, false, nil
	}
	cfg, err := g.config()
	if err != nil {
		return config.Engine{}, false, err
	}
	e, err := cfg.FindEngine(g.engine)
	if err != nil {
		return e, false, fmt.Errorf("%w: --engine: %w (config file LIFEBOAT_CONFIG=%q)", ops.ErrInvalid, err, os.Getenv("LIFEBOAT_CONFIG"))
	}
	return e, len(cfg.EngineList()) > 1, nil
}

// connectEngine connects to the engine of --engine, or DOCKER_HOST's.
func (g *globalOptions) connectEngine(ctx context.Context) (*engine.Client, error) {
	e, _, err := g.engineEndpoint()
	if err != nil {
		return nil, err
	}
	if g.engine == "" {
		return engine.Connect(ctx, g.log)
	}
	return engine.ConnectEndpoint(ctx, e.Endpoint(), g.log)
}

// engineHost is the host the points of --engine's engine are recorded
// under: its name when the config has many engines, as serve does.
func (g *globalOptions) engineHost() string {
	if _, many, err := g.engineEndpoint(); err == nil && many {
		return g.engine
	}
	return ""
}

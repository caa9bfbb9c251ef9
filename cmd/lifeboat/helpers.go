package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"

	"github.com/lifeboat-backup/lifeboat/internal/engine"
	"github.com/lifeboat-backup/lifeboat/internal/helper"
)

func (g *globalOptions) helperDir() string { return filepath.Join(g.stateDir, "helpers") }

// replayHelpers removes the helper containers an interrupted lifeboat
// left on remote engines. It runs before every command and costs one
// ReadDir when there is nothing to do; what it cannot remove is kept for
// the next run and said so.
func (g *globalOptions) replayHelpers(ctx context.Context, stderr io.Writer) {
	done, err := helper.Reap(ctx, g.helperDir(), func(ctx context.Context, host string) (*engine.Client, error) {
		return engine.ConnectHost(ctx, host, g.log)
	}, g.log)
	for _, r := range done {
		if r.Err != nil {
			fmt.Fprintf(stderr, "lifeboat: could not remove helper container %s of an interrupted job on %s: %v (will retry at the next run)\n", r.Name, r.EngineHost, r.Err)
		} else {
			fmt.Fprintf(stderr, "lifeboat: removed helper container %s of an interrupted job (%s)\n", r.Name, r.What)
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "lifeboat: helper journal: %v\n", err)
	}
	if err := helper.SweepStages(filepath.Join(g.stateDir, "stage")); err != nil {
		fmt.Fprintf(stderr, "lifeboat: staging area of an interrupted job: %v\n", err)
	}
}

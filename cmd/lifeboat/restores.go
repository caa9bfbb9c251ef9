package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/lifeboat-backup/lifeboat/internal/engine"
	"github.com/lifeboat-backup/lifeboat/internal/restore/txn"
)

func (g *globalOptions) restoreJournalDir() string { return filepath.Join(g.stateDir, "restores") }

// replayRestores rolls back, or finishes once they had succeeded, the
// restores an interrupted lifeboat left half done. It runs before every
// command and at serve start, and costs one stat when there is nothing to
// do. A restore it cannot settle is kept for the next run and said so; it
// does not stop the command.
func (g *globalOptions) replayRestores(ctx context.Context, stderr io.Writer) {
	if _, err := os.Stat(g.restoreJournalDir()); err != nil {
		return
	}
	j, err := txn.Open(g.restoreJournalDir(), g.log)
	if err != nil {
		fmt.Fprintf(stderr, "lifeboat: restore journal: %v\n", err)
		return
	}
	var clients []*engine.Client
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	done, err := j.Replay(ctx, func(ctx context.Context, host string) (txn.Engine, error) {
		c, err := engine.ConnectHost(ctx, host, g.log)
		if err != nil {
			return nil, err
		}
		clients = append(clients, c)
		return c, nil
	})
	for _, r := range done {
		fmt.Fprintln(stderr, r.Message())
	}
	if err != nil {
		fmt.Fprintf(stderr, "lifeboat: restore journal: %v\n", err)
	}
}

package helper

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/lifeboat-backup/lifeboat/internal/engine"
	"github.com/lifeboat-backup/lifeboat/internal/flock"
)

// Connector opens a client to an engine recorded in the journal.
type Connector func(ctx context.Context, host string) (*engine.Client, error)

// Reaped is one helper a dead lifeboat left, and what became of it.
type Reaped struct {
	Name       string
	EngineHost string
	What       string
	Err        error
}

// Reap removes the helper containers of dead owners (see the package
// comment) and their journal entries. An engine that cannot be reached
// keeps its entries for the next run. It costs one ReadDir when there is
// nothing to do.
func Reap(ctx context.Context, dir string, connect Connector, log *slog.Logger) ([]Reaped, error) {
	names, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read helper journal %s: %w", dir, err)
	}
	clients := map[string]*engine.Client{}
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	var out []Reaped
	for _, de := range names {
		if !strings.HasPrefix(de.Name(), namePrefix) || !strings.HasSuffix(de.Name(), ".json") {
			continue
		}
		r, ok := reapOne(ctx, filepath.Join(dir, de.Name()), clients, connect)
		if ok {
			log.Info("helper container of an interrupted lifeboat removed", "helper", r.Name, "what", r.What, "err", r.Err)
			out = append(out, r)
		}
	}
	return out, nil
}

// reapOne settles one entry; ok is false when its owner lives.
func reapOne(ctx context.Context, path string, clients map[string]*engine.Client, connect Connector) (Reaped, bool) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return Reaped{}, false // removed by its owner meanwhile
	}
	defer f.Close()
	if ok, err := flock.TryLock(f); !ok || err != nil {
		return Reaped{}, false
	}
	var e entry
	b, err := os.ReadFile(path)
	if err == nil {
		err = json.Unmarshal(b, &e)
	}
	if err != nil || e.Name == "" {
		// A torn entry: its owner died writing it, before the create.
		os.Remove(path)
		return Reaped{Name: filepath.Base(path), Err: err}, true
	}
	r := Reaped{Name: e.Name, EngineHost: e.EngineHost, What: e.What}
	c := clients[e.EngineHost]
	if c == nil {
		if c, err = connect(ctx, e.EngineHost); err != nil {
			r.Err = fmt.Errorf("connect to %s: %w", e.EngineHost, err)
			return r, true
		}
		clients[e.EngineHost] = c
	}
	if r.Err = c.RemoveHelper(ctx, e.Name); r.Err == nil {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			r.Err = err
		}
	}
	return r, true
}

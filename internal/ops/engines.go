package ops

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/lifeboat-backup/lifeboat/internal/backup"
	"github.com/lifeboat-backup/lifeboat/internal/config"
	"github.com/lifeboat-backup/lifeboat/internal/engine"
)

// EngineStatus is one engine of the config file, and its health.
type EngineStatus struct {
	Name      string `json:"name"`
	Host      string `json:"host"` // DOCKER_HOST form; "" for the environment's
	Reachable bool   `json:"reachable"`
	// Version and EngineID are what the engine said when last reached;
	// the ID tells engines apart whose hostnames are the same.
	Version       string     `json:"version,omitempty"`
	EngineID      string     `json:"engine_id,omitempty"`
	Hostname      string     `json:"hostname,omitempty"`
	Units         int        `json:"units"`
	Concurrency   int        `json:"concurrency"`
	LastDiscovery *time.Time `json:"last_discovery,omitempty"`
	Error         string     `json:"error,omitempty"`
}

// engineTimeout bounds how long one engine may take to answer: an engine
// that does not is reported, not waited for.
const engineTimeout = 15 * time.Second

// Engines connects to each engine at once and reports what it says: its
// version, ID and units, or why it cannot be reached.
func Engines(ctx context.Context, engines []config.Engine, defaults Env) []EngineStatus {
	out := make([]EngineStatus, len(engines))
	var wg sync.WaitGroup
	for i, e := range engines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = probeEngine(ctx, e, defaults)
		}()
	}
	wg.Wait()
	return out
}

func probeEngine(ctx context.Context, e config.Engine, env Env) EngineStatus {
	s := EngineStatus{Name: e.Name, Host: e.Host, Concurrency: max(1, e.Concurrency)}
	ctx, cancel := context.WithTimeout(ctx, engineTimeout)
	defer cancel()
	log := env.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c, err := engine.ConnectEndpoint(ctx, e.Endpoint(), log)
	if err != nil {
		s.Error = err.Error()
		return s
	}
	defer c.Close()
	info := c.Info()
	s.Version, s.EngineID, s.Hostname = info.EngineVersion, info.ID, info.Hostname
	if s.Host == "" {
		s.Host = c.Host()
	}
	units, err := backup.ListWith(ctx, c, env.Defaults)
	if err != nil {
		s.Error = err.Error()
		return s
	}
	now := time.Now()
	s.Reachable, s.Units, s.LastDiscovery = true, len(units), &now
	return s
}

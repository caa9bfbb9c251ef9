package daemon

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/lifeboat-backup/lifeboat/internal/api"
	"github.com/lifeboat-backup/lifeboat/internal/backup"
	"github.com/lifeboat-backup/lifeboat/internal/config"
	"github.com/lifeboat-backup/lifeboat/internal/engine"
	"github.com/lifeboat-backup/lifeboat/internal/ops"
	"github.com/lifeboat-backup/lifeboat/internal/repository"
	"github.com/lifeboat-backup/lifeboat/internal/scheduler"
)

// engineState is one engine the daemon protects. Its connection is made
// at start and again at each discovery after it failed: an engine that
// cannot be reached marks its own units, never the daemon.
type engineState struct {
	cfg   config.Engine
	env   ops.Env       // the daemon's, on this engine
	slots chan struct{} // its jobs at once: engines[].concurrency

	mu            sync.Mutex
	client        *engine.Client
	info          engine.Info
	lastDiscovery time.Time
	err           string
	units         int
}

// setupEngines makes the engines' states: the config's engines, or the
// one engine Options.Engine is connected to.
func (d *Daemon) setupEngines() {
	list := d.cfg.EngineList()
	for _, c := range list {
		es := &engineState{cfg: c, slots: make(chan struct{}, max(1, c.Concurrency))}
		es.env = d.env
		es.env.Engine = es.connect
		if len(list) > 1 {
			es.env.EngineName, es.env.Host = c.Name, c.Name
		}
		d.engines = append(d.engines, es)
	}
	if len(d.cfg.Engines) == 0 && d.opts.Engine != nil {
		es := d.engines[0]
		es.client, es.info = d.opts.Engine, d.opts.Engine.Info()
	}
	// Repository-wide jobs (forget's timeline tags) use the first engine.
	d.env.Engine = d.engines[0].connect
}

// multi says whether units carry their engine's name.
func (d *Daemon) multi() bool { return len(d.engines) > 1 }

// connect is the engine's connection, made anew if the last one failed.
func (es *engineState) connect(ctx context.Context) (*engine.Client, error) {
	es.mu.Lock()
	defer es.mu.Unlock()
	if es.client != nil {
		return es.client, nil
	}
	c, err := engine.ConnectEndpoint(ctx, es.cfg.Endpoint(), es.env.Log)
	if err != nil {
		es.err = err.Error()
		return nil, fmt.Errorf("engine %s: %w", es.cfg.Name, err)
	}
	es.client, es.info, es.err = c, c.Info(), ""
	return c, nil
}

// watch follows the engine's events, reconnecting as discovery does.
func (d *Daemon) watch(ctx context.Context, es *engineState) {
	for ctx.Err() == nil {
		if c, err := es.connect(ctx); err == nil {
			c.Changes(ctx, d.poke)
		}
		select {
		case <-ctx.Done():
		case <-time.After(rediscover):
		}
	}
}

// listAll lists every engine's units, named as the daemon names them.
// failed are the engines that could not be listed: their units are kept
// as they were, marked unreachable.
func (d *Daemon) listAll(ctx context.Context) (infos []backup.UnitInfo, engineOf map[string]string, failed map[string]string) {
	engineOf, failed = map[string]string{}, map[string]string{}
	for _, es := range d.engines {
		list, err := d.listEngine(ctx, es)
		if err != nil {
			failed[es.cfg.Name] = err.Error()
			d.log.Warn("engine unreachable: its units are not backed up until it answers", "engine", es.cfg.Name, "err", err)
			continue
		}
		for _, info := range list {
			info.Unit = d.qualify(es, info.Unit)
			engineOf[info.Unit] = es.cfg.Name
			infos = append(infos, info)
		}
	}
	return infos, engineOf, failed
}

func (d *Daemon) listEngine(ctx context.Context, es *engineState) ([]backup.UnitInfo, error) {
	c, err := es.connect(ctx)
	if err != nil {
		return nil, err
	}
	lctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	list, err := backup.ListWith(lctx, c, d.cfg.PolicyDefaults())
	es.mu.Lock()
	defer es.mu.Unlock()
	if err != nil {
		if errors.Is(err, engine.ErrUnreachable) || lctx.Err() != nil {
			// Reconnect at the next discovery.
			es.client = nil
		}
		es.err = err.Error()
		return nil, err
	}
	es.lastDiscovery, es.err, es.units = time.Now(), "", len(list)
	return list, nil
}

// qualify names unit of es as the daemon does: ENGINE/KIND/NAME with
// more than one engine, KIND/NAME with one.
func (d *Daemon) qualify(es *engineState, unit string) string {
	if !d.multi() {
		return unit
	}
	return es.cfg.Name + "/" + unit
}

// target is the engine of a daemon unit name and the unit's name on it.
func (d *Daemon) target(unit string) (*engineState, string, error) {
	if !d.multi() {
		return d.engines[0], unit, nil
	}
	name, local, ok := strings.Cut(unit, "/")
	es := d.engine(name)
	if !ok || es == nil {
		return nil, "", fmt.Errorf("%w: unit %q: write ENGINE/KIND/NAME, ENGINE one of %s", api.ErrBadRequest, unit, d.engineNames())
	}
	return es, local, nil
}

func (d *Daemon) engine(name string) *engineState {
	for _, es := range d.engines {
		if es.cfg.Name == name {
			return es
		}
	}
	return nil
}

func (d *Daemon) engineNames() string {
	var names []string
	for _, es := range d.engines {
		names = append(names, es.cfg.Name)
	}
	return strings.Join(names, ", ")
}

// engineOfPoint is the engine a point's unit lives on: the one it was
// recorded under, else the first.
func (d *Daemon) engineOfPoint(p repository.Point) *engineState {
	if d.multi() {
		if es := d.engine(p.Host); es != nil {
			return es
		}
	}
	return d.engines[0]
}

// pointKey is the daemon's name of a point's unit, "" for a point of no
// engine of this daemon (another host's).
func (d *Daemon) pointKey(p repository.Point) string {
	if !d.multi() {
		return p.Unit
	}
	if es := d.engine(p.Host); es != nil {
		return d.qualify(es, p.Unit)
	}
	return ""
}

// slot waits for one of the engine's job slots, saying so on the job.
// The caller gives it back with release.
func (es *engineState) slot(ctx context.Context, r *scheduler.Run) (release func(), err error) {
	release = func() { <-es.slots }
	select {
	case es.slots <- struct{}{}:
		return release, nil
	default:
	}
	r.SetWaiting(fmt.Sprintf("a slot of engine %s (its concurrency is %d)", es.cfg.Name, cap(es.slots)))
	defer r.SetWaiting("")
	select {
	case es.slots <- struct{}{}:
		return release, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Engines reports each engine and its health.
func (d *Daemon) Engines(ctx context.Context) ([]api.EngineStatus, error) {
	select {
	case <-d.ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	out := make([]api.EngineStatus, 0, len(d.engines))
	for _, es := range d.engines {
		es.mu.Lock()
		s := api.EngineStatus{Name: es.cfg.Name, Host: es.cfg.Host, Reachable: es.client != nil && es.err == "",
			Version: es.info.EngineVersion, EngineID: es.info.ID, Hostname: es.info.Hostname, Units: es.units,
			Concurrency: cap(es.slots), Error: es.err}
		if s.Host == "" && es.client != nil {
			s.Host = es.client.Host()
		}
		if !es.lastDiscovery.IsZero() {
			t := es.lastDiscovery
			s.LastDiscovery = &t
		}
		es.mu.Unlock()
		out = append(out, s)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// newestDrillsByKey is newestDrills keyed by the daemon's unit names.
func (d *Daemon) newestDrillsByKey(points []repository.Point) map[string]repository.Point {
	keyed := make([]repository.Point, 0, len(points))
	for _, p := range points {
		p.Unit = d.pointKey(p)
		keyed = append(keyed, p)
	}
	return newestDrills(keyed)
}

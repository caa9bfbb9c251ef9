package daemon

import (
	"errors"
	"testing"

	"github.com/lifeboat-backup/lifeboat/internal/api"
	"github.com/lifeboat-backup/lifeboat/internal/config"
	"github.com/lifeboat-backup/lifeboat/internal/repository"
)

// TestEngineNames: with one engine units keep their names; with many they
// are ENGINE/KIND/NAME, each engine's points are found under its name, and
// a name of no engine is refused with the engines to choose from.
func TestEngineNames(t *testing.T) {
	one := &Daemon{cfg: &config.Config{}}
	one.setupEngines()
	if got := one.qualify(one.engines[0], "container/web"); got != "container/web" || one.multi() {
		t.Fatalf("one engine: %q", got)
	}
	if es, local, err := one.target("container/web"); err != nil || es != one.engines[0] || local != "container/web" {
		t.Fatalf("one engine's target: %v %q %v", es, local, err)
	}

	many := &Daemon{cfg: &config.Config{Engines: []config.Engine{{Name: "alpha", Host: "unix:///a", Concurrency: 2}, {Name: "beta", Host: "unix:///b"}}}}
	many.setupEngines()
	beta := many.engines[1]
	if !many.multi() || many.qualify(beta, "container/web") != "beta/container/web" || cap(many.engines[0].slots) != 2 {
		t.Fatalf("many engines: %+v", many.engines)
	}
	if beta.env.Host != "beta" || beta.env.EngineName != "beta" || beta.env.LockDir() == many.engines[0].env.LockDir() {
		t.Errorf("beta's environment: host %q, name %q, locks %s", beta.env.Host, beta.env.EngineName, beta.env.LockDir())
	}
	if es, local, err := many.target("beta/container/web"); err != nil || es != beta || local != "container/web" {
		t.Fatalf("target: %v %q %v", es, local, err)
	}
	if _, _, err := many.target("gamma/container/web"); !errors.Is(err, api.ErrBadRequest) {
		t.Fatalf("unknown engine: %v", err)
	}
	if k := many.pointKey(repository.Point{Unit: "container/web", Host: "beta"}); k != "beta/container/web" {
		t.Errorf("beta's point: %q", k)
	}
	if k := many.pointKey(repository.Point{Unit: "container/web", Host: "elsewhere"}); k != "" {
		t.Errorf("another host's point: %q", k)
	}
	if es := many.engineOfPoint(repository.Point{Host: "beta"}); es != beta {
		t.Errorf("engine of beta's point: %s", es.cfg.Name)
	}
}

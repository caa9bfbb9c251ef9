package ops

import (
	"github.com/lifeboat-backup/lifeboat/internal/engine"
	"github.com/lifeboat-backup/lifeboat/internal/repository"
	"github.com/lifeboat-backup/lifeboat/internal/unitlock"
)

// shared is how a unit's lock holds across the hosts that share repo:
// a lease in it, scoped to the engine the job acts on (the same unit
// name on two engines is two units). nil, the flock alone, when the
// repository's storage cannot hold leases.
func (e *Env) shared(repo *repository.Repository, eng *engine.Client, obs Observer) *unitlock.Shared {
	st, err := repo.Leases()
	if err != nil {
		obs.log(e).Warn("unit locks hold on this host only", "err", err)
		return nil
	}
	return &unitlock.Shared{Store: st, EngineID: eng.Info().ID, Log: obs.log(e)}
}

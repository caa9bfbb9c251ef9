package ops

import (
	"context"
	"sync"

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
	return e.sharedIn(st, eng, obs)
}

// sharedIn is shared with the leases kept in st.
func (e *Env) sharedIn(st unitlock.Store, eng *engine.Client, obs Observer) *unitlock.Shared {
	return &unitlock.Shared{Store: st, EngineID: eng.Info().ID, Log: obs.log(e)}
}

// opening starts opening the repository for a write and returns what
// waits for it, unless opening may ask for the password on the terminal,
// which must not interleave with a lock's waiting notices: then it opens
// on the first call.
func (e *Env) opening(ctx context.Context) func() (*repository.Repository, error) {
	open := sync.OnceValues(func() (*repository.Repository, error) { return e.Repository(ctx, true) })
	if e.Fresh != nil && !e.Fresh().MayPrompt() {
		go open()
	}
	return open
}

// earlyShared is shared from a lease store opened beside the repository
// (repository.OpenLeases), so that a unit's lease settles while the
// repository opens; from the repository once open where that store
// cannot be had (no repository yet, as before the embedded default's
// first backup).
func (e *Env) earlyShared(ctx context.Context, repo func() (*repository.Repository, error), eng *engine.Client, obs Observer) (*unitlock.Shared, func()) {
	if e.Fresh != nil {
		if st, closeSt, err := repository.OpenLeases(ctx, e.Fresh()); err == nil {
			return e.sharedIn(st, eng, obs), closeSt
		}
	}
	r, err := repo()
	if err != nil {
		return nil, func() {} // every unit reports it
	}
	return e.shared(r, eng, obs), func() {}
}

package backup

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/lifeboat-backup/lifeboat/internal/engine"
)

// selfUnit is the unit lifeboat's own container belongs to when lifeboat
// runs in a container of eng: its Compose project, or the container alone.
// Backing it up would freeze lifeboat itself, which then could not thaw.
func selfUnit(ctx context.Context, eng *engine.Client) (Unit, bool, error) {
	ct, ok, err := eng.Self(ctx)
	if err != nil || !ok {
		return Unit{}, false, err
	}
	if ct.Project != "" {
		return Unit{Kind: "project", Name: ct.Project}, true, nil
	}
	return Unit{Kind: "container", Name: ct.Name}, true, nil
}

// withoutSelf leaves lifeboat's own unit out of units.
func withoutSelf(ctx context.Context, eng *engine.Client, units []Unit) ([]Unit, error) {
	self, ok, err := selfUnit(ctx, eng)
	if err != nil || !ok {
		return units, err
	}
	out := units[:0:0]
	for _, u := range units {
		if u != self {
			out = append(out, u)
		}
	}
	return out, nil
}

// refuseSelf refuses a unit named explicitly that is lifeboat's own, or
// its own container named alone.
func refuseSelf(ctx context.Context, eng *engine.Client, u Unit) error {
	ct, ok, err := eng.Self(ctx)
	if err != nil || !ok {
		return err
	}
	self, _, _ := selfUnit(ctx, eng)
	own := u == self || u.Kind == "container" && (u.Name == ct.Name || len(u.Name) >= 12 && strings.HasPrefix(ct.ID, u.Name))
	if !own {
		return nil
	}
	return fmt.Errorf("%s holds lifeboat's own container %s: lifeboat never freezes itself; leave it out, or back it up with a lifeboat running outside it", u, ct.Name)
}

// visible fails when path, checked by check (the engine's CheckHostPath), which the engine reports on its host, is not
// the host's file where lifeboat runs: a lifeboat in a container sees only
// what is mounted into it, and must see it at the host's path. An empty
// path (no writable layer) is fine.
func visible(check func(string) error, what, path string) error {
	if path == "" || check == nil {
		return nil
	}
	if err := check(path); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		return nil // readable, or an error the read reports with its cause
	}
	return fmt.Errorf("%s: %s does not exist where lifeboat runs: if lifeboat runs in a container, mount it at the same path (-v %s:%s)", what, path, path, path)
}

package backup

import (
	"context"
	"fmt"
	"slices"

	"github.com/lifeboat-backup/lifeboat/internal/engine"
)

// heldStill says which planned containers a pause of those planned
// "running" does not hold still: one paused by someone else (who may thaw
// it at any moment), restarting, or found in another state than planned
// (started since). A container that is gone writes nothing.
func heldStill(planned []engine.Container, now []engine.Container) []string {
	state := make(map[string]string, len(now))
	for _, c := range now {
		state[c.ID] = c.State
	}
	var out []string
	for _, p := range planned {
		cur, ok := state[p.ID]
		switch {
		case !ok, p.State == "running":
			// Ours to pause; a failed pause fails the backup.
			continue
		case p.State == "paused", p.State == "restarting", cur != p.State:
			out = append(out, fmt.Sprintf("%s (%s, now %s)", p.Name, p.State, cur))
		}
	}
	slices.Sort(out)
	return out
}

// checkStill relabels the point when the pause does not hold every
// container of the unit still (see heldStill): its files are then no more
// than read live, and the point says "none" (or "dump"), not "pause". It
// is called before the freeze and after the frozen pass; an engine that
// cannot tell counts as not still.
func (c *capture) checkStill(ctx context.Context) {
	if c.p.decision.files != ModePause {
		return
	}
	cs, err := c.eng.Containers(ctx)
	var moving []string
	if err != nil {
		moving = []string{"states unknown: " + err.Error()}
	} else {
		moving = heldStill(c.p.containers, cs)
	}
	if len(moving) == 0 {
		return
	}
	c.p.decision.files = ModeNone
	c.p.mode = c.p.decision.String()
	c.opts.Log.Warn("restore point not crash-consistent: containers of the unit not frozen by this backup",
		"unit", c.p.unit.String(), "containers", moving, "consistency", c.p.mode)
}

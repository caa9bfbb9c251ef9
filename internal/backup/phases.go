package backup

import (
	"sync"
	"time"
)

// phases add up how long each phase of a backup job took, for the point's
// record: the job's duration alone does not say whether the freeze, a dump
// or the upload made a backup slow.
type phases struct {
	mu sync.Mutex
	d  map[string]time.Duration
}

func newPhases() *phases { return &phases{d: map[string]time.Duration{}} }

// add counts the time since start under name. Phases that repeat (two
// dumps, two image archives) add up.
func (p *phases) add(name string, start time.Time) { p.addDuration(name, time.Since(start)) }

// addDuration counts d under name.
func (p *phases) addDuration(name string, d time.Duration) {
	p.mu.Lock()
	p.d[name] += d
	p.mu.Unlock()
}

// ms are the phases in milliseconds; nil when none ran.
func (p *phases) ms() map[string]int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.d) == 0 {
		return nil
	}
	out := make(map[string]int64, len(p.d))
	for k, v := range p.d {
		out[k] = v.Milliseconds()
	}
	return out
}

// passName names the pass about to run by what it reads: the live unit,
// the frozen (paused or stopped) unit, or the file-system snapshots.
func (c *capture) passName() string {
	switch {
	case c.at != nil:
		return "snapshot_pass"
	case c.frozen:
		return "frozen_pass"
	default:
		return "live_pass"
	}
}

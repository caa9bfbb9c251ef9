package daemon

import (
	"context"
	"os"
	"time"

	"github.com/lifeboat-backup/lifeboat/internal/ops"
	"github.com/lifeboat-backup/lifeboat/internal/scheduler"
)

// stateKind is the upkeep job that backs up lifeboat's own state (unit
// lifeboat/state): daily, and at start when the config file changed since
// the last one (serve reads it only at start), so the offsite copy's
// next run carries it and `lifeboat recover` brings the appliance back.
// A first start waits a day like the other upkeep jobs: `lifeboat backup
// --state` makes one at once.
const (
	stateKind     = "state"
	stateSchedule = "@daily"
)

// runState backs up the state.
func (d *Daemon) runState(ctx context.Context, r *scheduler.Run, trigger string) error {
	res, err := ops.BackupState(ctx, &d.env, ops.StateBackupRequest{ConfigPath: d.opts.ConfigPath, Trigger: trigger}, observer(r, ops.StateUnit))
	if err == nil {
		r.Report(res.ID, 0, 0, res)
	}
	return d.upkeepDone(stateKind, 0, err)
}

// stateAtStart makes the state job due now when the config file is newer
// than its last success. Called with the upkeep seeded, before the loop
// runs.
func (d *Daemon) stateAtStart(now time.Time) {
	k := d.upkeep[stateKind]
	if k == nil {
		return
	}
	if k.lastSuccess.IsZero() || d.opts.ConfigPath == "" {
		return
	}
	if st, err := os.Stat(d.opts.ConfigPath); err == nil && st.ModTime().After(k.lastSuccess) {
		k.next = now
	}
}

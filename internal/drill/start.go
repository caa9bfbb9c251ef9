package drill

import (
	"context"
	"fmt"
	"time"

	"github.com/lifeboat-backup/lifeboat/internal/restore"
)

// logLines is how much of a failed container's log a check keeps.
const logLines = 20

// startAll starts the containers that ran when the point was taken, in
// dependency order: each one with a healthcheck must be healthy before
// the next starts, as Compose's service_healthy; then every one must
// keep running for the settle time. Each gets a check "start".
func (d *drill) startAll(ctx context.Context) {
	d.up = map[string]bool{}
	since := map[string]time.Time{}
	var started []restore.SandboxContainer
	for _, c := range d.sb.Containers {
		if !c.Running {
			continue
		}
		t0 := time.Now()
		since[c.Name] = t0
		if err := d.eng.Start(ctx, c.Sandboxed); err != nil {
			d.add(Check{Name: "start", Container: c.Name, Output: d.withLogs(ctx, c, err)}, t0)
			continue
		}
		ct, err := d.eng.Container(ctx, c.ID)
		if err != nil {
			d.add(Check{Name: "start", Container: c.Name, Output: err.Error()}, t0)
			continue
		}
		if ct.Health == "" {
			started = append(started, c)
			continue
		}
		if err := d.eng.WaitHealthy(ctx, c.Sandboxed, d.opts.StartTimeout); err != nil {
			d.add(Check{Name: "start", Container: c.Name, Output: d.withLogs(ctx, c, err)}, t0)
			continue
		}
		d.up[c.Name] = true
		d.add(Check{Name: "start", Container: c.Name, Passed: true, Output: "healthy"}, t0)
	}
	d.settle(ctx, started, since)
}

// settle watches the containers without a healthcheck for the settle
// time: one that stops meanwhile fails.
func (d *drill) settle(ctx context.Context, cs []restore.SandboxContainer, since map[string]time.Time) {
	if len(cs) == 0 {
		return
	}
	deadline := time.Now().Add(d.opts.Settle)
	failed := map[string]bool{}
	for {
		for _, c := range cs {
			if failed[c.Name] {
				continue
			}
			ct, err := d.eng.Container(ctx, c.ID)
			if err == nil && ct.State != "running" {
				err = fmt.Errorf("container %s is %s within %v of its start", c.Sandboxed, ct.State, d.opts.Settle)
			}
			if err != nil {
				failed[c.Name] = true
				d.add(Check{Name: "start", Container: c.Name, Output: d.withLogs(ctx, c, err)}, since[c.Name])
			}
		}
		if !time.Now().Before(deadline) || ctx.Err() != nil {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(min(250*time.Millisecond, time.Until(deadline))):
		}
	}
	for _, c := range cs {
		if !failed[c.Name] && ctx.Err() == nil {
			d.up[c.Name] = true
			d.add(Check{Name: "start", Container: c.Name, Passed: true, Output: fmt.Sprintf("running for %v (no healthcheck)", d.opts.Settle)}, since[c.Name])
		}
	}
}

// withLogs is err followed by the last lines the container wrote.
func (d *drill) withLogs(ctx context.Context, c restore.SandboxContainer, err error) string {
	logs, lerr := d.eng.LogTail(context.WithoutCancel(ctx), c.ID, logLines)
	if lerr != nil || logs == "" {
		return err.Error()
	}
	return err.Error() + "\nlast log lines:\n" + logs
}

// waitFor runs try until it succeeds, ctx ends or timeout passes, and
// returns its last error.
func waitFor(ctx context.Context, timeout time.Duration, try func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	poll := 100 * time.Millisecond
	for {
		err := try(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (still failing after %v)", err, timeout)
		case <-time.After(poll):
		}
		poll = min(poll*2, time.Second)
	}
}

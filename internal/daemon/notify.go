package daemon

import (
	"context"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/lifeboat-backup/lifeboat/internal/backup"
	"github.com/lifeboat-backup/lifeboat/internal/config"
	"github.com/lifeboat-backup/lifeboat/internal/notify"
	"github.com/lifeboat-backup/lifeboat/internal/scheduler"
)

// notifyGrace is how long a stopping daemon waits for notifications
// still queued: a few seconds, never the shutdown of the host.
const notifyGrace = 5 * time.Second

// newNotifier makes the daemon's sender of events and pings from the
// config file (Load checked it).
func newNotifier(cfg *config.Config, d *Daemon) (*notify.Notifier, error) {
	n := &notify.Notifier{Log: d.log,
		Webhook: &notify.Webhook{URL: cfg.Webhook.URL, Secret: cfg.Webhook.Secret, Events: cfg.Webhook.Events, Log: d.log}}
	if len(cfg.Notify.Targets) > 0 {
		r, err := notify.NewRouter(cfg.NotifyTargets(), cfg.Notify.Default)
		if err != nil {
			return nil, err
		}
		n.Router = r
	}
	return n, nil
}

// onChange decides which event an ended job is: a failure of any kind,
// a backup that made a point, a drill that passed. The notifier sends it
// in the background.
func (d *Daemon) onChange(j scheduler.Job) {
	var ev notify.Event
	switch {
	case j.State == scheduler.Failed:
		ev.Event = notify.JobFailed
	case j.State == scheduler.Succeeded && j.Kind == "backup" && j.Point != "":
		ev.Event = notify.BackupSucceeded
	case j.State == scheduler.Succeeded && j.Kind == "drill":
		ev.Event = notify.DrillPassed
	default:
		return
	}
	ev.Host, _ = os.Hostname()
	ev.Job, ev.Kind, ev.Unit, ev.Error, ev.Point, ev.Started = j.ID, j.Kind, j.Unit, j.Error, j.Point, j.Queued
	if j.Started != nil {
		ev.Started = *j.Started
	}
	if j.Ended != nil {
		ev.Ended = *j.Ended
	}
	d.note.Notify(ev, d.routesOf(j.Unit))
}

// announceSuspect tells that a backup looks like damage: the job
// succeeded, so no failure event would say it.
func (d *Daemon) announceSuspect(r *scheduler.Run, res backup.Result) {
	host, _ := os.Hostname()
	d.note.Notify(notify.Event{Event: notify.PointSuspect, Host: host, Job: r.ID(), Kind: "backup", Unit: res.Unit, Point: res.ID,
		Error: strings.Join(res.Anomalies, "; "), Started: res.Time, Ended: time.Now()}, d.routesOf(res.Unit))
}

// routesOf is a unit's lifeboat.notify targets; nil (the config's
// default routes) for a unit without the label, or a repository-wide job.
func (d *Daemon) routesOf(unit string) []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if u := d.units[unit]; u != nil {
		return u.info.Policy.Notify
	}
	return nil
}

// pingOf is a unit's dead-man ping URL, "" for none.
func (d *Daemon) pingOf(unit string) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if u := d.units[unit]; u != nil {
		return u.info.Policy.Ping
	}
	return ""
}

// warnUnknownRoutes says, once per change of the label, that a unit names
// notify targets the config file lacks: they would silently get nothing.
func (d *Daemon) warnUnknownRoutes(unit string, before, after []string) {
	if slices.Equal(before, after) {
		return
	}
	for _, name := range after {
		if name != notify.None && (d.note.Router == nil || !d.note.Router.Has(name)) {
			d.log.Warn("lifeboat.notify names a target the config file's notify.targets lacks: its events go nowhere", "unit", unit, "target", name)
		}
	}
}

// closeNotifier waits a little for what is still to be sent.
func (d *Daemon) closeNotifier() {
	ctx, cancel := context.WithTimeout(context.Background(), notifyGrace)
	defer cancel()
	d.note.Close(ctx)
}

package backup

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/lifeboat-backup/lifeboat/internal/consistency"
	"github.com/lifeboat-backup/lifeboat/internal/engine"
	"github.com/lifeboat-backup/lifeboat/internal/failpoint"
	"github.com/lifeboat-backup/lifeboat/internal/journal"
	"github.com/lifeboat-backup/lifeboat/internal/priority"
)

// Safety work — thawing, starting — must finish even when the job is
// cancelled, within these limits (a thaw also waits out stops in progress).
const (
	thawTimeout  = 2 * time.Minute
	startTimeout = 2 * time.Minute
)

// stop stops one container, having recorded in the journal first when and
// with what grace period it asked: the engine goes on stopping it even if
// this call is cancelled or lifeboat dies, and whoever resumes it must
// wait that out, or its start is a no-op on a container about to exit.
func (c *capture) stop(ctx context.Context, e *journal.Container, record func() error) error {
	grace, err := c.eng.StopGrace(ctx, e.ID)
	if err != nil {
		return err
	}
	e.StopSent, e.StopGraceMS = time.Now(), grace.Milliseconds()
	if err := record(); err != nil {
		return fmt.Errorf("record stop of %s in the freeze journal: %w", e.Name, err)
	}
	failpoint.Mark("stop-sent")
	return c.eng.Stop(ctx, e.ID, engine.ContainerStopTimeout)
}

// quiesced records entries in the freeze journal, freezes, runs capture,
// and always thaws — also on error or cancellation, with a context of its
// own. Should lifeboat die in between, the next command replays the
// journal. freeze may change entries and then call record to write them
// to the journal before it acts.
func (c *capture) quiesced(ctx context.Context, entries []journal.Container, freeze func(record func() error) error, capture func(context.Context) error) (err error) {
	if len(entries) == 0 {
		return capture(ctx)
	}
	// Frozen, every thread at normal priority: the downtime is how long
	// the capture takes, whatever else the host runs.
	urgent := priority.Urgent()
	defer urgent()
	// Redis's files are made current right before the freeze, after any
	// live pass, so that the frozen copy holds what its dump holds.
	if err := consistency.SaveFiles(ctx, c.eng, c.p.containers, c.opts.Log); err != nil {
		return err
	}
	j, err := journal.Open(c.opts.JournalDir, c.opts.Log)
	if err != nil {
		return err
	}
	start := time.Now()
	freezeStart := start // until freeze is called: a journal that fails freezes nothing
	ent := journal.Entry{Unit: c.p.unit.String(), EngineHost: c.eng.Host(), PID: os.Getpid(), Started: start, Containers: entries}
	h, err := j.Begin(ctx, ent)
	if err != nil {
		return fmt.Errorf("record freeze journal: %w", err)
	}
	failpoint.Hit("journalled")
	defer func() {
		tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), thawTimeout+untilStopped(entries))
		defer cancel()
		c.frozen = false
		thawStart := time.Now()
		defer c.phases.add("thaw", thawStart)
		resumed, terr := c.thaw(tctx, entries, start, func(left []journal.Container) {
			// What is resumed leaves the entry: a replay after a kill in
			// the middle of the thaw neither waits for its stop again nor
			// starts it should it be stopped on purpose meanwhile.
			ent.Containers = left
			if err := h.Update(ent); err != nil {
				c.opts.Log.Warn("freeze journal not narrowed", "unit", c.p.unit.String(), "err", err)
			}
		})
		// The downtime runs from the first freeze asked to the last
		// container confirmed resumed: the journal's writes on either side
		// do not hold the unit.
		if resumed.IsZero() {
			resumed = time.Now()
		}
		c.downtime = resumed.Sub(freezeStart)
		if terr == nil {
			failpoint.Hit("thawed")
			terr = h.Done()
		} else {
			// The entry stays, locked until this process ends; the next
			// lifeboat command replays it.
			terr = fmt.Errorf("%w (kept in the freeze journal: the next lifeboat command retries)", terr)
		}
		err = errors.Join(err, terr)
	}()
	freezeStart = time.Now()
	if err := freeze(func() error { return h.Update(ent) }); err != nil {
		return fmt.Errorf("quiesce %s: %w", c.p.unit, err)
	}
	c.phases.add("freeze", freezeStart)
	c.frozen = true
	failpoint.Hit("frozen")
	failpoint.Mark("capturing")
	if err := capture(ctx); err != nil {
		return err
	}
	failpoint.Hit("captured")
	return nil
}

// untilStopped is how long the thaw may have to wait for stops still in
// progress, beyond its own timeout.
func untilStopped(entries []journal.Container) time.Duration {
	var d time.Duration
	for _, e := range entries {
		d = max(d, time.Until(e.StopDeadline()))
	}
	return d
}

// thaw resumes every container in entries and returns nil only once the
// engine confirmed each one: paused ones unpaused at once, stopped ones
// started one by one in dependency order after any stop still in progress
// ended, and waited for until healthy where a healthcheck exists. After
// each step it calls narrow with the containers not yet resumed. resumed
// is when the last container was confirmed resumed; zero on error.
func (c *capture) thaw(ctx context.Context, entries []journal.Container, frozenAt time.Time, narrow func([]journal.Container)) (resumed time.Time, _ error) {
	var paused, stopped []journal.Container
	for _, e := range entries {
		if e.Action == journal.Paused {
			paused = append(paused, e)
		} else {
			stopped = append(stopped, e)
		}
	}
	errs := make([]error, len(paused))
	var wg sync.WaitGroup
	for i, e := range paused {
		wg.Go(func() { errs[i] = c.eng.Thaw(ctx, e.ID, frozenAt) })
	}
	wg.Wait()
	var left []journal.Container
	for i, e := range paused {
		if errs[i] != nil {
			left = append(left, e)
		} else {
			resumed = time.Now()
		}
	}
	if len(paused) > 0 {
		narrow(append(slices.Clone(left), stopped...))
	}
	for i, e := range stopped {
		if i > 0 {
			failpoint.Hit("thaw-between")
		}
		err := c.eng.Resume(ctx, e.ID, e.StopDeadline())
		if err == nil {
			err = c.eng.WaitHealthy(ctx, e.ID, startTimeout)
		}
		if err != nil {
			// Started perhaps, but not confirmed: the next replay looks.
			errs = append(errs, err)
			left = append(left, e)
		} else {
			resumed = time.Now()
		}
		narrow(append(slices.Clone(left), stopped[i+1:]...))
	}
	if err := errors.Join(errs...); err != nil {
		return time.Time{}, fmt.Errorf("resume %s: %w", c.p.unit, err)
	}
	c.opts.Log.Info("unit resumed", "unit", c.p.unit.String(), "containers", len(entries))
	return resumed, nil
}

// each runs f for every entry at once and joins the errors.
func each(entries []journal.Container, f func(journal.Container) error) error {
	errs := make([]error, len(entries))
	var wg sync.WaitGroup
	for i, e := range entries {
		wg.Go(func() { errs[i] = f(e) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

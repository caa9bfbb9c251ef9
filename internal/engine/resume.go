package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/moby/moby/client"
)

// DefaultStopGrace is how long the engine waits after a container's stop
// signal before it kills it, when the container sets no StopTimeout.
const DefaultStopGrace = 10 * time.Second

// StopGrace is how long Stop with ContainerStopTimeout may take for the
// container: its own StopTimeout, else DefaultStopGrace.
func (c *Client) StopGrace(ctx context.Context, id string) (time.Duration, error) {
	res, err := c.api.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		return 0, fmt.Errorf("inspect container %q: %w", id, notFound(id, err))
	}
	info := res.Container
	if info.Config != nil && info.Config.StopTimeout != nil {
		if s := *info.Config.StopTimeout; s >= 0 {
			return time.Duration(s) * time.Second, nil
		}
	}
	return DefaultStopGrace, nil
}

// Resume brings back a container lifeboat stopped, and returns nil only
// once inspect shows it running (or it is gone). A stop may still be under
// way in the engine — the client's call was cancelled, or lifeboat died,
// while the engine waited out the grace period — and a Start then is a
// no-op on a container that goes down moments later. So until
// stopDeadline (zero: no stop was sent) Resume first waits for the
// container to leave the running state.
func (c *Client) Resume(ctx context.Context, id string, stopDeadline time.Time) error {
	st, err := c.waitNotRunning(ctx, id, stopDeadline)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("resume container %q: %w", id, err)
	}
	if st.Paused {
		// Stop thaws before it signals; killed in between, the
		// container is still paused from an earlier freeze.
		if err := c.Unpause(ctx, id); err != nil {
			return fmt.Errorf("resume container %q: %w", id, err)
		}
	}
	if err := c.Start(ctx, id); err != nil {
		return fmt.Errorf("resume container %q: %w", id, err)
	}
	return c.confirmRunning(ctx, id)
}

// Thaw brings back a container lifeboat paused at frozenAt: it unpauses
// it and confirms it is no longer paused. A container that stopped after
// frozenAt was stopped from outside while frozen — the engine restarted
// and killed it — and is started again, as it ran before the freeze. Nil
// when the container is gone.
func (c *Client) Thaw(ctx context.Context, id string, frozenAt time.Time) error {
	// The state that confirmed the unpause is also the one looked at
	// here: no second inspect while the unit waits.
	st, err := c.unpause(ctx, id)
	if err != nil || st == nil {
		return err
	}
	if st.Running || st.Restarting {
		return nil
	}
	finished, perr := time.Parse(time.RFC3339Nano, st.FinishedAt)
	if perr != nil || finished.Before(frozenAt) {
		// It had stopped before lifeboat froze it; leave it so.
		return nil
	}
	c.log.Info("container stopped while frozen, starting it again", "container", id, "finished_at", st.FinishedAt)
	if err := c.Start(ctx, id); err != nil {
		return fmt.Errorf("thaw container %q: %w", id, err)
	}
	return c.confirmRunning(ctx, id)
}

// waitNotRunning polls until the container is not running, or until the
// deadline passed (a stop that was recorded but never sent, or one the
// engine gave up on), and returns its state then.
func (c *Client) waitNotRunning(ctx context.Context, id string, deadline time.Time) (st stateView, err error) {
	logged := false
	for {
		s, err := c.state(ctx, id)
		if err != nil {
			return stateView{}, err
		}
		v := stateView{Running: s.Running, Paused: s.Paused}
		if !s.Running || s.Paused || !time.Now().Before(deadline) {
			return v, nil
		}
		if !logged {
			c.log.Info("waiting for a stop in progress", "container", id, "deadline", deadline)
			logged = true
		}
		if err := sleep(ctx, min(200*time.Millisecond, time.Until(deadline))); err != nil {
			return stateView{}, err
		}
	}
}

type stateView struct{ Running, Paused bool }

// confirmRunning checks from inspect that a started container runs, not
// paused; a restart in progress is given a moment to settle.
func (c *Client) confirmRunning(ctx context.Context, id string) error {
	for attempt := 1; ; attempt++ {
		st, err := c.state(ctx, id)
		switch {
		case errors.Is(err, ErrNotFound):
			return nil
		case err != nil:
			return fmt.Errorf("confirm container %q runs: %w", id, err)
		case st.Running && !st.Paused && !st.Restarting:
			return nil
		case !st.Restarting || attempt == 20:
			return fmt.Errorf("confirm container %q runs: it is %s (exit code %d)%s", id, st.Status, st.ExitCode, errorSuffix(st.Error))
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return fmt.Errorf("confirm container %q runs: %w", id, err)
		}
	}
}

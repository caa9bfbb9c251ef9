package engine

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// The calls below are what the freeze journal replays after a crash, so
// the undoing ones (Unpause, Start, RemoveContainer) succeed when there is
// nothing left to undo. Engine 20.10 answers "not paused" with a plain
// 500, so tolerance is decided from the container's state, not from the
// error's class.

// state inspects a container's state; ErrNotFound when it is gone.
func (c *Client) state(ctx context.Context, id string) (*container.State, error) {
	res, err := c.api.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return nil, fmt.Errorf("container %q %w", id, ErrNotFound)
		}
		return nil, fmt.Errorf("inspect container %q: %w", id, err)
	}
	if res.Container.State == nil {
		return nil, fmt.Errorf("inspect container %q: the engine returned no state", id)
	}
	return res.Container.State, nil
}

func notFound(id string, err error) error {
	if cerrdefs.IsNotFound(err) {
		return fmt.Errorf("container %q %w", id, ErrNotFound)
	}
	return err
}

// Pause freezes a running container's processes (cgroup freezer). A
// container that is already paused is left so, without error.
func (c *Client) Pause(ctx context.Context, id string) error {
	var err error
	for attempt := 1; ; attempt++ {
		_, err = c.api.ContainerPause(ctx, id, client.ContainerPauseOptions{})
		if err == nil {
			return nil
		}
		st, serr := c.state(ctx, id)
		if serr == nil && st.Paused {
			return nil
		}
		// runc gives up freezing a cgroup whose tasks keep forking or
		// sit in uninterruptible I/O ("unable to freeze"), and leaves it
		// thawed: on a busy host a second try a moment later holds.
		if serr != nil || !st.Running || attempt == pauseAttempts || !strings.Contains(err.Error(), "unable to freeze") {
			break
		}
		c.log.Warn("the engine could not freeze the container: trying again", "container", id, "attempt", attempt, "err", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("pause container %q: %w", id, errors.Join(err, ctx.Err()))
		case <-time.After(time.Duration(attempt) * 200 * time.Millisecond):
		}
	}
	return fmt.Errorf("pause container %q: %w", id, notFound(id, err))
}

// pauseAttempts is how often Pause asks an engine that could not freeze.
const pauseAttempts = 3

// Unpause thaws a paused container; nil when it is not paused or gone.
// It returns only once inspect shows the container not paused: a pause
// whose call was cancelled may still land in the engine after the unpause,
// so a container found paused again is unpaused again.
func (c *Client) Unpause(ctx context.Context, id string) error {
	_, err := c.unpause(ctx, id)
	return err
}

// unpause is Unpause that also returns the state that confirmed it; nil
// when the container is gone.
func (c *Client) unpause(ctx context.Context, id string) (*container.State, error) {
	for attempt := 1; ; attempt++ {
		err := c.unpauseOnce(ctx, id)
		st, serr := c.state(ctx, id)
		switch {
		case errors.Is(serr, ErrNotFound):
			return nil, nil
		case serr != nil:
			return nil, fmt.Errorf("unpause container %q: not confirmed: %w", id, errors.Join(err, serr))
		case !st.Paused:
			return st, nil
		case attempt == unpauseAttempts:
			if err == nil {
				err = errors.New("the engine still reports it paused")
			}
			return nil, fmt.Errorf("unpause container %q: %w", id, err)
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return nil, fmt.Errorf("unpause container %q: %w", id, err)
		}
	}
}

const unpauseAttempts = 5

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// ContainerStopTimeout makes Stop wait as long as the container asks for
// (its stop_grace_period / --stop-timeout, else the engine's 10 s).
const ContainerStopTimeout time.Duration = -2

// Stop stops a container: its stop signal, then SIGKILL after timeout
// (rounded up to whole seconds; negative waits forever; ContainerStopTimeout
// asks for the container's own). A paused container
// is thawed first, else it could not act on the signal and would always
// be killed. Stopping a stopped container is not an error; a missing one
// is (ErrNotFound).
func (c *Client) Stop(ctx context.Context, id string, timeout time.Duration) error {
	st, err := c.state(ctx, id)
	if err != nil {
		return fmt.Errorf("stop container: %w", err)
	}
	if st.Paused {
		if err := c.Unpause(ctx, id); err != nil {
			return fmt.Errorf("stop container %q: %w", id, err)
		}
	}
	var opts client.ContainerStopOptions // nil Timeout: the container's own, as docker stop
	if timeout != ContainerStopTimeout {
		secs := -1
		if timeout >= 0 {
			secs = int(math.Ceil(timeout.Seconds()))
		}
		opts.Timeout = &secs
	}
	if _, err := c.api.ContainerStop(ctx, id, opts); err != nil {
		return fmt.Errorf("stop container %q: %w", id, notFound(id, err))
	}
	return nil
}

// Start starts a container; nil when it is already running or gone. A
// paused container is an error: it needs Unpause, not Start.
func (c *Client) Start(ctx context.Context, id string) error {
	_, err := c.api.ContainerStart(ctx, id, client.ContainerStartOptions{})
	if err == nil || cerrdefs.IsNotFound(err) {
		return nil
	}
	st, serr := c.state(ctx, id)
	if errors.Is(serr, ErrNotFound) || (serr == nil && st.Running && !st.Paused) {
		return nil
	}
	return fmt.Errorf("start container %q: %w", id, err)
}

// WaitHealthy waits until a container runs and, if it has a healthcheck,
// reports healthy. It fails at once when the container exits, is paused,
// is gone or turns unhealthy, and after timeout otherwise.
func (c *Client) WaitHealthy(ctx context.Context, id string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	poll := 50 * time.Millisecond
	last := "unknown"
	for {
		st, err := c.state(ctx, id)
		switch {
		case err != nil && ctx.Err() == nil:
			return fmt.Errorf("wait for container %q: %w", id, err)
		case err != nil:
			// The deadline hit the inspect call itself.
		case st.Paused:
			return fmt.Errorf("wait for container %q: it is paused", id)
		case st.Restarting:
			last = "restarting"
		case !st.Running:
			return fmt.Errorf("wait for container %q: it is %s (exit code %d)%s", id, st.Status, st.ExitCode, errorSuffix(st.Error))
		case noHealthcheck(st.Health) || st.Health.Status == container.Healthy:
			return nil
		case st.Health.Status == container.Unhealthy:
			return fmt.Errorf("wait for container %q: it is unhealthy%s", id, lastProbe(st.Health))
		default:
			last = string(st.Health.Status)
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("wait for container %q: still %s after %v", id, last, timeout)
			}
			return fmt.Errorf("wait for container %q: %w", id, ctx.Err())
		case <-time.After(poll):
		}
		poll = min(poll*2, 500*time.Millisecond)
	}
}

func errorSuffix(msg string) string {
	if msg == "" {
		return ""
	}
	return ": " + msg
}

func lastProbe(h *container.Health) string {
	if len(h.Log) == 0 || h.Log[len(h.Log)-1] == nil {
		return ""
	}
	r := h.Log[len(h.Log)-1]
	return fmt.Sprintf(" (last probe exit %d: %.200s)", r.ExitCode, r.Output)
}

// RenameContainer renames a container; ErrExists when the name is taken.
func (c *Client) RenameContainer(ctx context.Context, id, newName string) error {
	if _, err := c.api.ContainerRename(ctx, id, client.ContainerRenameOptions{NewName: newName}); err != nil {
		if cerrdefs.IsConflict(err) {
			return fmt.Errorf("rename container %q to %q: name %w", id, newName, ErrExists)
		}
		return fmt.Errorf("rename container %q to %q: %w", id, newName, notFound(id, err))
	}
	return nil
}

// RemoveWithVolumes removes a container, even running, with the anonymous
// volumes the engine made for it (those mounted by name stay, as docker
// rm -v does). Nil when it is already gone.
func (c *Client) RemoveWithVolumes(ctx context.Context, id string) error {
	if _, err := c.api.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("remove container %q: %w", id, err)
	}
	return nil
}

// RemoveContainer removes a container (force: even running); its anonymous
// volumes stay. Nil when it is already gone.
func (c *Client) RemoveContainer(ctx context.Context, id string, force bool) error {
	if _, err := c.api.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: force}); err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("remove container %q: %w", id, err)
	}
	return nil
}

package engine

import (
	"context"
	"time"

	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
)

// Changes calls changed whenever the set of units may have changed: a
// container or volume created, removed or renamed. It follows the engine's
// event stream until ctx ends, reconnecting when the engine restarts (and
// calling changed then, since events were missed meanwhile).
func (c *Client) Changes(ctx context.Context, changed func()) {
	f := filters.NewArgs(
		filters.Arg("type", string(events.ContainerEventType)),
		filters.Arg("type", string(events.VolumeEventType)),
		filters.Arg("event", string(events.ActionCreate)),
		filters.Arg("event", string(events.ActionDestroy)),
		filters.Arg("event", string(events.ActionRename)),
	)
	backoff := time.Second
	for ctx.Err() == nil {
		msgs, errs := c.api.Events(ctx, events.ListOptions{Filters: f})
		connected := time.Now()
	stream:
		for {
			select {
			case <-ctx.Done():
				return
			case <-msgs:
				changed()
			case err := <-errs:
				c.log.Debug("engine event stream ended", "err", err)
				break stream
			}
		}
		if time.Since(connected) > time.Minute {
			backoff = time.Second
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
		changed()
	}
}

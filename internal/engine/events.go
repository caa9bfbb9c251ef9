package engine

import (
	"context"
	"time"

	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client"
)

// Changes calls changed whenever the set of units may have changed: a
// container or volume created, removed or renamed. It follows the engine's
// event stream until ctx ends, reconnecting when the engine restarts (and
// calling changed then, since events were missed meanwhile).
func (c *Client) Changes(ctx context.Context, changed func()) {
	f := make(client.Filters).
		Add("type", string(events.ContainerEventType), string(events.VolumeEventType)).
		Add("event", string(events.ActionCreate), string(events.ActionDestroy), string(events.ActionRename))
	c.podmanEvents(f)
	backoff := time.Second
	for ctx.Err() == nil {
		res := c.api.Events(ctx, client.EventsListOptions{Filters: f})
		msgs, errs := res.Messages, res.Err
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

package backup

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/lifeboat-backup/lifeboat/internal/consistency"
	"github.com/lifeboat-backup/lifeboat/internal/engine"
)

// hooks runs hooks one after another. A failing pre hook stops the rest
// and the backup; every post hook runs whatever the others did.
func (c *capture) hooks(ctx context.Context, hooks []consistency.Hook) error {
	var errs []error
	for _, h := range hooks {
		if err := c.hook(ctx, h); err != nil {
			if h.Phase == "pre" {
				return err
			}
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (c *capture) hook(ctx context.Context, h consistency.Hook) error {
	log := c.opts.Log.With("unit", c.p.unit.String(), "container", h.Container, "hook", h.Label)
	for _, ct := range c.p.containers {
		if ct.ID == h.ContainerID && ct.State != "running" {
			log.Warn("hook not run: the container is not running", "state", ct.State)
			return nil
		}
	}
	hctx, cancel := context.WithTimeoutCause(ctx, h.Timeout, fmt.Errorf("timed out after %s (%s)", h.Timeout, consistency.LabelHookTimeout))
	defer cancel()
	var out tailBuffer
	start := time.Now()
	res, err := c.eng.Exec(hctx, h.ContainerID, engine.ExecSpec{Cmd: []string{"sh", "-c", h.Cmd}}, nil, &out, &out)
	// The command itself is not logged: it is the user's, and may carry a
	// secret; the label names it.
	log.Info(h.Phase+" hook ran", "exit_code", res.ExitCode, "duration_ms", time.Since(start).Milliseconds(), "output", out.String())
	switch {
	case err != nil:
		return fmt.Errorf("%s hook (%s): %w; output: %s", h.Phase, h.Label, err, out.Tail())
	case res.ExitCode != 0:
		return fmt.Errorf("%s hook (%s) exited %d: %s", h.Phase, h.Label, res.ExitCode, out.Tail())
	}
	return nil
}

// tailBuffer keeps the last 16 KiB of a hook's output.
type tailBuffer struct{ b []byte }

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > 16<<10 {
		t.b = append(t.b[:0], t.b[len(t.b)-16<<10:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return string(t.b) }

// Tail is the last lines, for an error message.
func (t *tailBuffer) Tail() string {
	s := strings.TrimSpace(string(t.b))
	if len(s) > 500 {
		s = "…" + s[len(s)-500:]
	}
	if s == "" {
		return "(no output)"
	}
	return s
}

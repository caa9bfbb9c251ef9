package drill

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/lifeboat-backup/lifeboat/internal/consistency"
	"github.com/lifeboat-backup/lifeboat/internal/engine"
	"github.com/lifeboat-backup/lifeboat/internal/layout"
	"github.com/lifeboat-backup/lifeboat/internal/restore"
)

// databases checks the restored files of every database container that
// came up with the database's own tool.
func (d *drill) databases(ctx context.Context) {
	for _, c := range d.sb.Containers {
		profile, _ := consistency.Detect(c.Image, c.Labels)
		checks := consistency.Checks(profile, c.Labels)
		if len(checks) == 0 || !c.Running || ctx.Err() != nil {
			// A database that was stopped when the point was taken is
			// not started by the drill; its dump, if any, still is checked.
			continue
		}
		if !d.up[c.Name] {
			for _, chk := range checks {
				d.add(Check{Name: chk.Name, Container: c.Name, Output: "not run: the container did not come up"}, time.Now())
			}
			continue
		}
		d.check(ctx, c, profile, checks, "")
	}
}

// check waits for the server of profile in c and runs checks there,
// their names suffixed.
func (d *drill) check(ctx context.Context, c restore.SandboxContainer, profile string, checks []consistency.Check, suffix string) {
	t0 := time.Now()
	if err := d.ready(ctx, c, profile); err != nil {
		for _, chk := range checks {
			d.add(Check{Name: chk.Name + suffix, Container: c.Name, Output: err.Error()}, t0)
		}
		return
	}
	for _, chk := range checks {
		t0 := time.Now()
		out, err := d.exec(ctx, c.ID, chk.Cmd, d.opts.CheckTimeout)
		if err != nil {
			out = err.Error() + "\n" + out
		}
		d.add(Check{Name: chk.Name + suffix, Container: c.Name, Passed: err == nil, Output: out}, t0)
	}
}

// ready waits until the server of profile in c answers.
func (d *drill) ready(ctx context.Context, c restore.SandboxContainer, profile string) error {
	cmd := consistency.Ready(profile)
	if cmd == nil {
		return nil
	}
	var out string
	err := waitFor(ctx, d.opts.StartTimeout, func(ctx context.Context) error {
		var err error
		out, err = d.exec(ctx, c.ID, cmd, 30*time.Second)
		return err
	})
	if err != nil {
		return fmt.Errorf("the %s server in %s does not answer: %w\n%s", profile, c.Sandboxed, err, out)
	}
	return nil
}

// exec runs cmd in container id and returns its output, stdout and
// stderr together; a non-zero exit is an error.
func (d *drill) exec(ctx context.Context, id string, cmd []string, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var out bytes.Buffer
	r, err := d.eng.Exec(ctx, id, engine.ExecSpec{Cmd: cmd}, nil, &out, &out)
	if err == nil && r.ExitCode != 0 {
		err = fmt.Errorf("exited %d", r.ExitCode)
	}
	return out.String(), err
}

// dumps loads each database dump of the point into a scratch server of
// the same image on the sandbox network, and checks that server too.
func (d *drill) dumps(ctx context.Context) {
	for _, dump := range d.sb.Manifest.Dumps {
		if ctx.Err() != nil {
			return
		}
		d.dump(ctx, dump)
	}
}

func (d *drill) dump(ctx context.Context, dump layout.Dump) {
	t0 := time.Now()
	name := consistency.CheckName(dump.Profile)
	fail := func(err error) { d.add(Check{Name: name, Container: dump.Container, Output: err.Error()}, t0) }
	sc, err := d.sb.Scratch(ctx, dump.Container)
	if err != nil {
		fail(err)
		return
	}
	if err := d.eng.Start(ctx, sc.ID); err != nil {
		fail(err)
		return
	}
	if err := d.eng.WaitHealthy(ctx, sc.ID, d.opts.StartTimeout); err != nil {
		fail(errors.New("scratch server: " + d.withLogs(ctx, sc, err)))
		return
	}
	if err := d.ready(ctx, sc, dump.Profile); err != nil {
		fail(err)
		return
	}
	lctx, cancel := context.WithTimeout(ctx, d.opts.CheckTimeout)
	res, err := restore.LoadDumps(lctx, d.repo, d.eng, restore.Options{Ref: d.res.Point, Container: dump.Container, Log: d.opts.Log}, sc.Sandboxed)
	cancel()
	if err != nil {
		fail(err)
		return
	}
	d.add(Check{Name: name, Container: dump.Container, Passed: true, Output: fmt.Sprintf("loaded %d files (%d bytes) into a scratch server", len(res.Files), res.Bytes)}, t0)
	d.check(ctx, sc, dump.Profile, consistency.Checks(dump.Profile, sc.Labels), " (dump)")
}

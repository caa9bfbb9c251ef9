package engine

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// loop is a PID 1 that stops at once on SIGTERM (sleep alone ignores it).
var loop = []string{"sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.1; done"}

func TestLifecycle(t *testing.T) {
	c, d := testClient(t)
	ctx := ctxT(t)
	p := names(t)
	name := p + "ct"
	removeAfter(t, d, "container", name, p+"renamed", p+"other")
	d.Docker(t, append([]string{"run", "-d", "--name", name, busybox}, loop...)...)
	d.Docker(t, "create", "--name", p+"other", busybox, "true")
	state := func() string { return d.Docker(t, "inspect", "-f", "{{.State.Status}}", name) }
	timed := func(what string, f func() error) {
		t.Helper()
		start := time.Now()
		if err := f(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		t.Logf("%s took %v", what, time.Since(start))
	}

	timed("Pause", func() error { return c.Pause(ctx, name) })
	if s := state(); s != "paused" {
		t.Fatalf("after Pause: %s", s)
	}
	timed("Pause when paused", func() error { return c.Pause(ctx, name) })
	if err := c.Start(ctx, name); err == nil || !strings.Contains(err.Error(), "unpause") {
		t.Errorf("Start of a paused container: %v, want the engine's advice to unpause", err)
	}
	timed("Unpause", func() error { return c.Unpause(ctx, name) })
	if s := state(); s != "running" {
		t.Fatalf("after Unpause: %s", s)
	}
	timed("Unpause when not paused", func() error { return c.Unpause(ctx, name) })
	timed("Start when running", func() error { return c.Start(ctx, name) })
	timed("Stop", func() error { return c.Stop(ctx, name, 10*time.Second) })
	if s := state(); s != "exited" {
		t.Fatalf("after Stop: %s", s)
	}
	timed("Stop when stopped", func() error { return c.Stop(ctx, name, 10*time.Second) })
	if err := c.Pause(ctx, name); err == nil {
		t.Error("Pause of a stopped container succeeded")
	}
	timed("Unpause when stopped", func() error { return c.Unpause(ctx, name) })
	timed("Start", func() error { return c.Start(ctx, name) })
	if s := state(); s != "running" {
		t.Fatalf("after Start: %s", s)
	}

	// A paused container is thawed before its stop signal, so it stops
	// cleanly and at once rather than being killed after the timeout.
	if err := c.Pause(ctx, name); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := c.Stop(ctx, name, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("stopping a paused container took %v: it was killed, not stopped", took)
	} else {
		t.Logf("Stop of a paused container took %v", took)
	}
	if code := d.Docker(t, "inspect", "-f", "{{.State.ExitCode}}", name); code != "0" {
		t.Errorf("exit code %s after a clean stop", code)
	}

	if err := c.RenameContainer(ctx, name, p+"other"); !errors.Is(err, ErrExists) {
		t.Errorf("rename onto a taken name: %v", err)
	}
	if err := c.RenameContainer(ctx, name, p+"renamed"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Container(ctx, p+"renamed"); err != nil {
		t.Error(err)
	}
	if err := c.RemoveContainer(ctx, p+"renamed", false); err != nil {
		t.Fatal(err)
	}

	// Gone: the undoing calls have nothing to do, the others say so.
	gone := p + "renamed"
	for what, err := range map[string]error{
		"Unpause": c.Unpause(ctx, gone), "Start": c.Start(ctx, gone), "RemoveContainer": c.RemoveContainer(ctx, gone, true),
	} {
		if err != nil {
			t.Errorf("%s of a gone container: %v", what, err)
		}
	}
	for what, err := range map[string]error{
		"Pause": c.Pause(ctx, gone), "Stop": c.Stop(ctx, gone, time.Second), "RenameContainer": c.RenameContainer(ctx, gone, p+"x"),
		"WaitHealthy": c.WaitHealthy(ctx, gone, time.Second),
	} {
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("%s of a gone container: %v, want ErrNotFound", what, err)
		}
	}
}

func TestWaitHealthy(t *testing.T) {
	c, d := testClient(t)
	ctx := ctxT(t)
	p := names(t)
	removeAfter(t, d, "container", p+"ready", p+"sick", p+"plain", p+"exits", p+"created")
	d.Docker(t, "run", "-d", "--name", p+"ready", "--health-cmd", "test -f /tmp/ok", "--health-interval", "200ms",
		"--health-retries", "1000", busybox, "sleep", "600")
	d.Docker(t, "run", "-d", "--name", p+"sick", "--health-cmd", "echo no such service; false", "--health-interval", "200ms",
		"--health-retries", "1", busybox, "sleep", "600")
	d.Docker(t, "run", "-d", "--name", p+"plain", busybox, "sleep", "600")
	d.Docker(t, "run", "-d", "--name", p+"exits", busybox, "sh", "-c", "exit 3")
	d.Docker(t, "create", "--name", p+"created", busybox, "true")

	start := time.Now()
	err := c.WaitHealthy(ctx, p+"ready", 700*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "still starting") {
		t.Errorf("health starting: %v", err)
	}
	if took := time.Since(start); took < 700*time.Millisecond || took > 5*time.Second {
		t.Errorf("timeout of 700ms took %v", took)
	}
	d.Docker(t, "exec", p+"ready", "touch", "/tmp/ok")
	start = time.Now()
	if err := c.WaitHealthy(ctx, p+"ready", 30*time.Second); err != nil {
		t.Errorf("healthy: %v", err)
	}
	t.Logf("healthy %v after the check could pass", time.Since(start))

	start = time.Now()
	err = c.WaitHealthy(ctx, p+"sick", 30*time.Second)
	if err == nil || !strings.Contains(err.Error(), "unhealthy") || !strings.Contains(err.Error(), "no such service") {
		t.Errorf("unhealthy: %v", err)
	}
	t.Logf("unhealthy reported after %v", time.Since(start))

	if err := c.WaitHealthy(ctx, p+"plain", time.Second); err != nil {
		t.Errorf("no healthcheck, running: %v", err)
	}
	d.Docker(t, "wait", p+"exits")
	if err := c.WaitHealthy(ctx, p+"exits", 30*time.Second); err == nil || !strings.Contains(err.Error(), "exit code 3") {
		t.Errorf("exited: %v", err)
	}
	if err := c.WaitHealthy(ctx, p+"created", 30*time.Second); err == nil || !strings.Contains(err.Error(), "created") {
		t.Errorf("never started: %v", err)
	}
	if err := c.Pause(ctx, p+"plain"); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitHealthy(ctx, p+"plain", 30*time.Second); err == nil || !strings.Contains(err.Error(), "paused") {
		t.Errorf("paused: %v", err)
	}
	if err := c.Unpause(ctx, p+"plain"); err != nil {
		t.Fatal(err)
	}
}

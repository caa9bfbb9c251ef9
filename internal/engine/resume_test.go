package engine

import (
	"context"
	"testing"
	"time"
)

// deaf is a PID 1 that ignores SIGTERM: its stop takes the whole grace
// period, then the engine kills it.
var deaf = []string{"sh", "-c", "trap '' TERM; while :; do sleep 0.1; done"}

// TestResumeWaitsOutStopInProgress cancels a Stop while the engine waits
// out the grace period, as SIGTERM or an API cancel does: a plain Start
// then is a no-op and the container exits moments later; Resume waits for
// the stop to end, starts it, and it is still running well after the
// grace period.
func TestResumeWaitsOutStopInProgress(t *testing.T) {
	c, d := testClient(t)
	ctx := ctxT(t)
	p := names(t)
	name := p + "slow"
	removeAfter(t, d, "container", name)
	d.Docker(t, append([]string{"run", "-d", "--name", name, "--stop-timeout", "2", busybox}, deaf...)...)
	grace, err := c.StopGrace(ctx, name)
	if err != nil || grace != 2*time.Second {
		t.Fatalf("StopGrace = %v, %v; want 2s", grace, err)
	}

	sent := time.Now()
	sctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	err = c.Stop(sctx, name, ContainerStopTimeout)
	cancel()
	if err == nil {
		t.Fatal("Stop of a container that ignores SIGTERM returned within 300ms")
	}
	if st := d.Docker(t, "inspect", "-f", "{{.State.Status}}", name); st != "running" {
		t.Fatalf("right after the cancelled stop the container is %s, want still running (stopping)", st)
	}
	if err := c.Resume(ctx, name, sent.Add(grace+10*time.Second)); err != nil {
		t.Fatalf("Resume: %v", err)
	}
	took := time.Since(sent)
	if took < grace {
		t.Errorf("Resume returned after %v, before the grace period of %v ended", took, grace)
	}
	time.Sleep(grace + time.Second)
	if st := d.Docker(t, "inspect", "-f", "{{.State.Status}}", name); st != "running" {
		t.Fatalf("after the grace period the container is %s, want running", st)
	}
	t.Logf("Resume waited %v for the stop in progress", took)

	// No stop sent (zero deadline): no wait.
	start := time.Now()
	if err := c.Resume(ctx, name, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("Resume of a running container with no stop sent took %v", took)
	}
	// Gone: nothing to resume.
	d.Docker(t, "rm", "-f", name)
	if err := c.Resume(ctx, name, time.Now().Add(time.Minute)); err != nil {
		t.Errorf("Resume of a gone container: %v", err)
	}
}

// TestThawConfirms unpauses and checks, and starts again a container that
// stopped while it was frozen (as an engine restart leaves it), but not
// one that had stopped before.
func TestThawConfirms(t *testing.T) {
	c, d := testClient(t)
	ctx := ctxT(t)
	p := names(t)
	name := p + "frozen"
	removeAfter(t, d, "container", name, p+"before")
	d.Docker(t, append([]string{"run", "-d", "--name", name, busybox}, loop...)...)
	d.Docker(t, "create", "--name", p+"before", busybox, "true")
	d.Docker(t, "start", p+"before")
	d.Docker(t, "wait", p+"before")
	state := func(n string) string { return d.Docker(t, "inspect", "-f", "{{.State.Status}}", n) }

	frozenAt := time.Now()
	d.Pause(t, name)
	if err := c.Thaw(ctx, name, frozenAt); err != nil || state(name) != "running" {
		t.Fatalf("Thaw of a paused container: %v, state %s", err, state(name))
	}
	d.Docker(t, "stop", "-t", "1", name)
	if err := c.Thaw(ctx, name, frozenAt); err != nil || state(name) != "running" {
		t.Fatalf("Thaw of a container stopped while frozen: %v, state %s", err, state(name))
	}
	if err := c.Thaw(ctx, p+"before", frozenAt); err != nil || state(p+"before") != "exited" {
		t.Fatalf("Thaw of a container that had exited before: %v, state %s", err, state(p+"before"))
	}
	if err := c.Thaw(ctx, p+"gone", frozenAt); err != nil {
		t.Errorf("Thaw of a gone container: %v", err)
	}
}

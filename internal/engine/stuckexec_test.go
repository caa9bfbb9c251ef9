package engine

import (
	"testing"
	"time"
)

// TestUnpauseEndsAProbeStuckStarting: a container whose healthcheck
// probe runs every 200 ms is paused and unpaused again and again. A probe
// the engine starts as the container freezes would hold the unpause for
// its timeout (10 s here); every unpause must return within 2 s. The
// unpauses that needed a stuck start ended are counted.
func TestUnpauseEndsAProbeStuckStarting(t *testing.T) {
	c, d := testClient(t)
	ctx := ctxT(t)
	p := names(t)
	removeAfter(t, d, "container", p+"hc")
	d.Docker(t, "run", "-d", "--name", p+"hc", "--health-cmd", "sleep 0.1", "--health-interval", "200ms",
		"--health-timeout", "10s", "--health-retries", "1000", busybox, "sleep", "600")
	// By ID, as the freeze journal gives it.
	id := d.Docker(t, "inspect", "-f", "{{.Id}}", p+"hc")
	time.Sleep(time.Second)
	const cycles = 40
	var held, slow int
	var longest time.Duration
	for i := range cycles {
		if err := c.Pause(ctx, id); err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond)
		start := time.Now()
		if err := c.Unpause(ctx, id); err != nil {
			t.Fatal(err)
		}
		took := time.Since(start)
		longest = max(longest, took)
		if took > stuckAfter {
			held++
		}
		if took > 2*time.Second {
			slow++
			t.Errorf("cycle %d: unpause took %v", i, took)
		}
		time.Sleep(time.Duration(i%4) * 100 * time.Millisecond)
	}
	t.Logf("%d of %d unpauses were held by a starting probe and freed; %d took over 2 s; the longest took %v", held, cycles, slow, longest)
}

package failpoint

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestReleaseIgnoresVariable runs Hit in a child process with the variable
// set: a release build returns at once and prints nothing, a test build
// blocks (and is killed here after printing its line).
func TestReleaseIgnoresVariable(t *testing.T) {
	if os.Getenv("LIFEBOAT_FAILPOINT_CHILD") == "1" {
		Hit("here")
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run", "^TestReleaseIgnoresVariable$")
	cmd.Env = append(os.Environ(), "LIFEBOAT_FAILPOINT_CHILD=1", "LIFEBOAT_TEST_FAILPOINT=here")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if Enabled {
			t.Fatalf("test build: Hit returned (%v), want it to block; output %q", err, out.String())
		}
		if err != nil || strings.Contains(out.String(), "failpoint here") {
			t.Fatalf("release build: %v, output %q", err, out.String())
		}
	case <-time.After(2 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		if !Enabled {
			t.Fatalf("release build: Hit blocked with LIFEBOAT_TEST_FAILPOINT set; output %q", out.String())
		}
		if !strings.Contains(out.String(), "failpoint here") {
			t.Fatalf("test build: no failpoint line in %q", out.String())
		}
	}
}

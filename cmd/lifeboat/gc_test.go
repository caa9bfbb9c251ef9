package main

import (
	"os"
	"runtime/debug"
	"testing"
)

// TestTuneGC: the collector runs at gcPercent unless GOGC is set, and a
// GOGC the user set is left as the runtime read it.
func TestTuneGC(t *testing.T) {
	prev := debug.SetGCPercent(100)
	defer debug.SetGCPercent(prev)

	t.Setenv("GOGC", "")
	tuneGC()
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("GOGC set (empty): the collector was changed to %d", got)
	}

	t.Setenv("GOGC", "") // restored after the test
	os.Unsetenv("GOGC")
	tuneGC()
	if got := debug.SetGCPercent(100); got != gcPercent {
		t.Errorf("GOGC unset: the collector runs at %d, want %d", got, gcPercent)
	}
}

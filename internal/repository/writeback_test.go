package repository

import (
	"testing"
	"time"
)

// TestDiskFlusher: a flush starts each time diskFlushEvery bytes have
// been written, never more than one waits behind the one running, and
// stop returns only once the running one has.
func TestDiskFlusher(t *testing.T) {
	started := make(chan struct{}, 10)
	release := make(chan struct{})
	f := startFlushing(func() error {
		started <- struct{}{}
		<-release
		return nil
	})
	f.wrote(diskFlushEvery - 1)
	f.wrote(0)
	f.wrote(-5)
	select {
	case <-started:
		t.Fatal("a flush started before diskFlushEvery bytes were written")
	case <-time.After(50 * time.Millisecond):
	}
	f.wrote(1)
	waitStarted(t, started)
	// While it runs, three more thresholds: one flush waits, the rest are
	// dropped, as the waiting one covers their bytes too.
	for range 3 {
		f.wrote(diskFlushEvery)
	}
	release <- struct{}{}
	waitStarted(t, started)
	stopped := make(chan struct{})
	go func() { f.stop(); close(stopped) }()
	select {
	case <-stopped:
		t.Fatal("stop returned while a flush was running")
	case <-time.After(50 * time.Millisecond):
	}
	release <- struct{}{}
	<-stopped
	if n := len(started); n != 0 {
		t.Fatalf("%d flushes more than the two expected", n)
	}
	f.stop()                    // a second stop is harmless
	f.wrote(2 * diskFlushEvery) // and so is a write after it
}

func waitStarted(t *testing.T, started <-chan struct{}) {
	t.Helper()
	select {
	case <-started:
	case <-time.After(5 * time.Second):
		t.Fatal("no flush started")
	}
}

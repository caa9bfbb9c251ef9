package main

import (
	"fmt"
	"os"
	"runtime/metrics"
	"runtime/pprof"
	"time"
)

// heapProfiler writes the heap profile taken when the heap was largest, so
// that `go tool pprof -sample_index=inuse_space` shows what the peak RSS
// is made of; alloc_space in the same file shows where allocations churn.
type heapProfiler struct {
	path string
	stop chan struct{}
	done chan struct{}
}

// startHeapProfile checks the heap every 100 ms and rewrites path each
// time it has grown by a tenth since the last profile, and at the end.
func startHeapProfile(path string) (*heapProfiler, error) {
	if err := writeHeapProfile(path); err != nil {
		return nil, err
	}
	h := &heapProfiler{path: path, stop: make(chan struct{}), done: make(chan struct{})}
	go h.loop()
	return h, nil
}

func (h *heapProfiler) loop() {
	defer close(h.done)
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	var top uint64
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-h.stop:
			return
		case <-t.C:
		}
		metrics.Read(sample)
		if v := sample[0].Value.Uint64(); v > top+top/10 {
			top = v
			_ = writeHeapProfile(h.path)
		}
	}
}

// Stop ends the sampling; the file holds the profile of the largest heap.
func (h *heapProfiler) Stop() {
	close(h.stop)
	<-h.done
}

func writeHeapProfile(path string) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("--mem-profile: %w", err)
	}
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		f.Close()
		return fmt.Errorf("--mem-profile: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("--mem-profile: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("--mem-profile: %w", err)
	}
	return nil
}

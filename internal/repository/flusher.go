package repository

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/kopia/kopia/repo"
)

// flushEvery is how many files a pass hashes between flushes of its
// write session. Until a flush, kopia keeps in memory every content the
// session wrote: the pending packs' items and the index builder, about 250
// bytes a content, so a volume of a million small files held 350 MB of
// heap and 770 MB of RSS by the end of its upload. A flush writes the
// pending packs and their index, which the committed index then maps
// from the cache. kopia's own checkpoints flush the same way while an
// upload runs; it costs a few smaller packs and an index blob per flush,
// which maintenance compacts as it does the checkpoints'. Not more often:
// every new content is looked up in each index blob the session wrote,
// and at every 50,000 files the lookups took 6 times the CPU.
var flushEvery int64 = 200_000

// flusher flushes a write session from its own goroutine each time the
// upload has hashed another flushEvery files, so that no upload worker
// waits on the flush it triggered.
type flusher struct {
	w     repo.RepositoryWriter
	every int64
	n     atomic.Int64
	kick  chan struct{}
	stopC chan struct{}
	wg    sync.WaitGroup
	err   error // the first flush's failure; read after stop
}

func startFlusher(ctx context.Context, w repo.RepositoryWriter, every int64) *flusher {
	f := &flusher{w: w, every: every, kick: make(chan struct{}, 1), stopC: make(chan struct{})}
	f.wg.Go(func() { f.loop(ctx) })
	return f
}

func (f *flusher) loop(ctx context.Context) {
	for {
		select {
		case <-f.stopC:
			return
		case <-ctx.Done():
			return
		case <-f.kick:
		}
		if err := f.w.Flush(ctx); err != nil && f.err == nil {
			f.err = fmt.Errorf("flush written data: %w", err)
		}
	}
}

// hashed counts one file hashed, and asks for a flush every f.every.
func (f *flusher) hashed() {
	if f.n.Add(1)%f.every != 0 {
		return
	}
	select {
	case f.kick <- struct{}{}:
	default: // one is pending already
	}
}

// stop waits for a flush under way and returns the first one's error.
func (f *flusher) stop() error {
	close(f.stopC)
	f.wg.Wait()
	return f.err
}

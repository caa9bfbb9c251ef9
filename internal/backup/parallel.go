package backup

import (
	"context"
	"fmt"
	"sync"
)

// DefaultParallel is how many units a run backs up at once unless told.
// A unit's backup spends much of its time waiting (on the engine, on the
// repository's small writes, on a freeze's settling), so a few at once keep
// the cores busy; more would only lengthen each unit's freeze, as its frozen
// pass then shares the CPU with the others' live passes.
const DefaultParallel = 4

// MaxParallel bounds Options.Parallel: each unit at once is an upload with
// its own buffers and its own share of the engine's and the disk's time.
const MaxParallel = 64

// runUnits calls backup for each unit, opts.Parallel of them at once, and
// returns the results of the units it ran, in the order of units, and
// their errors. After ctx ends no unit starts; ctx's error is then one of
// the errors. OnDone calls are serialized, so a front end may print from
// them as they come.
func runUnits(ctx context.Context, units []Unit, opts Options, backup func(context.Context, Unit) Result) ([]Result, []error) {
	n := opts.Parallel
	if n <= 0 {
		n = DefaultParallel
	}
	n = max(1, min(n, MaxParallel, len(units)))
	results := make([]Result, len(units))
	ran := make([]bool, len(units))
	var mu sync.Mutex
	next := make(chan int)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for i := range next {
				res := backup(ctx, units[i])
				mu.Lock()
				results[i], ran[i] = res, true
				if opts.OnDone != nil {
					opts.OnDone(res)
				}
				mu.Unlock()
			}
		})
	}
	started := 0
feed:
	for started < len(units) && ctx.Err() == nil {
		select {
		case next <- started:
			started++
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	var out []Result
	var errs []error
	for i, u := range units {
		if !ran[i] {
			continue
		}
		out = append(out, results[i])
		if err := results[i].Err; err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", u.String(), err))
		}
	}
	if started < len(units) {
		errs = append(errs, ctx.Err())
	}
	return out, errs
}

package backup

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func testUnits(n int) []Unit {
	us := make([]Unit, n)
	for i := range us {
		us[i] = Unit{Kind: "volume", Name: fmt.Sprintf("v%02d", i)}
	}
	return us
}

func TestRunUnitsBoundsAndOrder(t *testing.T) {
	for _, tc := range []struct {
		name          string
		parallel      int
		units         int
		wantAtMost    int
		wantAtLeast   int
		failing       map[string]bool
		wantErrPrefix []string
	}{
		{name: "one by one", parallel: 1, units: 6, wantAtMost: 1, wantAtLeast: 1},
		{name: "default", parallel: 0, units: 12, wantAtMost: DefaultParallel, wantAtLeast: 2},
		{name: "more workers than units", parallel: 10, units: 3, wantAtMost: 3, wantAtLeast: 2},
		{name: "failures keep their units' order", parallel: 3, units: 7, wantAtMost: 3, wantAtLeast: 2,
			failing: map[string]bool{"v01": true, "v05": true}, wantErrPrefix: []string{"volume/v01: ", "volume/v05: "}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var cur, peak atomic.Int32
			var inDone atomic.Int32
			var doneOrder []string
			opts := Options{Parallel: tc.parallel, OnDone: func(r Result) {
				if inDone.Add(1) != 1 {
					t.Error("OnDone called for two units at once")
				}
				time.Sleep(time.Millisecond)
				doneOrder = append(doneOrder, r.Unit)
				inDone.Add(-1)
			}}
			units := testUnits(tc.units)
			results, errs := runUnits(t.Context(), units, opts, func(_ context.Context, u Unit) Result {
				n := cur.Add(1)
				for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
				}
				time.Sleep(20 * time.Millisecond)
				cur.Add(-1)
				r := Result{}
				r.Unit = u.String()
				if tc.failing[u.Name] {
					r.Err = errors.New("boom")
				}
				return r
			})
			if p := int(peak.Load()); p > tc.wantAtMost || p < tc.wantAtLeast {
				t.Errorf("%d units ran at once, want %d to %d", p, tc.wantAtLeast, tc.wantAtMost)
			}
			var got, want []string
			for i, r := range results {
				got = append(got, r.Unit)
				want = append(want, units[i].String())
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("results not in the units' order (-want +got):\n%s", diff)
			}
			if len(doneOrder) != tc.units {
				t.Errorf("OnDone called %d times, want %d", len(doneOrder), tc.units)
			}
			var gotErrs []string
			for _, err := range errs {
				gotErrs = append(gotErrs, err.Error())
			}
			var wantErrs []string
			for _, p := range tc.wantErrPrefix {
				wantErrs = append(wantErrs, p+"boom")
			}
			if diff := cmp.Diff(wantErrs, gotErrs); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRunUnitsStopsStartingWhenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	var mu sync.Mutex
	var ran []string
	results, errs := runUnits(ctx, testUnits(10), Options{Parallel: 2}, func(_ context.Context, u Unit) Result {
		mu.Lock()
		ran = append(ran, u.Name)
		if len(ran) == 3 {
			cancel()
		}
		mu.Unlock()
		time.Sleep(5 * time.Millisecond)
		return Result{}
	})
	if len(ran) > 4 || len(results) != len(ran) {
		t.Errorf("%d units started after cancel at the third (results %d), want at most 4", len(ran), len(results))
	}
	if len(errs) != 1 || !errors.Is(errs[0], context.Canceled) {
		t.Errorf("errors %v, want just the cancellation", errs)
	}
}

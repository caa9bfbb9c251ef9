package unitlock

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Hosts are separate lock directories sharing one store: the flocks do
// not see each other, only the lease keeps the jobs apart.
func TestLeaseExcludesHosts(t *testing.T) {
	store := DirStore(t.TempDir())
	sh := &Shared{Store: store, EngineID: "ENGINE-1", TTL: 3 * time.Second}
	var inside, overlaps, runs atomic.Int32
	var wg sync.WaitGroup
	for host := range 3 {
		dir := t.TempDir()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 3 {
				l, err := Acquire(context.Background(), dir, "project/shop", Options{Wait: true, Operation: Backup, Shared: sh})
				if err != nil {
					t.Errorf("host %d: %v", host, err)
					return
				}
				if inside.Add(1) > 1 {
					overlaps.Add(1)
				}
				runs.Add(1)
				time.Sleep(30 * time.Millisecond)
				inside.Add(-1)
				if err := l.Release(); err != nil {
					t.Errorf("host %d: release: %v", host, err)
				}
			}
		}()
	}
	wg.Wait()
	if runs.Load() != 9 || overlaps.Load() != 0 {
		t.Fatalf("runs %d, overlaps %d", runs.Load(), overlaps.Load())
	}
	// Another engine's unit of the same name is another lease.
	a, err := Acquire(context.Background(), t.TempDir(), "project/shop", Options{Shared: sh})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Release()
	other := &Shared{Store: store, EngineID: "ENGINE-2"}
	b, err := Acquire(context.Background(), t.TempDir(), "project/shop", Options{Shared: other})
	if err != nil {
		t.Fatalf("other engine's unit: %v", err)
	}
	b.Release()
	_, err = Acquire(context.Background(), t.TempDir(), "project/shop", Options{Shared: sh, Operation: Restore})
	if err == nil || !strings.Contains(err.Error(), "locked by another job") || !strings.Contains(err.Error(), "project/shop by pid") {
		t.Fatalf("no-wait while held: %v", err)
	}
}

// A holder that stops renewing (it died) keeps the unit only until its
// lease expires; then a waiting host takes it over.
func TestLeaseExpiresAndIsTakenOver(t *testing.T) {
	sh := &Shared{Store: DirStore(t.TempDir()), EngineID: "E", TTL: 900 * time.Millisecond}
	dead, err := Acquire(context.Background(), t.TempDir(), "container/pg", Options{Operation: Backup, Job: "j1", Shared: sh})
	if err != nil {
		t.Fatal(err)
	}
	dead.lease.stop() // as SIGKILL: no renewal, no release
	<-dead.lease.done
	start := time.Now()
	var told []Holder
	l, err := Acquire(context.Background(), t.TempDir(), "container/pg", Options{Wait: true, Operation: Backup, Shared: sh,
		OnWait: func(h Holder) { told = append(told, h) }})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	waited := time.Since(start)
	if waited < 500*time.Millisecond || waited > 5*time.Second {
		t.Errorf("took over after %v, want about the TTL (900ms)", waited)
	}
	if len(told) == 0 || told[0].Job != "j1" || told[0].EngineID != "E" {
		t.Errorf("waiting was told %+v, want the dead holder (job j1)", told)
	}
	// The renewing holder keeps it beyond its TTL.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err = Acquire(ctx, t.TempDir(), "container/pg", Options{Wait: true, Shared: sh})
	if err == nil || !strings.Contains(err.Error(), "held by the backup of container/pg") {
		t.Fatalf("while renewed: %v", err)
	}
	if lost := l.Lost(); lost != nil {
		t.Errorf("lost: %v", lost)
	}
}

// takeOver writes pid 4242's record over l's lease of volume/v and
// waits until l's renewal finds it.
func takeOver(t *testing.T, sh *Shared, l *Lock) {
	t.Helper()
	other := leaseRecord{Holder: Holder{Unit: "volume/v", PID: 4242, Operation: Backup}, Token: "theirs", Expires: time.Now().Add(time.Hour)}
	if err := sh.write(context.Background(), LeaseName("E", "volume/v"), other); err != nil {
		t.Fatal(err)
	}
	select {
	case <-l.LostC():
	case <-time.After(3 * time.Second):
		t.Fatal("not told the lease was lost")
	}
}

// A holder whose lease was taken over is told so, and lets go without
// removing the new holder's record.
func TestLeaseLost(t *testing.T) {
	store := DirStore(t.TempDir())
	// Renewals every 300 ms from the claim, none at the settle's end
	// (200 ms), when the other record is written.
	sh := &Shared{Store: store, EngineID: "E", TTL: 900 * time.Millisecond}
	l, err := Acquire(context.Background(), t.TempDir(), "volume/v", Options{Shared: sh})
	if err != nil {
		t.Fatal(err)
	}
	// Another host writes its own record over ours, as after our lease
	// expired unrenewed.
	takeOver(t, sh, l)
	if err := l.Lost(); err == nil || !strings.Contains(err.Error(), "pid 4242") || errors.Is(err, ErrOutraced) {
		t.Errorf("lost: %v; want taken over by pid 4242, not outraced: the lease was confirmed", err)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	if cur, _ := sh.read(context.Background(), LeaseName("E", "volume/v")); cur == nil || cur.Token != "theirs" {
		t.Errorf("release removed the new holder's lease: %+v", cur)
	}
}

// A tentative lease that another host's write outlives before its holder
// confirms it was never the holder's: when the renewal finds that first,
// the loss is ErrOutraced, so the job starts again rather than failing
// with whatever its cancelled step said.
func TestLeaseTentativeLostBeforeConfirm(t *testing.T) {
	sh := &Shared{Store: DirStore(t.TempDir()), EngineID: "E", TTL: 900 * time.Millisecond}
	l, err := Acquire(context.Background(), t.TempDir(), "volume/v", Options{Shared: sh, Tentative: true})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	takeOver(t, sh, l)
	if err := l.Lost(); !errors.Is(err, ErrOutraced) || !strings.Contains(err.Error(), "pid 4242") {
		t.Errorf("lost: %v; want ErrOutraced, naming pid 4242", err)
	}
	if err := l.Confirm(context.Background()); !errors.Is(err, ErrOutraced) {
		t.Errorf("confirm after the loss: %v, want ErrOutraced", err)
	}
}

// A lease whose holder ran on this machine and is gone is taken at once,
// not an hour later; one whose holder lives, or ran elsewhere, is not.
func TestLeaseOfDeadHolderHere(t *testing.T) {
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		rec  leaseRecord
		busy bool
	}{
		{"dead here", leaseRecord{Holder: Holder{PID: gone.Process.Pid}, Here: here()}, false},
		{"alive here", leaseRecord{Holder: Holder{PID: os.Getppid()}, Here: here()}, true},
		{"dead elsewhere", leaseRecord{Holder: Holder{PID: gone.Process.Pid}, Here: "another-boot/pid:[1]"}, true},
		{"an old record", leaseRecord{Holder: Holder{PID: gone.Process.Pid}}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sh := &Shared{Store: DirStore(t.TempDir()), EngineID: "E"}
			c.rec.Unit, c.rec.Operation, c.rec.Token = "volume/v", Backup, "theirs"
			c.rec.Expires = time.Now().Add(time.Hour)
			if err := sh.write(context.Background(), LeaseName("E", "volume/v"), c.rec); err != nil {
				t.Fatal(err)
			}
			l, err := Acquire(context.Background(), t.TempDir(), "volume/v", Options{Shared: sh})
			if c.busy {
				if !errors.Is(err, ErrBusy) {
					t.Fatalf("got %v, want busy", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("a dead holder's lease was not taken: %v", err)
			}
			l.Release()
		})
	}
}

// A tentative lock returns once its lease is written; Confirm then waits
// out the settle and says whether the record is still ours. Another
// claim written over it wins: Confirm says so, and Release leaves the
// winner's record.
func TestLeaseTentative(t *testing.T) {
	ctx := context.Background()
	store := DirStore(t.TempDir())
	sh := &Shared{Store: store, EngineID: "E"}
	begun := time.Now()
	l, err := Acquire(ctx, t.TempDir(), "volume/v", Options{Shared: sh, Tentative: true})
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(begun); d >= minSettle {
		t.Errorf("tentative acquire took %v, the whole settle (%v)", d, minSettle)
	}
	if err := l.Confirm(ctx); err != nil {
		t.Fatalf("confirm an uncontended lease: %v", err)
	}
	if d := time.Since(begun); d < minSettle {
		t.Errorf("confirmed after %v, before the settle (%v) ended", d, minSettle)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}

	l, err = Acquire(ctx, t.TempDir(), "volume/v", Options{Shared: sh, Tentative: true})
	if err != nil {
		t.Fatal(err)
	}
	theirs := leaseRecord{Holder: Holder{Unit: "volume/v", PID: 4242, Operation: Restore}, Token: "theirs", Expires: time.Now().Add(time.Hour)}
	if err := sh.write(ctx, LeaseName("E", "volume/v"), theirs); err != nil {
		t.Fatal(err)
	}
	if err := l.Confirm(ctx); !errors.Is(err, ErrOutraced) {
		t.Fatalf("confirm after another claim's write: %v, want ErrOutraced", err)
	}
	if err := l.Confirm(ctx); !errors.Is(err, ErrOutraced) {
		t.Fatalf("second confirm: %v, want the first's answer", err)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	if cur, _ := sh.read(ctx, LeaseName("E", "volume/v")); cur == nil || cur.Token != "theirs" {
		t.Errorf("release removed the winner's lease: %+v", cur)
	}
}

// Hosts that claim at the same instant, tentatively or not: of each
// round's claims only one is ever confirmed at a time, and a host
// outraced starts again and gets its turn.
func TestLeaseTentativeRace(t *testing.T) {
	const hosts, rounds = 3, 4
	sh := &Shared{Store: DirStore(t.TempDir()), EngineID: "E", TTL: 5 * time.Second}
	var inside, overlaps, runs, outraced atomic.Int32
	for r := range rounds {
		var start, wg sync.WaitGroup
		start.Add(1)
		for h := range hosts {
			dir := t.TempDir()
			wg.Add(1)
			go func() {
				defer wg.Done()
				start.Wait()
				for {
					l, err := Acquire(context.Background(), dir, "project/shop", Options{Wait: true, Shared: sh, Tentative: h != 0 || r%2 == 0})
					if err != nil {
						t.Errorf("host %d: %v", h, err)
						return
					}
					err = l.Confirm(context.Background())
					if errors.Is(err, ErrOutraced) {
						outraced.Add(1)
						l.Release()
						continue
					}
					if err != nil {
						t.Errorf("host %d: confirm: %v", h, err)
						l.Release()
						return
					}
					if inside.Add(1) > 1 {
						overlaps.Add(1)
					}
					runs.Add(1)
					time.Sleep(20 * time.Millisecond)
					inside.Add(-1)
					if err := l.Release(); err != nil {
						t.Errorf("host %d: release: %v", h, err)
					}
					return
				}
			}()
		}
		start.Done()
		wg.Wait()
	}
	t.Logf("lease race: %d runs, %d overlaps, %d claims outraced", runs.Load(), overlaps.Load(), outraced.Load())
	if runs.Load() != hosts*rounds || overlaps.Load() != 0 {
		t.Fatalf("runs %d (want %d), overlaps %d", runs.Load(), hosts*rounds, overlaps.Load())
	}
}

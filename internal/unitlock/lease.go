package unitlock

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/lifeboat-backup/lifeboat/internal/failpoint"
)

// A flock holds on one host only. Hosts that share a repository (two
// state dirs, one repository, perhaps one engine reached from both) also
// take a lease: a small record in the shared store naming its holder and
// when it expires. The holder renews it while the job runs; a holder that
// dies stops renewing, and the lease is taken over once it expires.
//
// Stores such as S3 have no compare-and-swap, so a lease is taken by
// writing it, waiting a settle time longer than a write takes, and
// reading it back: of two hosts that both saw the lease free, the later
// write wins and the earlier writer, reading the other's record back,
// backs off. A lease is taken only while the local flock is held, so
// only one process per host ever contends.

// Store is the storage hosts share (the repository's blobs). Get of a
// record that does not exist returns an error wrapping fs.ErrNotExist.
type Store interface {
	Get(ctx context.Context, name string) ([]byte, error)
	Put(ctx context.Context, name string, b []byte) error
	Delete(ctx context.Context, name string) error
}

// Shared makes Acquire take a lease in Store too. EngineID scopes the
// lease: the same unit name on two engines is two units.
type Shared struct {
	Store    Store
	EngineID string
	// TTL is how long a lease lasts without renewal; LeaseTTL when zero.
	TTL time.Duration
	Log *slog.Logger
}

// LeaseTTL is a lease's default life: renewed every third of it, so a
// holder survives two missed renewals before others take over.
var LeaseTTL = 60 * time.Second

// minSettle is the least wait between writing a lease and reading it
// back; the wait is also at least twice the write's own time.
var minSettle = 200 * time.Millisecond

// LeasePrefix names lease records among the repository's blobs.
const LeasePrefix = "lifeboat-lease-"

// LeaseName is the record name of unit's lease on engine.
func LeaseName(engineID, unit string) string {
	sum := sha256.Sum256([]byte(engineID + "\x00" + unit))
	return LeasePrefix + hex.EncodeToString(sum[:16])
}

type leaseRecord struct {
	Holder
	Token   string    `json:"token"`
	Expires time.Time `json:"expires"`
	// Here names the machine boot and PID namespace the holder ran in, so
	// that a holder's own host can tell it died (see deadHere) and take
	// over at once, not a TTL later, after a SIGKILL.
	Here string `json:"here,omitempty"`
}

// here is this process's boot and PID namespace: where a PID means the
// same process.
var here = sync.OnceValue(func() string {
	boot, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	ns, err := os.Readlink("/proc/self/ns/pid")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(boot)) + "/" + ns
})

// deadHere reports whether r's holder ran where this process runs and
// is gone. A PID taken again by another process reads as alive: the
// lease is then waited out, never taken from a live holder.
func deadHere(r *leaseRecord) bool {
	if r.Here == "" || r.Here != here() || r.PID <= 0 {
		return false
	}
	return errors.Is(syscall.Kill(r.PID, 0), syscall.ESRCH)
}

// lease is a held lease, renewed until released. It is claimed from
// its write on, and held once confirmed: read back, after the settle,
// still ours.
type lease struct {
	sh       *Shared
	name     string
	rec      leaseRecord
	settleAt time.Time // when the record may be read back
	stop     context.CancelFunc
	done     chan struct{}
	mu       sync.Mutex
	lostAt   error
	lost     chan struct{} // closed when lostAt is set
	// confirmed: confirm found the record ours. A claim taken over
	// before that was never the holder's: it was outraced.
	confirmed bool

	confirmOnce sync.Once
	confirmErr  error
}

// ErrOutraced means another host wrote the unit's lease at the same
// moment, and its record outlived ours: it holds the unit, and what was
// done under the claim must be dropped (Options.Tentative).
var ErrOutraced = errors.New("another host claimed the unit's lease at the same moment")

func (s *Shared) ttl() time.Duration {
	if s.TTL > 0 {
		return s.TTL
	}
	return LeaseTTL
}

func (s *Shared) log() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.New(slog.DiscardHandler)
}

// takeLease takes unit's lease for h, waiting for another holder (with
// opts.Wait) until it releases or its lease expires.
func (s *Shared) takeLease(ctx context.Context, unit string, h Holder, opts Options) (*lease, error) {
	name := LeaseName(s.EngineID, unit)
	h.EngineID = s.EngineID
	tok := make([]byte, 16)
	_, _ = rand.Read(tok)
	me := leaseRecord{Holder: h, Token: hex.EncodeToString(tok), Here: here()}
	poll := firstPoll
	var last Holder
	waited := false
	for {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("wait for the lease of %s: %w", unit, context.Cause(ctx))
		}
		cur, err := s.read(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("read the lease of %s: %w", unit, err)
		}
		if cur != nil && cur.Token != me.Token && time.Now().Before(cur.Expires) && !deadHere(cur) {
			if !opts.Wait {
				return nil, fmt.Errorf("%w: %s", ErrBusy, cur.Holder)
			}
			if opts.OnWait != nil && (!waited || cur.Holder != last) {
				opts.OnWait(cur.Holder)
			}
			waited, last = true, cur.Holder
			if err := sleep(ctx, poll); err != nil {
				return nil, fmt.Errorf("wait for the lease of %s, held by %s: %w", unit, cur.Holder, err)
			}
			poll = min(poll*2, 2*maxPoll)
			continue
		}
		if cur != nil && cur.Token != me.Token {
			s.log().Info("taking over an expired lease or one whose holder died", "unit", unit, "holder", cur.Holder.String(), "expired", cur.Expires)
		}
		// Tests hold two hosts here, both having seen the lease free.
		failpoint.Sleep("lease-free", 400*time.Millisecond)
		l, err := s.claim(ctx, name, me)
		if err != nil {
			return nil, fmt.Errorf("take the lease of %s: %w", unit, err)
		}
		if opts.Tentative {
			return l, nil
		}
		err = l.confirm(ctx)
		if err == nil {
			return l, nil
		}
		l.drop()
		if !errors.Is(err, ErrOutraced) {
			return nil, fmt.Errorf("take the lease of %s: %w", unit, err)
		}
	}
}

// claim writes me and starts renewing it. The lease is the claimant's
// only once confirmed: two hosts that both saw it free may both have
// written, and the later write wins.
func (s *Shared) claim(ctx context.Context, name string, me leaseRecord) (*lease, error) {
	start := time.Now()
	me.Expires = start.Add(s.ttl())
	if err := s.write(ctx, name, me); err != nil {
		return nil, err
	}
	settle := max(minSettle, 2*time.Since(start))
	l := &lease{sh: s, name: name, rec: me, settleAt: time.Now().Add(settle), done: make(chan struct{}), lost: make(chan struct{})}
	var rctx context.Context
	rctx, l.stop = context.WithCancel(context.WithoutCancel(ctx))
	go l.renew(rctx)
	return l, nil
}

// confirm waits out the settle and reads the record back: nil when it
// is still ours, ErrOutraced when another claimant's write outlived it.
// Every call after the first returns the first's answer.
func (l *lease) confirm(ctx context.Context) error {
	l.confirmOnce.Do(func() {
		if err := sleep(ctx, time.Until(l.settleAt)); err != nil {
			l.confirmErr = err
			return
		}
		cur, err := l.sh.read(ctx, l.name)
		switch {
		case err != nil:
			l.confirmErr = fmt.Errorf("read the lease back: %w", err)
		case cur == nil || cur.Token != l.rec.Token:
			l.confirmErr = ErrOutraced
		default:
			l.mu.Lock()
			l.confirmErr = l.lostAt
			l.confirmed = l.lostAt == nil
			l.mu.Unlock()
		}
	})
	return l.confirmErr
}

// drop stops renewing a claim that was not confirmed; the record, if
// it is still ours, goes with it.
func (l *lease) drop() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = l.release(ctx)
}

func (s *Shared) read(ctx context.Context, name string) (*leaseRecord, error) {
	b, err := s.Store.Get(ctx, name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var r leaseRecord
	if json.Unmarshal(b, &r) != nil {
		// A torn or foreign record holds nothing: it is overwritten.
		return nil, nil
	}
	return &r, nil
}

func (s *Shared) write(ctx context.Context, name string, r leaseRecord) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return s.Store.Put(ctx, name, b)
}

// renew pushes the lease's expiry forward every third of its TTL, after
// checking it is still ours: one that expired while the store could not
// be reached may have been taken over, and is then not written again.
func (l *lease) renew(ctx context.Context) {
	defer close(l.done)
	every := l.sh.ttl() / 3
	for {
		if sleep(ctx, every) != nil {
			return
		}
		cur, err := l.sh.read(ctx, l.name)
		if err == nil && (cur == nil || cur.Token != l.rec.Token) {
			err = errors.New("another holder took it over")
			if cur != nil {
				err = fmt.Errorf("taken over by %s", cur.Holder)
			}
			l.mu.Lock()
			if !l.confirmed {
				// A tentative claim (Options.Tentative) that another
				// host's write outlived before its holder confirmed it:
				// what was done under it is dropped and started again.
				err = fmt.Errorf("%w: %w", ErrOutraced, err)
			}
			l.lostAt = err
			l.mu.Unlock()
			close(l.lost)
			l.sh.log().Error("lease of a unit lost", "unit", l.rec.Unit, "err", err)
			return
		}
		if err != nil {
			l.sh.log().Warn("lease of a unit not renewed", "unit", l.rec.Unit, "err", err)
			continue
		}
		l.rec.Expires = time.Now().Add(l.sh.ttl())
		if err := l.sh.write(ctx, l.name, l.rec); err != nil {
			l.sh.log().Warn("lease of a unit not renewed", "unit", l.rec.Unit, "err", err)
		}
	}
}

// release stops renewing and removes the record if it is still ours.
func (l *lease) release(ctx context.Context) error {
	l.stop()
	<-l.done
	cur, err := l.sh.read(ctx, l.name)
	if err != nil {
		return fmt.Errorf("read the lease of %s: %w", l.rec.Unit, err)
	}
	if cur == nil || cur.Token != l.rec.Token {
		return nil
	}
	if err := l.sh.Store.Delete(ctx, l.name); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("release the lease of %s: %w", l.rec.Unit, err)
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}

// DirStore is a Store in a directory, for hosts that share a file system
// (and for tests).
type DirStore string

func (d DirStore) path(name string) string { return string(d) + "/" + name }

func (d DirStore) Get(_ context.Context, name string) ([]byte, error) {
	return os.ReadFile(d.path(name))
}

func (d DirStore) Put(_ context.Context, name string, b []byte) error {
	f, err := os.CreateTemp(string(d), ".tmp-"+name+"-*")
	if err != nil {
		return err
	}
	_, werr := f.Write(b)
	if err := errors.Join(werr, f.Close()); err != nil {
		_ = os.Remove(f.Name())
		return err
	}
	return os.Rename(f.Name(), d.path(name))
}

func (d DirStore) Delete(_ context.Context, name string) error { return os.Remove(d.path(name)) }

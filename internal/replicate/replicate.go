// Package replicate copies a repository's blobs to another storage (the
// offsite copy on S3), forever-incrementally: only blobs the destination
// lacks are sent, in an order that keeps the copy usable if it is cut.
//
// kopia's own `repository sync-to` does the same job, and this differs
// where the difference is safety or cost:
//   - sync-to writes the format blob first and then copies in listing
//     order, so a cut copy can be a "repository" whose indexes name packs
//     it does not have. Here packs go first, indexes after them, the
//     format blob last.
//   - sync-to deletes from the destination while other workers still copy,
//     so an index can go before its replacement is in. Here deletions wait
//     until every new blob is in, and only touch a destination that
//     already was a copy of this repository.
//   - sync-to skips a blob that vanished from the source since the
//     listing. Its indexes may then name it at the destination; here that
//     fails the run, and the next run lists afresh.
//   - sync-to decides whether a blob that changed in place (the format and
//     maintenance blobs) needs sending by comparing timestamps of two
//     different clocks; here the few small ones are compared by content.
package replicate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kopia/kopia/repo/blob"

	"github.com/lifeboat-backup/lifeboat/internal/unitlock"
)

// DefaultParallel is how many blobs are copied at once when
// Options.Parallel is zero: enough to hide an object store's per-request
// latency, few enough that the buffers (a pack is up to about 20 MiB) stay
// small.
const DefaultParallel = 8

// ErrOtherRepository means the destination holds a different repository.
var ErrOtherRepository = errors.New("the destination holds another repository")

// ErrSourceChanged means a blob listed in the source was gone when it was
// read: maintenance ran meanwhile. The destination is still consistent.
var ErrSourceChanged = errors.New("the repository changed during the copy (maintenance?): run it again")

// Options of a replication.
type Options struct {
	// Delete removes destination blobs the source no longer has (what
	// maintenance freed), once everything new is in.
	Delete bool
	// Parallel copies; DefaultParallel when zero.
	Parallel int
	// Progress is told after each blob sent. It is called from several
	// goroutines, one at a time.
	Progress func(Progress)
	// Lock, when set, puts S3 object-lock retention on every blob written
	// and extends it on every blob the copy already holds that the source
	// still has, so everything the source's points need stays locked for
	// Lock.Period from this run.
	Lock Lock
}

// Progress is how far a replication is.
type Progress struct {
	BlobsSent, BytesSent     int64
	BlobsToSend, BytesToSend int64
	Last                     blob.ID // the blob just sent
}

// Stats say what a replication did.
type Stats struct {
	BlobsSent    int64 `json:"blobs_sent"`
	BytesSent    int64 `json:"bytes_sent"`
	BlobsPresent int64 `json:"blobs_already_there"`
	BytesPresent int64 `json:"bytes_already_there"`
	BlobsDeleted int64 `json:"blobs_deleted"`
	BytesDeleted int64 `json:"bytes_deleted"`
	// BlobsExtended are blobs already in the copy whose lock was extended.
	BlobsExtended int64 `json:"blobs_lock_extended,omitempty"`
	// LockedUntil is the earliest end of retention of the blobs the
	// source still has: before it, none of them can be removed.
	LockedUntil    *time.Time    `json:"locked_until,omitempty"`
	Duration       time.Duration `json:"duration_ns"`
	BytesPerSecond float64       `json:"bytes_per_second"` // sent, over the whole run
}

const formatBlob blob.ID = "kopia.repository"

// phase orders blobs so that a destination cut at any moment is the
// previous copy plus unreferenced packs: packs first, then indexes and
// other metadata, the repository's own "kopia.*" blobs last.
func phase(id blob.ID) int {
	switch s := string(id); {
	case strings.HasPrefix(s, "p"), strings.HasPrefix(s, "q"):
		return 0
	case strings.HasPrefix(s, "kopia."):
		return 2
	}
	return 1
}

// mutable reports whether a blob may be rewritten in place under the same
// name: kopia's format, blob-config and maintenance blobs. All others are
// named by their content or by a unique session, so the same name and
// length mean the same blob.
func mutable(id blob.ID) bool { return phase(id) == 2 }

// plan is what a replication has to do.
type plan struct {
	send    [3][]blob.Metadata // by phase
	gone    []blob.Metadata    // at the destination only
	kept    []blob.Metadata    // at both, not sent
	present int64
	bytes   int64
	toSend  Progress
}

// Copy replicates src into dst.
func Copy(ctx context.Context, src, dst blob.Storage, opts Options) (Stats, error) {
	start := time.Now()
	var st Stats
	if opts.Parallel <= 0 {
		opts.Parallel = DefaultParallel
	}
	dstIsCopy, err := sameRepository(ctx, src, dst)
	if err != nil {
		return st, err
	}
	p, err := makePlan(ctx, src, dst)
	if err != nil {
		return st, err
	}
	st.BlobsPresent, st.BytesPresent = p.present, p.bytes
	c := copier{src: src, dst: dst, opts: opts, total: p.toSend}
	for _, batch := range p.send {
		err := c.forAll(ctx, batch, c.copyOne)
		st.BlobsSent, st.BytesSent = c.blobs.Load(), c.bytes.Load()
		if err != nil {
			st.Duration = time.Since(start)
			return st, err
		}
	}
	if opts.Lock.On() {
		// Every retention set or extended below ends after this.
		until := start.Add(opts.Lock.Period).UTC().Truncate(time.Second)
		err := c.forAll(ctx, p.kept, c.extendOne)
		st.BlobsExtended = c.extended.Load()
		if err != nil {
			st.Duration = time.Since(start)
			return st, err
		}
		st.LockedUntil = &until
	}
	// A destination that was not yet a copy of this repository (new, or a
	// first copy cut short) may hold things that are not ours: leave them.
	if opts.Delete && dstIsCopy {
		if err := deleteAll(ctx, dst, p.gone, &st); err != nil {
			st.Duration = time.Since(start)
			return st, err
		}
	}
	st.Duration = time.Since(start)
	if s := st.Duration.Seconds(); s > 0 {
		st.BytesPerSecond = float64(st.BytesSent) / s
	}
	return st, nil
}

// sameRepository refuses a destination that holds another repository, and
// reports whether it holds this one.
func sameRepository(ctx context.Context, src, dst blob.Storage) (bool, error) {
	srcID, err := uniqueID(ctx, src)
	if err != nil {
		return false, fmt.Errorf("read the source's format blob: %w", err)
	}
	dstID, err := uniqueID(ctx, dst)
	switch {
	case errors.Is(err, blob.ErrBlobNotFound):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("read the destination's format blob: %w", err)
	case !bytes.Equal(srcID, dstID):
		return false, ErrOtherRepository
	}
	return true, nil
}

func uniqueID(ctx context.Context, st blob.Storage) ([]byte, error) {
	var b buffer
	if err := st.GetBlob(ctx, formatBlob, 0, -1, &b); err != nil {
		return nil, err
	}
	var f struct {
		UniqueID []byte `json:"uniqueID"`
	}
	// A decoder, not Unmarshal: kopia may follow the JSON with a checksum.
	if err := json.NewDecoder(&b).Decode(&f); err != nil || len(f.UniqueID) == 0 {
		return nil, fmt.Errorf("%s is not a kopia format blob: %v", formatBlob, err)
	}
	return f.UniqueID, nil
}

// makePlan lists both sides. The destination is listed first, so a blob
// it has that the source no longer lists was deleted from the source, not
// added since. In the source, indexes are listed before packs: a pack is
// written before any index that names it, so every pack the listed indexes
// need is in the pack listing, even while backups write to the source.
func makePlan(ctx context.Context, src, dst blob.Storage) (plan, error) {
	var p plan
	have := map[blob.ID]blob.Metadata{}
	if err := dst.ListBlobs(ctx, "", func(m blob.Metadata) error {
		have[m.BlobID] = m
		return nil
	}); err != nil {
		return p, fmt.Errorf("list the destination: %w", err)
	}
	add := func(m blob.Metadata) error {
		d, ok := have[m.BlobID]
		delete(have, m.BlobID)
		if ok && d.Length == m.Length && !mutable(m.BlobID) {
			p.keep(m)
			return nil
		}
		if ok && mutable(m.BlobID) {
			same, err := sameContent(ctx, src, dst, m.BlobID)
			if err != nil {
				return err
			}
			if same {
				p.keep(m)
				return nil
			}
		}
		p.send[phase(m.BlobID)] = append(p.send[phase(m.BlobID)], m)
		p.toSend.BlobsToSend++
		p.toSend.BytesToSend += m.Length
		return nil
	}
	if err := src.ListBlobs(ctx, "", func(m blob.Metadata) error {
		if phase(m.BlobID) == 0 || strings.HasPrefix(string(m.BlobID), unitlock.LeasePrefix) {
			// Leases are the source's hosts' locks: live, short, and
			// no part of a copy.
			return nil
		}
		return add(m)
	}); err != nil {
		return p, fmt.Errorf("list the source: %w", err)
	}
	for _, prefix := range []blob.ID{"p", "q"} {
		if err := src.ListBlobs(ctx, prefix, add); err != nil {
			return p, fmt.Errorf("list the source: %w", err)
		}
	}
	for _, m := range have {
		p.gone = append(p.gone, m)
	}
	for _, batch := range p.send {
		// Biggest first: the long transfers overlap the many short ones.
		sort.Slice(batch, func(i, j int) bool { return batch[i].Length > batch[j].Length })
	}
	return p, nil
}

func (p *plan) keep(m blob.Metadata) {
	p.present++
	p.bytes += m.Length
	p.kept = append(p.kept, m)
}

// sameContent compares a blob that may change in place on both sides.
// Only a few small blobs are compared this way.
func sameContent(ctx context.Context, src, dst blob.Storage, id blob.ID) (bool, error) {
	var a, b buffer
	if err := src.GetBlob(ctx, id, 0, -1, &a); err != nil {
		return false, fmt.Errorf("read %s: %w", id, err)
	}
	if err := dst.GetBlob(ctx, id, 0, -1, &b); err != nil {
		return false, fmt.Errorf("read %s at the destination: %w", id, err)
	}
	return bytes.Equal(a.Bytes(), b.Bytes()), nil
}

// deleteAll removes what the source no longer has: indexes and other
// metadata before the packs they name, so no index is ever left naming a
// missing pack.
func deleteAll(ctx context.Context, dst blob.Storage, gone []blob.Metadata, st *Stats) error {
	sort.Slice(gone, func(i, j int) bool { return phase(gone[i].BlobID) > phase(gone[j].BlobID) })
	for _, m := range gone {
		if err := dst.DeleteBlob(ctx, m.BlobID); err != nil && !errors.Is(err, blob.ErrBlobNotFound) {
			return fmt.Errorf("delete %s at the destination: %w", m.BlobID, err)
		}
		st.BlobsDeleted++
		st.BytesDeleted += m.Length
	}
	return nil
}

// copier sends blobs with opts.Parallel workers.
type copier struct {
	src, dst     blob.Storage
	opts         Options
	total        Progress
	blobs, bytes atomic.Int64
	extended     atomic.Int64
	mu           sync.Mutex // serialises Progress calls
}

// forAll does one phase's work on each blob: it returns when all are done
// or at the first error; the next phase never starts before this one is
// complete.
func (c *copier) forAll(ctx context.Context, batch []blob.Metadata, do func(context.Context, blob.Metadata, *buffer) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	work := make(chan blob.Metadata)
	var wg sync.WaitGroup
	for range min(c.opts.Parallel, len(batch)) {
		wg.Go(func() {
			var buf buffer
			for m := range work {
				if err := do(ctx, m, &buf); err != nil {
					cancel(err)
					return
				}
			}
		})
	}
feed:
	for _, m := range batch {
		select {
		case work <- m:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	return context.Cause(ctx)
}

func (c *copier) copyOne(ctx context.Context, m blob.Metadata, buf *buffer) error {
	buf.Reset()
	// One allocation of the right size: growing by doubling while the
	// blob streams in would copy it several times and keep up to twice
	// its size per worker.
	buf.Grow(int(m.Length))
	if err := c.src.GetBlob(ctx, m.BlobID, 0, -1, buf); err != nil {
		if errors.Is(err, blob.ErrBlobNotFound) {
			return fmt.Errorf("read %s: %w", m.BlobID, ErrSourceChanged)
		}
		return fmt.Errorf("read %s: %w", m.BlobID, err)
	}
	put := blob.PutOptions{RetentionMode: c.opts.Lock.Mode, RetentionPeriod: c.opts.Lock.Period}
	if err := c.dst.PutBlob(ctx, m.BlobID, byteSlice(buf.Bytes()), put); err != nil {
		return fmt.Errorf("write %s: %w", m.BlobID, err)
	}
	n, b := c.blobs.Add(1), c.bytes.Add(int64(buf.Len()))
	if c.opts.Progress != nil {
		c.mu.Lock()
		defer c.mu.Unlock()
		p := c.total
		p.BlobsSent, p.BytesSent, p.Last = n, b, m.BlobID
		c.opts.Progress(p)
	}
	return nil
}

// extendOne makes a blob the copy already holds stay locked for the
// period from now. Any lock it has ends before that, unless this very run
// wrote it, so every kept blob is extended: asking the server first would
// cost the same one request per blob. S3 never shortens a lock this way:
// a compliance lock can only be lengthened.
func (c *copier) extendOne(ctx context.Context, m blob.Metadata, _ *buffer) error {
	err := c.dst.ExtendBlobRetention(ctx, m.BlobID, blob.ExtendOptions{RetentionMode: c.opts.Lock.Mode, RetentionPeriod: c.opts.Lock.Period})
	if err != nil {
		return fmt.Errorf("extend the lock of %s: %w", m.BlobID, err)
	}
	c.extended.Add(1)
	return nil
}

// buffer is a blob.OutputBuffer.
type buffer struct{ bytes.Buffer }

func (b *buffer) Length() int { return b.Len() }

// byteSlice is blob.Bytes over one slice.
type byteSlice []byte

func (b byteSlice) Length() int { return len(b) }

func (b byteSlice) WriteTo(w io.Writer) (int64, error) {
	n, err := w.Write(b)
	return int64(n), err
}

func (b byteSlice) Reader() io.ReadSeekCloser { return nopCloser{bytes.NewReader(b)} }

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }

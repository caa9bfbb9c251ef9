// Package replicate copies a repository's blobs to another storage (the
// offsite copy on S3), forever-incrementally: only blobs the destination
// lacks are sent, in an order that keeps the copy usable if it is cut.
package replicate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kopia/kopia/repo/blob"
)

// Options of a replication.
type Options struct {
	// Delete removes destination blobs the source no longer has (what
	// maintenance freed), once everything new is in.
	Delete bool
	// Parallel uploads; 8 when zero.
	Parallel int
	// Progress is told of each blob sent.
	Progress func(blobs, bytes int64)
	// AfterBlob, for tests, is called after each blob is sent.
	AfterBlob func(id blob.ID)
}

// Stats say what a replication did.
type Stats struct {
	BlobsSent      int64         `json:"blobs_sent"`
	BytesSent      int64         `json:"bytes_sent"`
	BlobsPresent   int64         `json:"blobs_already_there"`
	BytesPresent   int64         `json:"bytes_already_there"`
	BlobsDeleted   int64         `json:"blobs_deleted"`
	Duration       time.Duration `json:"duration_ns"`
	BytesPerSecond float64       `json:"bytes_per_second"`
}

// phase orders blobs so that a destination cut at any moment is the
// previous copy plus unreferenced packs: packs first, then indexes and
// other metadata, the repository's format blobs last.
func phase(id blob.ID) int {
	s := string(id)
	switch {
	case strings.HasPrefix(s, "p"), strings.HasPrefix(s, "q"):
		return 0
	case strings.HasPrefix(s, "kopia."):
		return 2
	}
	return 1
}

// Copy replicates src into dst.
func Copy(ctx context.Context, src, dst blob.Storage, opts Options) (Stats, error) {
	start := time.Now()
	var st Stats
	if opts.Parallel <= 0 {
		opts.Parallel = 8
	}
	have := map[blob.ID]int64{}
	if err := dst.ListBlobs(ctx, "", func(m blob.Metadata) error {
		have[m.BlobID] = m.Length
		return nil
	}); err != nil {
		return st, fmt.Errorf("list the destination: %w", err)
	}
	var todo [3][]blob.Metadata
	inSource := map[blob.ID]bool{}
	add := func(m blob.Metadata) {
		inSource[m.BlobID] = true
		// Format and maintenance blobs are rewritten in place: always
		// sent (they are small). Everything else is named by its content.
		if n, ok := have[m.BlobID]; ok && n == m.Length && phase(m.BlobID) != 2 {
			st.BlobsPresent++
			st.BytesPresent += m.Length
			return
		}
		todo[phase(m.BlobID)] = append(todo[phase(m.BlobID)], m)
	}
	// Indexes are listed before packs: a pack is written before any index
	// that names it, so every pack the listed indexes need is in the pack
	// listing, even while backups write to the source.
	if err := src.ListBlobs(ctx, "", func(m blob.Metadata) error {
		if phase(m.BlobID) > 0 {
			add(m)
		}
		return nil
	}); err != nil {
		return st, fmt.Errorf("list the source: %w", err)
	}
	for _, prefix := range []blob.ID{"p", "q"} {
		if err := src.ListBlobs(ctx, prefix, func(m blob.Metadata) error {
			add(m)
			return nil
		}); err != nil {
			return st, fmt.Errorf("list the source: %w", err)
		}
	}
	for _, batch := range todo {
		// Biggest first: the long uploads overlap the many small ones.
		sort.Slice(batch, func(i, j int) bool { return batch[i].Length > batch[j].Length })
		if err := copyAll(ctx, src, dst, batch, opts, &st); err != nil {
			st.Duration = time.Since(start)
			return st, err
		}
	}
	if opts.Delete {
		var gone []blob.ID
		for id := range have {
			if !inSource[id] {
				gone = append(gone, id)
			}
		}
		// Indexes before the packs they name.
		sort.Slice(gone, func(i, j int) bool { return phase(gone[i]) > phase(gone[j]) })
		for _, id := range gone {
			if err := dst.DeleteBlob(ctx, id); err != nil && !errors.Is(err, blob.ErrBlobNotFound) {
				return st, fmt.Errorf("delete %s at the destination: %w", id, err)
			}
			st.BlobsDeleted++
		}
	}
	st.Duration = time.Since(start)
	if s := st.Duration.Seconds(); s > 0 {
		st.BytesPerSecond = float64(st.BytesSent) / s
	}
	return st, nil
}

func copyAll(ctx context.Context, src, dst blob.Storage, batch []blob.Metadata, opts Options, st *Stats) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	work := make(chan blob.Metadata)
	var firstErr error
	var once sync.Once
	var blobs, bytes atomic.Int64
	var wg sync.WaitGroup
	for range opts.Parallel {
		wg.Go(func() {
			var buf buffer
			for m := range work {
				buf.Reset()
				err := src.GetBlob(ctx, m.BlobID, 0, -1, &buf)
				if err == nil {
					err = dst.PutBlob(ctx, m.BlobID, byteSlice(buf.Bytes()), blob.PutOptions{})
				}
				if err != nil {
					once.Do(func() { firstErr = fmt.Errorf("copy %s: %w", m.BlobID, err); cancel() })
					continue
				}
				n := blobs.Add(1)
				b := bytes.Add(m.Length)
				if opts.Progress != nil {
					opts.Progress(n, b)
				}
				if opts.AfterBlob != nil {
					opts.AfterBlob(m.BlobID)
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
	st.BlobsSent += blobs.Load()
	st.BytesSent += bytes.Load()
	if firstErr != nil {
		return firstErr
	}
	return ctx.Err()
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

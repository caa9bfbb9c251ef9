package repository

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/kopia/kopia/repo/blob"
	"github.com/kopia/kopia/repo/blob/filesystem"
)

// outBuf is a blob.OutputBuffer over a bytes.Buffer.
type outBuf struct{ bytes.Buffer }

func (b *outBuf) Length() int { return b.Len() }

// TestPackFilesReadLikeKopia: sections of pack blobs read through kept
// descriptors are the bytes kopia's storage reads, also while reads run
// concurrently and more packs are read than are kept open; other blobs
// and missing packs go to kopia's storage and say what it says.
func TestPackFilesReadLikeKopia(t *testing.T) {
	ctx := context.Background()
	o := &filesystem.Options{Path: t.TempDir()}
	st, err := filesystem.New(ctx, o, true)
	if err != nil {
		t.Fatal(err)
	}
	p := newPackFiles(st, o)
	if p.paths == nil {
		t.Fatal("kopia's filesystem storage does not name its files: every read would bypass the kept descriptors")
	}
	if got := p.ConnectionInfo().Type; got != packStorageType {
		t.Fatalf("connection type %q, want %q", got, packStorageType)
	}
	n := maxOpenPacks + 10
	want := map[blob.ID][]byte{}
	for i := range n {
		id := blob.ID(fmt.Sprintf("p%04x", i))
		b := bytes.Repeat([]byte(fmt.Sprintf("pack %d;", i)), 5000+i)
		if err := st.PutBlob(ctx, id, bytesBlob(b), blob.PutOptions{}); err != nil {
			t.Fatal(err)
		}
		want[id] = b
	}
	if err := st.PutBlob(ctx, "xother", bytesBlob([]byte("not a pack")), blob.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4*n)
	for round := range 4 {
		for id, b := range want {
			wg.Go(func() {
				off := int64((round * 997) % (len(b) / 2))
				length := int64(len(b)/2 - round)
				var got outBuf
				if err := p.GetBlob(ctx, id, off, length, &got); err != nil {
					errs <- fmt.Errorf("%s: %w", id, err)
					return
				}
				if !bytes.Equal(got.Bytes(), b[off:off+length]) {
					errs <- fmt.Errorf("%s at %d+%d: other bytes", id, off, length)
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	p.mu.Lock()
	if len(p.open) > maxOpenPacks {
		t.Errorf("%d pack files kept open, want at most %d", len(p.open), maxOpenPacks)
	}
	p.mu.Unlock()
	var got outBuf
	if err := p.GetBlob(ctx, "xother", 0, -1, &got); err != nil || got.String() != "not a pack" {
		t.Errorf("other blob: %q, %v", got.String(), err)
	}
	if err := p.GetBlob(ctx, "pmissing", 0, 10, &got); err == nil {
		t.Error("a missing pack was read")
	} else if !errors.Is(err, blob.ErrBlobNotFound) {
		t.Errorf("a missing pack: %v, want kopia's not-found", err)
	}
	var past outBuf
	if err := p.GetBlob(ctx, "p0000", int64(len(want["p0000"])-5), 10, &past); err == nil {
		t.Error("a read past a pack's end succeeded")
	}
	// A pack replaced under its name by another storage instance (as a
	// repair from another copy does) is read anew, not through the
	// descriptor kept for the old file.
	var before outBuf
	if err := p.GetBlob(ctx, "p0001", 0, 4, &before); err != nil || before.String() != "pack" {
		t.Fatalf("p0001 before its replacement: %q, %v", before.String(), err)
	}
	p.mu.Lock()
	_, kept := p.open["p0001"]
	p.mu.Unlock()
	if !kept {
		t.Fatal("p0001 was read but its descriptor is not kept")
	}
	other, err := filesystem.New(ctx, o, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := other.PutBlob(ctx, "p0001", bytesBlob([]byte("the replacement")), blob.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	var fresh outBuf
	if err := p.GetBlob(ctx, "p0001", 4, 11, &fresh); err != nil || fresh.String() != "replacement" {
		t.Errorf("after the pack was replaced: %q, %v; want %q", fresh.String(), err, "replacement")
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

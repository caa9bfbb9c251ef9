package replicate

import (
	"context"
	"errors"
	"testing"

	"github.com/kopia/kopia/repo/blob"
	"github.com/kopia/kopia/repo/blob/filesystem"
)

func storage(t *testing.T) blob.Storage {
	t.Helper()
	st, err := filesystem.New(context.Background(), &filesystem.Options{Path: t.TempDir()}, true)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func put(t *testing.T, st blob.Storage, id string, data string) {
	t.Helper()
	if err := st.PutBlob(context.Background(), blob.ID(id), byteSlice(data), blob.PutOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestCopyIncrementalOrderedAndDeletes(t *testing.T) {
	ctx := context.Background()
	src, dst := storage(t), storage(t)
	for _, id := range []string{"pA", "pB", "qC", "xn0_index", "kopia.repository"} {
		put(t, src, id, "data of "+id)
	}
	var order []blob.ID
	st, err := Copy(ctx, src, dst, Options{Parallel: 1, AfterBlob: func(id blob.ID) { order = append(order, id) }})
	if err != nil || st.BlobsSent != 5 || st.BlobsPresent != 0 {
		t.Fatalf("first copy: %+v %v", st, err)
	}
	pos := map[blob.ID]int{}
	for i, id := range order {
		pos[id] = i
	}
	if !(pos["pA"] < pos["xn0_index"] && pos["qC"] < pos["xn0_index"] && pos["xn0_index"] < pos["kopia.repository"]) {
		t.Fatalf("order %v: packs, then indexes, then format", order)
	}
	var b buffer
	if err := dst.GetBlob(ctx, "pB", 0, -1, &b); err != nil || b.String() != "data of pB" {
		t.Fatalf("copied content: %q %v", b.String(), err)
	}

	put(t, src, "pD", "new pack")
	src.DeleteBlob(ctx, "pA")
	st, err = Copy(ctx, src, dst, Options{Delete: true})
	// pD is new; kopia.repository is always refreshed; the rest is there.
	if err != nil || st.BlobsSent != 2 || st.BytesSent != int64(len("new pack")+len("data of kopia.repository")) || st.BlobsPresent != 3 || st.BlobsDeleted != 1 {
		t.Fatalf("second copy: %+v %v", st, err)
	}
	if err := dst.GetBlob(ctx, "pA", 0, -1, &b); !errors.Is(err, blob.ErrBlobNotFound) {
		t.Fatalf("a blob gone from the source is still at the destination: %v", err)
	}
}

// TestCutLeavesNoDanglingIndex stops a copy after its first blob: the
// destination holds packs only, never an index whose packs are missing.
func TestCutLeavesNoDanglingIndex(t *testing.T) {
	ctx := context.Background()
	src, dst := storage(t), storage(t)
	for _, id := range []string{"pA", "pB", "xn0_index", "kopia.repository"} {
		put(t, src, id, id)
	}
	ctx, cancel := context.WithCancel(ctx)
	_, err := Copy(ctx, src, dst, Options{Parallel: 1, AfterBlob: func(blob.ID) { cancel() }})
	if err == nil {
		t.Fatal("a cut copy reported success")
	}
	var ids []string
	dst.ListBlobs(context.Background(), "", func(m blob.Metadata) error { ids = append(ids, string(m.BlobID)); return nil })
	for _, id := range ids {
		if id[0] != 'p' {
			t.Fatalf("after a cut the destination has %v", ids)
		}
	}
	st, err := Copy(context.Background(), src, dst, Options{})
	if err != nil || st.BlobsPresent != int64(len(ids)) {
		t.Fatalf("resumed copy: %+v %v", st, err)
	}
}

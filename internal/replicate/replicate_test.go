package replicate

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kopia/kopia/repo/blob"
	"github.com/kopia/kopia/repo/blob/filesystem"
	"github.com/kopia/kopia/repo/blob/s3"
	"github.com/minio/minio-go/v7"

	"github.com/lifeboat-backup/lifeboat/internal/testutil"
)

func newTestStorage(t *testing.T) blob.Storage {
	t.Helper()
	st, err := filesystem.New(t.Context(), &filesystem.Options{Path: t.TempDir()}, true)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func mustPut(t *testing.T, st blob.Storage, id, data string) {
	t.Helper()
	if err := st.PutBlob(t.Context(), blob.ID(id), byteSlice(data), blob.PutOptions{}); err != nil {
		t.Fatal(err)
	}
}

func format(id string) string { return `{"tool":"test","uniqueID":"` + id + `"}` }

// contents lists a storage as id → data.
func contents(t *testing.T, st blob.Storage) map[blob.ID]string {
	t.Helper()
	got := map[blob.ID]string{}
	err := st.ListBlobs(t.Context(), "", func(m blob.Metadata) error {
		var b buffer
		if err := st.GetBlob(t.Context(), m.BlobID, 0, -1, &b); err != nil {
			return err
		}
		got[m.BlobID] = b.String()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestCopyIncrementalOrderedAndDeletes(t *testing.T) {
	src, dst := newTestStorage(t), newTestStorage(t)
	for _, id := range []string{"pA", "pB", "qC", "xn0_index", "_log_1"} {
		mustPut(t, src, id, "data of "+id)
	}
	mustPut(t, src, "kopia.repository", format("AQID"))
	var order []blob.ID
	st, err := Copy(t.Context(), src, dst, Options{Parallel: 1, Progress: func(p Progress) {
		order = append(order, p.Last)
		if p.BlobsToSend != 6 {
			t.Errorf("progress %+v: 6 blobs to send", p)
		}
	}})
	if err != nil || st.BlobsSent != 6 || st.BlobsPresent != 0 {
		t.Fatalf("first copy: %+v %v", st, err)
	}
	pos := map[blob.ID]int{}
	for i, id := range order {
		pos[id] = i
	}
	if !(pos["pA"] < pos["xn0_index"] && pos["qC"] < pos["_log_1"] && pos["xn0_index"] < pos["kopia.repository"] && pos["_log_1"] < pos["kopia.repository"]) {
		t.Fatalf("order %v: packs, then indexes, then the format blob", order)
	}
	if !maps.Equal(contents(t, src), contents(t, dst)) {
		t.Fatal("the copy differs from the source")
	}

	mustPut(t, src, "pD", "new pack")
	if err := src.DeleteBlob(t.Context(), "pA"); err != nil {
		t.Fatal(err)
	}
	st, err = Copy(t.Context(), src, dst, Options{Delete: true})
	// pD is new; the format blob is unchanged, so not sent; pA is gone.
	if err != nil || st.BlobsSent != 1 || st.BytesSent != int64(len("new pack")) || st.BlobsPresent != 5 || st.BlobsDeleted != 1 {
		t.Fatalf("second copy: %+v %v", st, err)
	}
	if !maps.Equal(contents(t, src), contents(t, dst)) {
		t.Fatal("the copy differs from the source")
	}
}

// TestCopyRewrittenFormatBlob: kopia rewrites its format blob in place (a
// new password) with the same length; the copy must follow.
func TestCopyRewrittenFormatBlob(t *testing.T) {
	src, dst := newTestStorage(t), newTestStorage(t)
	mustPut(t, src, "kopia.repository", format("AQID")+"1")
	if _, err := Copy(t.Context(), src, dst, Options{}); err != nil {
		t.Fatal(err)
	}
	mustPut(t, src, "kopia.repository", format("AQID")+"2")
	st, err := Copy(t.Context(), src, dst, Options{})
	if err != nil || st.BlobsSent != 1 {
		t.Fatalf("after a rewrite: %+v %v", st, err)
	}
	if got := contents(t, dst)["kopia.repository"]; got != format("AQID")+"2" {
		t.Fatalf("format blob at the destination: %q", got)
	}
}

func TestCopyRefusesAnotherRepository(t *testing.T) {
	src, dst := newTestStorage(t), newTestStorage(t)
	mustPut(t, src, "kopia.repository", format("AQID"))
	mustPut(t, src, "pA", "a")
	mustPut(t, dst, "kopia.repository", format("BAUG"))
	mustPut(t, dst, "pZ", "theirs")
	if _, err := Copy(t.Context(), src, dst, Options{Delete: true}); !errors.Is(err, ErrOtherRepository) {
		t.Fatalf("copy onto another repository: %v", err)
	}
	if got := contents(t, dst); len(got) != 2 || got["pZ"] != "theirs" {
		t.Fatalf("the other repository was touched: %v", got)
	}
}

// TestCopyDeletesOnlyInItsOwnCopy: with --delete, a destination that was
// not a copy of this repository yet keeps what it had.
func TestCopyDeletesOnlyInItsOwnCopy(t *testing.T) {
	src, dst := newTestStorage(t), newTestStorage(t)
	mustPut(t, src, "kopia.repository", format("AQID"))
	mustPut(t, dst, "pOld", "left by a cut first copy")
	st, err := Copy(t.Context(), src, dst, Options{Delete: true})
	if err != nil || st.BlobsDeleted != 0 || contents(t, dst)["pOld"] == "" {
		t.Fatalf("first copy with delete: %+v %v", st, err)
	}
	st, err = Copy(t.Context(), src, dst, Options{Delete: true})
	if err != nil || st.BlobsDeleted != 1 {
		t.Fatalf("second copy with delete: %+v %v", st, err)
	}
}

// TestCutLeavesNoDanglingIndex stops a copy after its first blob: the
// destination holds packs only, never an index whose packs are missing,
// and the next run sends only the rest.
func TestCutLeavesNoDanglingIndex(t *testing.T) {
	src, dst := newTestStorage(t), newTestStorage(t)
	for _, id := range []string{"pA", "pBB", "xn0_index"} {
		mustPut(t, src, id, id)
	}
	mustPut(t, src, "kopia.repository", format("AQID"))
	ctx, cancel := context.WithCancel(t.Context())
	_, err := Copy(ctx, src, dst, Options{Parallel: 1, Progress: func(Progress) { cancel() }})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("a cut copy: %v", err)
	}
	got := slices.Collect(maps.Keys(contents(t, dst)))
	if len(got) != 1 || got[0][0] != 'p' {
		t.Fatalf("after a cut the destination has %v, want one pack", got)
	}
	st, err := Copy(t.Context(), src, dst, Options{})
	if err != nil || st.BlobsPresent != 1 || st.BlobsSent != 3 {
		t.Fatalf("resumed copy: %+v %v", st, err)
	}
}

// TestSourceChangedMidCopy: a pack deleted from the source after the
// listing (maintenance) fails the run rather than leave an index naming
// it; nothing after packs has been sent.
func TestSourceChangedMidCopy(t *testing.T) {
	src, dst := newTestStorage(t), newTestStorage(t)
	mustPut(t, src, "pBig", "the biggest pack, sent first")
	mustPut(t, src, "pSmall", "small")
	mustPut(t, src, "xn0_index", "names both")
	mustPut(t, src, "kopia.repository", format("AQID"))
	_, err := Copy(t.Context(), src, dst, Options{Parallel: 1, Progress: func(p Progress) {
		if p.Last == "pBig" {
			src.DeleteBlob(t.Context(), "pSmall")
		}
	}})
	if !errors.Is(err, ErrSourceChanged) {
		t.Fatalf("copy of a changing source: %v", err)
	}
	if got := contents(t, dst); len(got) != 1 {
		t.Fatalf("destination after a failed copy: %v", got)
	}
}

// TestCopyToMinIO copies to a real S3 server: a full copy, then only the
// new blobs, and the destination equals the source byte for byte.
func TestCopyToMinIO(t *testing.T) {
	m := testutil.StartMinIO(t)
	m.Bucket("repl")
	dst, err := s3.New(t.Context(), &s3.Options{BucketName: "repl", Prefix: "host1/", Endpoint: m.Endpoint[len("http://"):],
		DoNotUseTLS: true, AccessKeyID: m.AccessKey, SecretAccessKey: m.SecretKey}, false)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close(context.WithoutCancel(t.Context()))
	src := newTestStorage(t)
	mustPut(t, src, "kopia.repository", format("AQID"))
	random := func(n int) string {
		b := make([]byte, n)
		rand.Read(b)
		return string(b)
	}
	for i := range 12 {
		mustPut(t, src, "p"+string(rune('a'+i)), random(1<<20+i))
	}
	mustPut(t, src, "xn0_index", random(4096))
	first, err := Copy(t.Context(), src, dst, Options{Parallel: 4})
	if err != nil || first.BlobsSent != 14 {
		t.Fatalf("first copy: %+v %v", first, err)
	}
	mustPut(t, src, "pz", random(3<<20))
	mustPut(t, src, "xn1_index", random(4096))
	second, err := Copy(t.Context(), src, dst, Options{Parallel: 4})
	if err != nil || second.BlobsSent != 2 || second.BytesSent != 3<<20+4096 || second.BlobsPresent != 14 {
		t.Fatalf("second copy: %+v %v", second, err)
	}
	t.Logf("first: %d blobs, %d bytes in %v; second: %d blobs, %d bytes, %d already there",
		first.BlobsSent, first.BytesSent, first.Duration, second.BlobsSent, second.BytesSent, second.BlobsPresent)
	a, b := contents(t, src), contents(t, dst)
	if !maps.Equal(a, b) {
		t.Fatalf("the copy on S3 differs: %d blobs here, %d there", len(a), len(b))
	}
}

// noDelete is a destination whose keys may not delete: a copy without
// Delete must never need that permission.
type noDelete struct{ blob.Storage }

func (noDelete) DeleteBlob(context.Context, blob.ID) error {
	return errors.New("AccessDenied: these keys may not delete")
}

func TestCopyNeedsNoDeletePermission(t *testing.T) {
	src, dst := newTestStorage(t), newTestStorage(t)
	mustPut(t, src, "kopia.repository", format("AQID"))
	mustPut(t, src, "pA", "pack")
	if _, err := Copy(t.Context(), src, noDelete{dst}, Options{}); err != nil {
		t.Fatal(err)
	}
	// Maintenance deleted pA here: without Delete the copy keeps it.
	src.DeleteBlob(t.Context(), "pA")
	mustPut(t, src, "pB", "new pack")
	st, err := Copy(t.Context(), src, noDelete{dst}, Options{})
	if err != nil || st.BlobsSent != 1 || st.BlobsDeleted != 0 {
		t.Fatalf("a copy without Delete to keys that may not delete: %+v %v", st, err)
	}
	if _, ok := contents(t, dst)["pA"]; !ok {
		t.Fatal("a copy without Delete removed a blob")
	}
}

// TestLockedCopyToMinIO: into a bucket with object lock, every blob
// written carries the lock; the next run extends the lock of the blobs
// already there; the server refuses to delete a locked version, and an
// overwrite leaves it as it was.
func TestLockedCopyToMinIO(t *testing.T) {
	m := testutil.StartMinIO(t)
	m.LockedBucket("locked")
	cli := m.Client()
	dst, err := s3.New(t.Context(), &s3.Options{BucketName: "locked", Prefix: "host1/", Endpoint: m.Endpoint[len("http://"):],
		DoNotUseTLS: true, AccessKeyID: m.AccessKey, SecretAccessKey: m.SecretKey}, false)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close(context.WithoutCancel(t.Context()))
	src := newTestStorage(t)
	mustPut(t, src, "kopia.repository", format("AQID"))
	mustPut(t, src, "pa", "pack a")
	mustPut(t, src, "xn0_index", "index 0")
	lock := Lock{Mode: blob.Compliance, Period: 24 * time.Hour}
	first, err := Copy(t.Context(), src, dst, Options{Lock: lock})
	if err != nil || first.BlobsSent != 3 || first.LockedUntil == nil {
		t.Fatalf("first locked copy: %+v %v", first, err)
	}
	retention := func(id string) time.Time {
		t.Helper()
		mode, until, err := cli.GetObjectRetention(t.Context(), "locked", "host1/"+id, "")
		if err != nil || mode == nil || *mode != minio.Compliance || until == nil {
			t.Fatalf("retention of %s: %v %v %v", id, mode, until, err)
		}
		return *until
	}
	untilA := retention("pa")
	if untilA.Before(*first.LockedUntil) {
		t.Fatalf("pa locked until %v, before the run's %v", untilA, *first.LockedUntil)
	}
	time.Sleep(1100 * time.Millisecond) // retention dates are in seconds
	mustPut(t, src, "pb", "pack b")
	second, err := Copy(t.Context(), src, dst, Options{Lock: lock})
	if err != nil || second.BlobsSent != 1 || second.BlobsExtended != 3 {
		t.Fatalf("second locked copy: %+v %v", second, err)
	}
	if later := retention("pa"); !later.After(untilA) {
		t.Fatalf("the lock of pa was not extended: %v, was %v", later, untilA)
	}
	retention("pb")
	t.Logf("locked copy: %d blobs sent, then %d sent and %d extended; pa locked until %v", first.BlobsSent, second.BlobsSent, second.BlobsExtended, retention("pa"))

	// The attack: delete the locked version, then overwrite it.
	st, err := cli.StatObject(t.Context(), "locked", "host1/pa", minio.StatObjectOptions{})
	if err != nil || st.VersionID == "" {
		t.Fatalf("stat pa: %+v %v", st, err)
	}
	err = cli.RemoveObject(t.Context(), "locked", "host1/pa", minio.RemoveObjectOptions{VersionID: st.VersionID})
	if err == nil {
		t.Fatal("the server deleted a locked version")
	}
	t.Logf("delete of the locked version refused: %v", err)
	if _, err := cli.PutObject(t.Context(), "locked", "host1/pa", strings.NewReader("ransom"), 6, minio.PutObjectOptions{}); err != nil {
		t.Fatalf("overwrite: %v", err)
	}
	obj, err := cli.GetObject(t.Context(), "locked", "host1/pa", minio.GetObjectOptions{VersionID: st.VersionID})
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(obj)
	if err != nil || string(b) != "pack a" {
		t.Fatalf("the locked version after an overwrite: %q %v", b, err)
	}
}

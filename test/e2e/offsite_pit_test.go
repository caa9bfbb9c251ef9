package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/minio/minio-go/v7"

	"github.com/lifeboat-backup/lifeboat/internal/testutil"
)

// TestOffsitePointInTime: listings and the API show until when each
// replicated point's offsite copy is locked, and no date for a point made
// after the copy. Then an attacker with the host's keys overwrites
// the current versions of a locked copy's packs and format blob with
// garbage and hides its indexes behind delete markers. The copy no
// longer opens; opened with --point-in-time before the attack, it lists
// its points and a volume restores equal to the original. A view is
// read-only, and only for S3.
func TestOffsitePointInTime(t *testing.T) {
	e := newEnv(t)
	m := testutil.StartMinIO(t)
	m.LockedBucket("locked")
	e.vars = append(e.vars, m.Env()...)
	o := offsite{e, m}
	o.ok(nil, "init")
	mp := e.volume("pit_data")
	randomFile(t, filepath.Join(mp, "base"), 3<<20)
	first := e.backup("volume/pit_data")
	randomFile(t, filepath.Join(mp, "change"), 1<<20)
	second := e.backup("volume/pit_data")
	want := testutil.Manifest(t, mp)
	const to = "s3://locked/host1"
	st := o.replicateLocked(to)
	third := e.backup("volume/pit_data") // not replicated yet
	t.Run("each point's offsite lock date", func(t *testing.T) {
		replicated := map[string]bool{first.ID: true, second.ID: true}
		o.checkOffsiteLocks("snapshots --json", o.ok(nil, "snapshots", "--json").stdout, replicated, third.ID)
		tokenFile := filepath.Join(t.TempDir(), "token")
		if err := os.WriteFile(tokenFile, []byte("pit-test-token-0123456789abcdef\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		srv := e.serve(t, freePort(t), tokenFile)
		var raw json.RawMessage
		if code := srv.api("GET", "/api/v1/points?unit=volume/pit_data", nil, &raw); code != 200 {
			t.Fatalf("GET /api/v1/points: %d %s", code, raw)
		}
		o.checkOffsiteLocks("GET /api/v1/points", string(raw), replicated, third.ID)
		srv.cmd.Process.Signal(syscall.SIGTERM)
		srv.cmd.Wait()
	})

	// The moment to go back to: after the copy, before the attack.
	time.Sleep(1100 * time.Millisecond)
	before := time.Now().UTC().Truncate(time.Second)
	time.Sleep(1100 * time.Millisecond)
	overwritten, hidden := attackCopy(t, m.Client(), "locked", "host1/")
	t.Logf("copy of %d blobs locked until %v; at %v the attacker overwrote %d objects and hid %d behind delete markers",
		st.BlobsSent, st.LockedUntil, before, overwritten, hidden)

	fresh := func() []string {
		return []string{"LIFEBOAT_REPOSITORY=" + to, "LIFEBOAT_CACHE_DIR=" + t.TempDir()}
	}
	if r := o.run(fresh(), "snapshots", "--json"); r.code == 0 {
		t.Fatalf("the attacked copy still opens as it is now: %s", r.stdout)
	} else {
		t.Logf("the attacked copy as it is now: exit %d: %s", r.code, strings.TrimSpace(r.stderr))
	}

	pit := before.Format(time.RFC3339)
	viewEnv := fresh()
	r := o.ok(viewEnv, "snapshots", "--json", "--point-in-time", pit)
	var points []struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &points); err != nil {
		t.Fatalf("snapshots --json: %q: %v", r.stdout, err)
	}
	ids := map[string]bool{}
	for _, p := range points {
		ids[p.ID] = true
	}
	if len(points) != 2 || !ids[first.ID] || !ids[second.ID] {
		t.Fatalf("the view as of %s lists %v, want %s and %s", pit, ids, first.ID, second.ID)
	}
	// The variable works as the flag does.
	dst := filepath.Join(t.TempDir(), "out")
	start := time.Now()
	o.ok(append(viewEnv, "LIFEBOAT_POINT_IN_TIME="+pit), "restore", "volume/pit_data@latest", "--volume", "pit_data", "--target", dst)
	if got := testutil.Manifest(t, dst); !cmp.Equal(want, got) {
		t.Fatalf("the volume restored from the view differs (-want +got):\n%s", firstLines(cmp.Diff(want, got), 40))
	}
	t.Logf("the view as of %s lists %d points; volume/pit_data@latest restored equal to the original in %v", pit, len(points), time.Since(start).Round(time.Millisecond))
	// The view is whole: every point's every file reads back.
	o.ok(viewEnv, "check", "--read-data", "100%", "--point-in-time", pit)
	// Each view's connection state and cache go with its command.
	cache := strings.TrimPrefix(viewEnv[1], "LIFEBOAT_CACHE_DIR=")
	if left, _ := filepath.Glob(filepath.Join(cache, "*")); len(left) != 0 {
		t.Fatalf("the views left state behind in %s: %v", cache, left)
	}

	t.Run("a view is read-only, and only for S3", func(t *testing.T) {
		for _, c := range []struct {
			name  string
			extra []string
			args  []string
			want  string
		}{
			{"backup", fresh(), []string{"backup", "volume/pit_data"}, "read-only"},
			{"forget", fresh(), []string{"forget", "volume/pit_data", "--keep-last", "1"}, "read-only"},
			{"maintenance", fresh(), []string{"maintenance"}, "read-only"},
			{"local repository", nil, []string{"snapshots"}, "local directory"},
			{"bad time", fresh(), []string{"snapshots", "--point-in-time", "yesterday"}, "2h-ago"},
			{"init", []string{"LIFEBOAT_REPOSITORY=s3://locked/other"}, []string{"init"}, "without --point-in-time"},
		} {
			args := c.args
			if c.name != "bad time" {
				args = append(args, "--point-in-time", pit)
			}
			r := o.run(c.extra, args...)
			lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
			if r.code != 1 || !strings.Contains(r.stderr, c.want) || len(lines) > 2 {
				t.Errorf("%s with --point-in-time: exit %d, want 1 and one line saying %q: %s", c.name, r.code, c.want, r.stderr)
			}
			t.Logf("%s: %s", c.name, lines[0])
		}
		if n := o.points(e.repo, "volume/pit_data"); n != 3 {
			t.Fatalf("the local repository lists %d points after the refusals, want 3", n)
		}
	})
}

// attackCopy does what an attacker with the host's keys can to the copy
// under prefix: overwrite the packs and the format, blob-config and
// maintenance blobs with garbage and
// put delete markers on the indexes. Locked versions stay; every current
// one is the attacker's.
func attackCopy(t *testing.T, cli *minio.Client, bucket, prefix string) (overwritten, hidden int) {
	t.Helper()
	ctx := t.Context()
	var keys []string
	for obj := range cli.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if obj.Err != nil {
			t.Fatal(obj.Err)
		}
		keys = append(keys, obj.Key)
	}
	for _, k := range keys {
		name := strings.TrimPrefix(k, prefix)
		switch {
		case strings.HasPrefix(name, "p"), strings.HasPrefix(name, "q"), strings.HasPrefix(name, "kopia."):
			garbage := "encrypted by the attacker " + name
			if _, err := cli.PutObject(ctx, bucket, k, strings.NewReader(garbage), int64(len(garbage)), minio.PutObjectOptions{}); err != nil {
				t.Fatalf("overwrite %s: %v", k, err)
			}
			overwritten++
		case strings.HasPrefix(name, "x"), strings.HasPrefix(name, "n"):
			if err := cli.RemoveObject(ctx, bucket, k, minio.RemoveObjectOptions{}); err != nil {
				t.Fatalf("delete %s: %v", k, err)
			}
			hidden++
		}
	}
	if overwritten == 0 || hidden == 0 {
		t.Fatalf("the attack found nothing to overwrite (%d) or hide (%d) in %v", overwritten, hidden, keys)
	}
	return overwritten, hidden
}

// checkOffsiteLocks checks a listing of points: the replicated ones are
// locked offsite for the day replicateLocked asks, at least; notYet has
// no date.
func (o offsite) checkOffsiteLocks(what, out string, replicated map[string]bool, notYet string) {
	o.t.Helper()
	var points []struct {
		ID    string     `json:"id"`
		Until *time.Time `json:"offsite_locked_until"`
	}
	if err := json.Unmarshal([]byte(out), &points); err != nil {
		o.t.Fatalf("%s: %q: %v", what, out, err)
	}
	floor := time.Now().Add(24*time.Hour - time.Minute)
	seen := 0
	for _, p := range points {
		switch {
		case replicated[p.ID] && (p.Until == nil || p.Until.Before(floor)):
			o.t.Errorf("%s: replicated point %s is offsite-locked until %v, want %v or later", what, p.ID, p.Until, floor)
		case p.ID == notYet && p.Until != nil:
			o.t.Errorf("%s: point %s, made after the copy, is offsite-locked until %v", what, p.ID, p.Until)
		}
		if replicated[p.ID] || p.ID == notYet {
			seen++
		}
		o.t.Logf("%s: %s offsite_locked_until %v", what, p.ID, p.Until)
	}
	if seen != len(replicated)+1 {
		o.t.Fatalf("%s lists %d of the %d points", what, seen, len(replicated)+1)
	}
}

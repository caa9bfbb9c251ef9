package e2e

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/lifeboat-backup/lifeboat/internal/testutil"
)

// TestRepositoryLock: a repository made directly on S3 with --lock-mode
// locks every pack kopia writes (a delete of its version is refused by
// the server), offsite verify passes on it, and full maintenance moves
// the locks forward. A lock where it cannot hold is refused with one
// line, and nothing is written.
func TestRepositoryLock(t *testing.T) {
	e := newEnv(t)
	m := testutil.StartMinIO(t)
	m.LockedBucket("locked")
	m.Bucket("plain")
	e.vars = append(e.vars, m.Env()...)
	o := offsite{e, m}
	cli := m.Client()
	const direct = "s3://locked/direct"
	o.ok(nil, "init", "-r", direct, "--lock-mode", "compliance", "--lock-period", "2d")
	mp := e.volume("rl_data")
	randomFile(t, filepath.Join(mp, "base"), 2<<20)
	o.ok([]string{"LIFEBOAT_REPOSITORY=" + direct}, "backup", "volume/rl_data", "--json")

	pack := firstObject(t, cli, "locked", "direct/p")
	until := retention(t, cli, "locked", pack)
	if d := time.Until(until); d < 48*time.Hour-time.Minute || d > 48*time.Hour {
		t.Fatalf("pack %s is locked until %v, want two days from now", pack.Key, until)
	}
	err := cli.RemoveObject(t.Context(), "locked", pack.Key, minio.RemoveObjectOptions{VersionID: pack.VersionID})
	if err == nil {
		t.Fatalf("the server deleted the locked version of %s", pack.Key)
	}
	t.Logf("pack %s locked (compliance) until %v; delete of its version: %v", pack.Key, until, err)

	v, r := o.verify(direct, "--lock-mode", "compliance")
	for _, c := range v.Checks {
		t.Logf("verify %s: %s: ok=%v %s", direct, c.Name, c.OK, c.Detail)
	}
	if r.code != 0 || !v.OK || len(v.Checks) != 4 || v.BlobsLocked == 0 {
		t.Fatalf("offsite verify of a repository locked by kopia: exit %d, %+v\n%s", r.code, v, r.stderr)
	}

	time.Sleep(1100 * time.Millisecond) // retention dates are in seconds
	o.ok([]string{"LIFEBOAT_REPOSITORY=" + direct}, "maintenance")
	after := retention(t, cli, "locked", pack)
	if !after.After(until) {
		t.Fatalf("after full maintenance %s is locked until %v, before %v: not extended", pack.Key, after, until)
	}
	t.Logf("full maintenance extended the lock of %s from %v to %v", pack.Key, until, after)

	t.Run("a lock where it cannot hold is refused", func(t *testing.T) {
		for _, c := range []struct {
			name, repo, mode, period, want string
		}{
			{"bucket without lock", "s3://plain/direct", "compliance", "2d", "object lock"},
			{"local directory", filepath.Join(t.TempDir(), "repo"), "compliance", "2d", "local directory"},
			{"short period", "s3://locked/short", "compliance", "1d", "at least 2d"},
			{"bad mode", "s3://locked/short", "forever", "2d", "governance or compliance"},
			{"mode alone", "s3://locked/short", "compliance", "", "together"},
		} {
			args := []string{"init", "-r", c.repo, "--lock-mode", c.mode}
			if c.period != "" {
				args = append(args, "--lock-period", c.period)
			}
			r := o.run(nil, args...)
			lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
			if r.code != 1 || !strings.Contains(r.stderr, c.want) || len(lines) > 2 {
				t.Errorf("init with a lock, %s: exit %d, want 1 and one line saying %q: %s", c.name, r.code, c.want, r.stderr)
			}
			t.Logf("%s: %s", c.name, lines[0])
		}
		for _, p := range []string{"plain/", "locked/short"} {
			bucket, prefix, _ := strings.Cut(p, "/")
			for obj := range cli.ListObjects(t.Context(), bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
				t.Errorf("a refused init wrote %s/%s (%v)", bucket, obj.Key, obj.Err)
			}
		}
	})
}

// retention is the retain-until date of one version of an object.
func retention(t *testing.T, cli *minio.Client, bucket string, obj minio.ObjectInfo) time.Time {
	t.Helper()
	mode, until, err := cli.GetObjectRetention(t.Context(), bucket, obj.Key, obj.VersionID)
	if err != nil || mode == nil || *mode != minio.Compliance || until == nil {
		t.Fatalf("retention of %s: %v until %v (%v), want a compliance lock", obj.Key, mode, until, err)
	}
	return *until
}

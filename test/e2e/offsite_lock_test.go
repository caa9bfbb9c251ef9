package e2e

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/lifeboat-backup/lifeboat/internal/testutil"
)

type lockedStats struct {
	replStats
	BlobsExtended int64     `json:"blobs_lock_extended"`
	LockedUntil   time.Time `json:"locked_until"`
}

// replicateLocked runs replicate with a compliance lock of a day.
func (o offsite) replicateLocked(to string) lockedStats {
	o.t.Helper()
	var st lockedStats
	out := o.ok(nil, "replicate", "--to", to, "--lock-mode", "compliance", "--lock-period", "1d", "--json").stdout
	if err := json.Unmarshal([]byte(out), &st); err != nil || st.MessageType != "summary" || st.LockedUntil.IsZero() {
		o.t.Fatalf("replicate --lock-mode --json: %q: %v", out, err)
	}
	return st
}

// newLockedOffsite is an env with one backed-up unit beside a MinIO with
// a bucket "locked" (object lock on) and a bucket "plain" (without).
func newLockedOffsite(t *testing.T) offsite {
	t.Helper()
	e := newEnv(t)
	e.d.EnsureImages(t, "busybox")
	m := testutil.StartMinIO(t)
	m.LockedBucket("locked")
	m.Bucket("plain")
	e.vars = append(e.vars, m.Env()...)
	o := offsite{e, m}
	o.ok(nil, "init")
	e.d.Docker(t, "run", "-d", "--name", "ol-app-1", "--label", "com.docker.compose.project=ol", "--label", "com.docker.compose.service=app",
		"-v", "ol_data:/data", "lifeboat-test/busybox:1", "sleep", "100000")
	t.Cleanup(func() { e.d.DockerErr("rm", "-f", "ol-app-1") })
	randomFile(t, filepath.Join(e.volume("ol_data"), "base"), 4<<20)
	e.backup("project/ol")
	return o
}

// TestOffsiteLock: replicate --lock-mode puts S3 object lock on every blob
// of the copy and extends it on the next run; the server refuses to
// delete a locked blob's version, and an overwrite leaves it unchanged; a
// lock into a bucket without object lock fails and says why.
func TestOffsiteLock(t *testing.T) {
	o := newLockedOffsite(t)
	cli := o.m.Client()
	const to = "s3://locked/host1"
	first := o.replicateLocked(to)
	blobs := o.lockedBlobs(cli, "locked", "host1/", first.LockedUntil)
	if int64(blobs) != first.BlobsSent {
		t.Fatalf("%d locked objects in the copy, %d blobs sent", blobs, first.BlobsSent)
	}
	time.Sleep(1100 * time.Millisecond) // retention dates are in seconds
	randomFile(t, filepath.Join(o.volume("ol_data"), "change"), 1<<20)
	o.backup("project/ol")
	second := o.replicateLocked(to)
	if second.BlobsExtended != first.BlobsSent || !second.LockedUntil.After(first.LockedUntil) {
		t.Fatalf("the second run extended %d locks of %d, locked until %v (first %v)", second.BlobsExtended, first.BlobsSent, second.LockedUntil, first.LockedUntil)
	}
	// Every blob, old and new, is locked until the second run's date.
	blobs = o.lockedBlobs(cli, "locked", "host1/", second.LockedUntil)
	t.Logf("locked copy: first run %d blobs sent, locked until %v; second run %d sent, %d extended, locked until %v; %d objects checked",
		first.BlobsSent, first.LockedUntil, second.BlobsSent, second.BlobsExtended, second.LockedUntil, blobs)

	t.Run("offsite verify passes on the locked copy", func(t *testing.T) {
		v, r := o.verify(to, "--lock-mode", "compliance")
		if r.code != 0 || !v.OK || len(v.Checks) != 4 || v.BlobsLocked != int64(blobs) {
			t.Fatalf("offsite verify of a locked copy: exit %d, %+v\n%s", r.code, v, r.stderr)
		}
		for _, c := range v.Checks {
			t.Logf("verify %s: %s: ok=%v %s", to, c.Name, c.OK, c.Detail)
		}
		t.Logf("verify: %d blobs, %d locked, earliest until %v", v.Blobs, v.BlobsLocked, v.LockedUntil)
		human := o.ok(nil, "offsite", "verify", "--to", to).stdout
		if strings.Count(human, " passed ") != 4 {
			t.Fatalf("offsite verify prints:\n%s", human)
		}
	})

	t.Run("delete and overwrite of a locked blob are refused", func(t *testing.T) {
		pack := firstObject(t, cli, "locked", "host1/p")
		orig := readVersion(t, cli, "locked", pack.Key, pack.VersionID)
		err := cli.RemoveObject(t.Context(), "locked", pack.Key, minio.RemoveObjectOptions{VersionID: pack.VersionID})
		if err == nil {
			t.Fatalf("the server deleted the locked version of %s", pack.Key)
		}
		t.Logf("delete of %s (version %s): %v", pack.Key, pack.VersionID, err)
		if _, err := cli.PutObject(t.Context(), "locked", pack.Key, strings.NewReader("ransom"), 6, minio.PutObjectOptions{}); err != nil {
			t.Fatalf("overwrite %s: %v", pack.Key, err)
		}
		if got := readVersion(t, cli, "locked", pack.Key, pack.VersionID); got != orig {
			t.Fatalf("the locked version of %s changed after an overwrite", pack.Key)
		}
		t.Logf("overwrite of %s made a new version; the locked one (%d bytes) is unchanged", pack.Key, len(orig))
	})

	t.Run("offsite verify fails on a copy without lock", func(t *testing.T) {
		o.replicate("s3://plain/host1")
		v, r := o.verify("s3://plain/host1")
		failed := map[string]bool{}
		for _, c := range v.Checks {
			failed[c.Name] = !c.OK
			t.Logf("verify s3://plain/host1: %s: ok=%v %s", c.Name, c.OK, c.Detail)
		}
		if r.code != 1 || v.OK || len(failed) != 4 || !failed["bucket-lock"] || !failed["blob-retention"] || !failed["canary-delete"] || !failed["canary-overwrite"] {
			t.Fatalf("offsite verify of a copy without lock: exit %d, %+v\n%s", r.code, v, r.stderr)
		}
	})

	t.Run("offsite verify fails when the keys can bypass governance", func(t *testing.T) {
		const gov = "s3://locked/gov"
		o.ok(nil, "replicate", "--to", gov, "--lock-mode", "governance", "--lock-period", "1d")
		// MinIO's root keys may bypass a governance lock: so may an
		// attacker holding them.
		v, r := o.verify(gov)
		for _, c := range v.Checks {
			t.Logf("verify %s: %s: ok=%v %s", gov, c.Name, c.OK, c.Detail)
			if c.Name == "canary-delete" && (c.OK || !strings.Contains(c.Detail, "BypassGovernanceRetention")) {
				t.Fatalf("canary-delete with keys that bypass governance: %+v", c)
			}
		}
		if r.code != 1 || v.OK {
			t.Fatalf("offsite verify of a governance copy with root keys: exit %d, %+v", r.code, v)
		}
	})

	t.Run("a lock into a bucket without object lock fails", func(t *testing.T) {
		r := o.run(nil, "replicate", "--to", "s3://plain/host1", "--lock-mode", "compliance", "--lock-period", "1d")
		if r.code != 1 || !strings.Contains(r.stderr, "object lock") {
			t.Fatalf("a locked copy into a bucket without lock: exit %d: %s", r.code, r.stderr)
		}
		t.Logf("into a bucket without lock: %s", strings.TrimSpace(r.stderr))
		r = o.run(nil, "replicate", "--to", t.TempDir(), "--lock-mode", "compliance", "--lock-period", "1d")
		if r.code != 1 || !strings.Contains(r.stderr, "needs an S3 copy") {
			t.Fatalf("a locked copy into a directory: exit %d: %s", r.code, r.stderr)
		}
	})
}

// lockedBlobs checks that every current object under prefix carries a
// compliance lock until at least until, and counts them.
func (o offsite) lockedBlobs(cli *minio.Client, bucket, prefix string, until time.Time) int {
	o.t.Helper()
	n := 0
	for obj := range cli.ListObjects(o.t.Context(), bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if obj.Err != nil {
			o.t.Fatal(obj.Err)
		}
		mode, ret, err := cli.GetObjectRetention(o.t.Context(), bucket, obj.Key, "")
		if err != nil || mode == nil || *mode != minio.Compliance || ret == nil || ret.Before(until) {
			o.t.Fatalf("retention of %s: %v until %v (%v), want compliance until %v or later", obj.Key, mode, ret, err, until)
		}
		n++
	}
	if n == 0 {
		o.t.Fatalf("no objects under %s/%s", bucket, prefix)
	}
	return n
}

func firstObject(t *testing.T, cli *minio.Client, bucket, prefix string) minio.ObjectInfo {
	t.Helper()
	for obj := range cli.ListObjects(t.Context(), bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true, WithVersions: true}) {
		if obj.Err != nil {
			t.Fatal(obj.Err)
		}
		return obj
	}
	t.Fatalf("no object under %s/%s", bucket, prefix)
	return minio.ObjectInfo{}
}

func readVersion(t *testing.T, cli *minio.Client, bucket, key, version string) string {
	t.Helper()
	obj, err := cli.GetObject(t.Context(), bucket, key, minio.GetObjectOptions{VersionID: version})
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	b, err := io.ReadAll(obj)
	if err != nil {
		t.Fatalf("read %s version %s: %v", key, version, err)
	}
	return string(b)
}

type verifyResult struct {
	MessageType string `json:"message_type"`
	OK          bool   `json:"ok"`
	Checks      []struct {
		Name   string `json:"name"`
		OK     bool   `json:"ok"`
		Detail string `json:"detail"`
	} `json:"checks"`
	Blobs       int64     `json:"blobs"`
	BlobsLocked int64     `json:"blobs_locked"`
	LockedUntil time.Time `json:"locked_until"`
}

// verify runs offsite verify --json on the copy at to.
func (o offsite) verify(to string, args ...string) (verifyResult, result) {
	o.t.Helper()
	var v verifyResult
	r := o.run(nil, append([]string{"offsite", "verify", "--to", to, "--json"}, args...)...)
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || v.MessageType != "summary" {
		o.t.Fatalf("offsite verify --json: exit %d: %q: %v\n%s", r.code, r.stdout, err, r.stderr)
	}
	return v, r
}

// TestServeOffsiteVerify: the daemon replicates with offsite.lock and
// proves the lock with its offsite-verify job; the metric says so.
func TestServeOffsiteVerify(t *testing.T) {
	o := newLockedOffsite(t)
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("offsite-test-token-0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "lifeboat.yaml")
	yaml := "offsite:\n  to: s3://locked/daemon\n  schedule: never\n  lock: {mode: compliance, period: 1d}\n  verify_schedule: \"@weekly\"\n"
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := o.serve(t, freePort(t), tokenFile, "LIFEBOAT_CONFIG="+cfg)
	run := func(kind string) apiJob {
		t.Helper()
		var j apiJob
		if code := srv.api("POST", "/api/v1/jobs", map[string]string{"kind": kind}, &j); code != 202 {
			t.Fatalf("POST %s job: %d %+v", kind, code, j)
		}
		return srv.waitJob(j.ID, 2*time.Minute)
	}
	if j := run("replicate"); j.State != "succeeded" || !strings.Contains(string(j.Result), `"locked_until"`) {
		t.Fatalf("the daemon's locked replicate: %+v\n%s", j, srv.logs())
	}
	j := run("offsite-verify")
	var v verifyResult
	if err := json.Unmarshal(j.Result, &v); err != nil || j.State != "succeeded" || !v.OK || len(v.Checks) != 4 {
		t.Fatalf("the daemon's offsite-verify: %+v %v\n%s", j, err, srv.logs())
	}
	m := srv.metrics(t)
	if !strings.Contains(m, "\nlifeboat_offsite_verify_last_ok 1\n") {
		t.Fatalf("metrics after a passed offsite-verify:\n%s", m)
	}
	for _, s := range []string{o.m.SecretKey, offsitePassword} {
		if strings.Contains(string(j.Result)+strings.Join(j.Log, "\n")+string(m), s) {
			t.Errorf("a secret (%.4s…) in the job or the metrics", s)
		}
	}
	t.Logf("daemon: offsite-verify %s: %d checks passed, %d of %d blobs locked until %v or later; lifeboat_offsite_verify_last_ok 1",
		j.State, len(v.Checks), v.BlobsLocked, v.Blobs, v.LockedUntil)
}

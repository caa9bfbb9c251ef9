package e2e

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lifeboat-backup/lifeboat/internal/testutil"
)

func randomFile(t *testing.T, path string, size int) {
	t.Helper()
	b := make([]byte, size)
	rand.Read(b)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func sumDir(t *testing.T, dir string) string {
	t.Helper()
	h := sha256.New()
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		rel, _ := filepath.Rel(dir, p)
		io.WriteString(h, rel)
		_, err = io.Copy(h, f)
		return err
	})
	if err != nil {
		t.Fatalf("sum %s: %v", dir, err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

type replStats struct {
	MessageType  string  `json:"message_type"`
	BlobsSent    int64   `json:"blobs_sent"`
	BytesSent    int64   `json:"bytes_sent"`
	BlobsPresent int64   `json:"blobs_already_there"`
	BytesPresent int64   `json:"bytes_already_there"`
	DurationNS   int64   `json:"duration_ns"`
	Rate         float64 `json:"bytes_per_second"`
}

const offsitePassword = "correct horse battery staple" // newEnv's

// offsite is a TestOffsite environment: a lifeboat env beside a MinIO.
type offsite struct {
	*env
	m *testutil.MinIO
}

// run runs lifeboat and fails the test if a secret shows in its output.
func (o offsite) run(extra []string, args ...string) result {
	o.t.Helper()
	r := o.env.run(extra, args...)
	for _, s := range []string{o.m.SecretKey, offsitePassword} {
		if strings.Contains(r.stdout+r.stderr, s) {
			o.t.Errorf("lifeboat %v printed a secret (%.4s…)", args, s)
		}
	}
	return r
}

func (o offsite) ok(extra []string, args ...string) result {
	o.t.Helper()
	r := o.run(extra, args...)
	if r.code != 0 {
		o.t.Fatalf("lifeboat %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

func (o offsite) replicate(to string) replStats {
	o.t.Helper()
	var st replStats
	out := o.ok(nil, "replicate", "--to", to, "--json").stdout
	if err := json.Unmarshal([]byte(out), &st); err != nil || st.MessageType != "summary" {
		o.t.Fatalf("replicate --json: %q: %v", out, err)
	}
	return st
}

// points counts the restore points of unit in the repository at repo,
// through a cache of its own (a fresh machine).
func (o offsite) points(repo, unit string) int {
	o.t.Helper()
	out := o.ok([]string{"LIFEBOAT_REPOSITORY=" + repo, "LIFEBOAT_CACHE_DIR=" + o.t.TempDir()}, "snapshots", "--json").stdout
	return strings.Count(out, `"unit":"`+unit+`"`)
}

// TestOffsite: replicate to a real S3 server (MinIO on 127.0.0.1) sends
// about the change each time; a cut (the server stopped mid-copy) fails
// cleanly, leaves the previous copy intact, and the next run completes it;
// with the local repository gone, a project comes back from S3 alone on
// another daemon; a repository can live on S3 directly. Keys and password
// stay out of output, the process list, state files and point labels.
func TestOffsite(t *testing.T) {
	e := newEnv(t)
	e.d.EnsureImages(t, "busybox")
	m := testutil.StartMinIO(t)
	m.Bucket("offsite")
	e.vars = append(e.vars, m.Env()...)
	o := offsite{e, m}
	o.ok(nil, "init")
	e.d.Docker(t, "run", "-d", "--name", "os-app-1", "--label", "com.docker.compose.project=os", "--label", "com.docker.compose.service=app",
		"-v", "os_data:/data", "lifeboat-test/busybox:1", "sleep", "100000")
	defer e.d.DockerErr("rm", "-f", "os-app-1")
	mp := e.d.Docker(t, "volume", "inspect", "-f", "{{.Mountpoint}}", "os_data")
	randomFile(t, filepath.Join(mp, "base"), 20<<20)
	e.backup("project/os")
	const to = "s3://offsite/host1"

	first := o.replicate(to)
	if first.BytesSent < 20<<20 {
		t.Fatalf("first replication sent %d bytes of 20 MiB of data", first.BytesSent)
	}
	const change = 20 << 20
	randomFile(t, filepath.Join(mp, "change"), change)
	e.backup("project/os")
	second := o.replicate(to)
	t.Logf("replicate: first %d bytes (%d blobs) in %v; after a %d-byte change, %d bytes sent (%d blobs; %d blobs, %d bytes already there) in %v",
		first.BytesSent, first.BlobsSent, time.Duration(first.DurationNS), change, second.BytesSent, second.BlobsSent,
		second.BlobsPresent, second.BytesPresent, time.Duration(second.DurationNS))
	// Random data does not compress: the change plus its metadata.
	if second.BytesSent < change || second.BytesSent > change+change/10 {
		t.Fatalf("the second replication sent %d bytes for a change of %d", second.BytesSent, change)
	}
	if again := o.replicate(to); again.BlobsSent != 0 {
		t.Fatalf("a replication with nothing new sent %d blobs, %d bytes", again.BlobsSent, again.BytesSent)
	}

	t.Run("a cut fails cleanly and the next run completes", func(t *testing.T) {
		o := offsite{&env{}, m}
		*o.env = *e
		o.env.t = t
		for i := range 6 {
			randomFile(t, filepath.Join(mp, "more"+string(rune('a'+i))), 6<<20)
		}
		o.backup("project/os")
		errOut, err := o.cutReplication(to)
		if err == nil || !strings.Contains(errOut, "replicate to "+to+" at "+m.Endpoint) || !strings.Contains(errOut, "the next run goes on") {
			t.Fatalf("a cut replication: %v\n%s", err, errOut)
		}
		if strings.Contains(errOut, "panic") || strings.Contains(errOut, "goroutine ") {
			t.Fatalf("a cut replication panicked:\n%s", errOut)
		}
		t.Logf("the cut replication: %v: %s", err, strings.TrimSpace(errOut))
		m.Start()
		// The cut copy is the previous copy: two points, consistent.
		if n := o.points(to, "project/os"); n != 2 {
			t.Fatalf("after the cut the copy lists %d points, want the 2 it had", n)
		}
		o.ok([]string{"LIFEBOAT_REPOSITORY=" + to}, "check")
		st := o.replicate(to)
		t.Logf("after the cut: %d blobs (%d bytes) sent, %d already there", st.BlobsSent, st.BytesSent, st.BlobsPresent)
		if st.BlobsSent == 0 || st.BlobsPresent == 0 {
			t.Fatalf("the run after a cut: %+v", st)
		}
		if n := o.points(to, "project/os"); n != 3 {
			t.Fatalf("the completed copy lists %d points, want 3", n)
		}
	})

	want := sumDir(t, mp)
	t.Run("restore from S3 alone on another daemon", func(t *testing.T) {
		if err := os.RemoveAll(e.repo); err != nil {
			t.Fatal(err)
		}
		os.RemoveAll(e.cache)
		d2, err := testutil.NewDaemonBeside(e.d)
		if err != nil {
			t.Fatal(err)
		}
		defer d2.Stop()
		d2.EnsureImages(t, "busybox")
		s3env := []string{"LIFEBOAT_REPOSITORY=" + to, "DOCKER_HOST=" + d2.Host}
		r := o.ok(s3env, "snapshots", "--json")
		if n := strings.Count(r.stdout, `"unit":"project/os"`); n != 3 {
			t.Fatalf("points on S3: %d, want 3\n%s", n, r.stdout)
		}
		o.ok(s3env, "restore", "project/os@latest")
		got := sumDir(t, d2.Docker(t, "volume", "inspect", "-f", "{{.Mountpoint}}", "os_data"))
		if got != want {
			t.Fatal("the volume restored from S3 differs from the original")
		}
		if st := d2.Docker(t, "inspect", "-f", "{{.State.Status}}", "os-app-1"); st != "running" {
			t.Fatalf("restored container is %s", st)
		}
	})

	t.Run("a repository directly on S3", func(t *testing.T) {
		m.Bucket("direct")
		const direct = "s3://direct/lifeboat"
		o.ok(nil, "init", "-r", direct)
		o.ok(nil, "backup", "project/os", "-r", direct, "--json")
		if n := o.points(direct, "project/os"); n != 1 {
			t.Fatalf("points in the S3 repository: %d, want 1", n)
		}
		for _, c := range []struct {
			unset, want string
			code        int
		}{
			{"AWS_SECRET_ACCESS_KEY=", "AWS_SECRET_ACCESS_KEY", 1},
			{"LIFEBOAT_S3_ENDPOINT=", "LIFEBOAT_S3_ENDPOINT", 1},
			{"LIFEBOAT_PASSWORD_FILE=", "LIFEBOAT_PASSWORD_FILE", 12},
		} {
			r := o.run([]string{"LIFEBOAT_REPOSITORY=" + direct, c.unset}, "snapshots")
			if r.code != c.code || !strings.Contains(r.stderr, c.want) {
				t.Errorf("snapshots with %s: exit %d, want %d and a message naming %s: %s", c.unset, r.code, c.code, c.want, r.stderr)
			}
		}
	})

	t.Run("no secret in state files or labels", func(t *testing.T) {
		// newEnv's directory holds the cache (kopia's connection configs),
		// the state dir and what is left of the repository; the password
		// file is the one place the password belongs.
		root := filepath.Dir(e.pwFile)
		for _, s := range []string{m.SecretKey, offsitePassword} {
			mustNotHold(t, root, s, e.pwFile)
		}
		// The buckets: kopia encrypts everything but the format blob.
		mustNotHold(t, filepath.Join(m.DataDir, "offsite"), offsitePassword, "")
		mustNotHold(t, filepath.Join(m.DataDir, "direct"), offsitePassword, "")
		// Restore points' labels, as lifeboat shows them.
		o.ok([]string{"LIFEBOAT_REPOSITORY=s3://direct/lifeboat"}, "snapshots", "--json")
	})
}

// cutReplication starts a slowed-down replication, stops MinIO once the
// first blobs are in and returns what the command said and how it ended.
// Meanwhile it checks that no secret is in the process list.
func (o offsite) cutReplication(to string) (string, error) {
	t := o.t
	t.Helper()
	cmd := exec.Command(lifeboatBin, "replicate", "--to", to)
	cmd.Env = mergeEnv(os.Environ(), append(append([]string{}, o.vars...), "LIFEBOAT_TEST_FAILPOINT=replicate-slow"))
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var errOut bytes.Buffer
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		if strings.Contains(sc.Text(), "failpoint replicate-slow") {
			break
		}
		errOut.WriteString(sc.Text() + "\n")
	}
	ps, err := exec.Command("ps", "-eo", "args").Output()
	if err != nil || !strings.Contains(string(ps), "replicate --to "+to) {
		t.Fatalf("ps during a replication: %v\n%s", err, ps)
	}
	for _, s := range []string{o.m.SecretKey, offsitePassword} {
		if strings.Contains(string(ps), s) {
			t.Errorf("a secret (%.4s…) is in the process list", s)
		}
	}
	o.m.Stop()
	rest, _ := io.ReadAll(stderr)
	for _, line := range strings.Split(string(rest), "\n") {
		if !strings.Contains(line, "failpoint replicate-slow") {
			errOut.WriteString(line + "\n")
		}
	}
	return errOut.String(), cmd.Wait()
}

// mustNotHold fails when a file under dir, other than except, holds s.
func mustNotHold(t *testing.T, dir, s, except string) {
	t.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() || p == except {
			return err
		}
		n++
		if b, err := os.ReadFile(p); err != nil {
			return err
		} else if bytes.Contains(b, []byte(s)) {
			t.Errorf("%s holds a secret (%.4s…)", p, s)
		}
		return nil
	})
	if err != nil || n == 0 {
		t.Fatalf("search %s for secrets: %v, %d files", dir, err, n)
	}
}

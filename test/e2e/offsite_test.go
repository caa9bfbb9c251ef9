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
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
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
		io.Copy(h, f)
		return nil
	})
	return hex.EncodeToString(h.Sum(nil))
}

type replStats struct {
	BlobsSent    int64 `json:"blobs_sent"`
	BytesSent    int64 `json:"bytes_sent"`
	BlobsPresent int64 `json:"blobs_already_there"`
}

// TestOffsite: replicate to a real S3 server (MinIO on 127.0.0.1) sends
// about the change each time; a cut (the server stopped mid-copy) fails
// cleanly and the next run completes; with the local repository gone, a
// project comes back from S3 alone on another daemon. Keys and password
// stay out of arguments, output and state files.
func TestOffsite(t *testing.T) {
	e := newEnv(t)
	e.d.EnsureImages(t, "busybox")
	m := testutil.StartMinIO(t)
	m.Bucket("offsite")
	e.vars = append(e.vars, m.Env()...)
	e.ok("init")
	e.d.Docker(t, "run", "-d", "--name", "os-app-1", "--label", "com.docker.compose.project=os", "--label", "com.docker.compose.service=app",
		"-v", "os_data:/data", "lifeboat-test/busybox:1", "sleep", "100000")
	defer e.d.DockerErr("rm", "-f", "os-app-1")
	mp := e.d.Docker(t, "volume", "inspect", "-f", "{{.Mountpoint}}", "os_data")
	randomFile(t, filepath.Join(mp, "base"), 20<<20)
	e.backup("project/os")
	to := "s3://offsite/host1"

	replicate := func() replStats {
		t.Helper()
		var st replStats
		if err := json.Unmarshal([]byte(e.ok("replicate", "--to", to, "--json").stdout), &st); err != nil {
			t.Fatal(err)
		}
		return st
	}
	first := replicate()
	if first.BytesSent < 20<<20 {
		t.Fatalf("first replication sent %d bytes of 20 MiB of data", first.BytesSent)
	}
	const change = 8 << 20
	randomFile(t, filepath.Join(mp, "change"), change)
	e.backup("project/os")
	second := replicate()
	t.Logf("replicate: first %d bytes (%d blobs); after an %d-byte change, %d bytes (%d blobs sent, %d already there)",
		first.BytesSent, first.BlobsSent, change, second.BytesSent, second.BlobsSent, second.BlobsPresent)
	if second.BytesSent < change*9/10 || second.BytesSent > change+4<<20 {
		t.Fatalf("the second replication sent %d bytes for a change of %d", second.BytesSent, change)
	}
	if again := replicate(); again.BytesSent > 64<<10 {
		t.Fatalf("a replication with nothing new sent %d bytes", again.BytesSent)
	}

	t.Run("a cut fails cleanly and the next run completes", func(t *testing.T) {
		for i := range 6 {
			randomFile(t, filepath.Join(mp, "more"+string(rune('a'+i))), 6<<20)
		}
		e.backup("project/os")
		cmd := exec.Command(lifeboatBin, "replicate", "--to", to)
		cmd.Env = mergeEnv(os.Environ(), append(append([]string{}, e.vars...), "LIFEBOAT_TEST_FAILPOINT=replicate-slow"))
		stderr, _ := cmd.StderrPipe()
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
		// Meanwhile nothing secret is in the process list.
		ps, _ := exec.Command("ps", "-eo", "args").Output()
		if strings.Contains(string(ps), m.SecretKey) || strings.Contains(string(ps), "correct horse") {
			t.Error("a secret is in the process list")
		}
		m.Stop()
		rest, _ := io.ReadAll(stderr)
		errOut.Write(rest)
		err := cmd.Wait()
		if err == nil || !strings.Contains(errOut.String(), "replicate to s3://offsite/host1") || !strings.Contains(errOut.String(), "the next run goes on") {
			t.Fatalf("a cut replication: %v\n%s", err, errOut.String())
		}
		if strings.Contains(errOut.String(), "panic") {
			t.Fatalf("panic: %s", errOut.String())
		}
		m.Start()
		st := replicate()
		t.Logf("after the cut: %d blobs sent, %d already there", st.BlobsSent, st.BlobsPresent)
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
		r := e.run(s3env, "snapshots", "--json")
		if r.code != 0 || strings.Count(r.stdout, `"unit":"project/os"`) != 3 {
			t.Fatalf("points on S3: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
		}
		if r := e.run(s3env, "restore", "project/os@latest"); r.code != 0 {
			t.Fatalf("restore from S3: %s", r.stderr)
		}
		got := sumDir(t, d2.Docker(t, "volume", "inspect", "-f", "{{.Mountpoint}}", "os_data"))
		if got != want {
			t.Fatal("the volume restored from S3 differs from the original")
		}
		if st := d2.Docker(t, "inspect", "-f", "{{.State.Status}}", "os-app-1"); st != "running" {
			t.Fatalf("restored container is %s", st)
		}
		// The connection state kopia keeps for the S3 repository holds no key.
		filepath.WalkDir(e.cache, func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				if b, _ := os.ReadFile(p); bytes.Contains(b, []byte(m.SecretKey)) {
					t.Errorf("the S3 secret is in %s", p)
				}
			}
			return nil
		})
	})

	t.Run("a repository directly on S3", func(t *testing.T) {
		m.Bucket("direct")
		env := []string{"LIFEBOAT_REPOSITORY=s3://direct/lifeboat"}
		for _, args := range [][]string{{"init"}, {"backup", "project/os", "--json"}, {"snapshots"}} {
			r := e.run(env, args...)
			if r.code != 0 {
				t.Fatalf("%v: %s", args, r.stderr)
			}
			for _, s := range []string{m.SecretKey, "correct horse"} {
				if strings.Contains(r.stdout+r.stderr, s) {
					t.Fatalf("%v printed a secret", args)
				}
			}
		}
		if r := e.run([]string{"LIFEBOAT_REPOSITORY=s3://direct/lifeboat", "AWS_SECRET_ACCESS_KEY="}, "snapshots"); r.code == 0 || !strings.Contains(r.stderr, "AWS_SECRET_ACCESS_KEY") {
			t.Fatalf("without keys: exit %d, %s", r.code, r.stderr)
		}
	})
}

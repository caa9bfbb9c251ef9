package testutil

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// MinIO is a private S3 server on 127.0.0.1 for one test.
type MinIO struct {
	Endpoint  string // http://127.0.0.1:PORT
	AccessKey string
	SecretKey string
	t         testing.TB
	bin, dir  string
	addr      string
	cmd       *exec.Cmd
}

// StartMinIO starts MinIO (built by scripts/build-minio) on a free port of
// 127.0.0.1 with its own data directory. It fails the test, never skips,
// when the binary is missing.
func StartMinIO(t testing.TB) *MinIO {
	t.Helper()
	out, err := exec.Command(filepath.Join(RepoRoot(), "scripts", "build-minio")).Output()
	if err != nil {
		t.Fatalf("MinIO: scripts/build-minio: %v", err)
	}
	m := &MinIO{t: t, bin: strings.TrimSpace(string(out)), dir: t.TempDir(), AccessKey: "lbtestadmin", SecretKey: "lbtest-" + randomID() + "-secret"}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m.addr = l.Addr().String()
	l.Close()
	m.Endpoint = "http://" + m.addr
	m.Start()
	t.Cleanup(m.Stop)
	return m
}

// Start (re)starts the server on the same port and data.
func (m *MinIO) Start() {
	m.t.Helper()
	m.cmd = exec.Command(m.bin, "server", filepath.Join(m.dir, "data"), "--address", m.addr, "--quiet")
	// The keys go through the environment, as MinIO reads them, not the
	// command line.
	m.cmd.Env = append(os.Environ(), "MINIO_ROOT_USER="+m.AccessKey, "MINIO_ROOT_PASSWORD="+m.SecretKey,
		"MINIO_BROWSER=off", "MINIO_UPDATE=off", "MINIO_CI_CD=1")
	logf, err := os.OpenFile(filepath.Join(m.dir, "minio.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		m.t.Fatal(err)
	}
	m.cmd.Stdout, m.cmd.Stderr = logf, logf
	m.cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := m.cmd.Start(); err != nil {
		m.t.Fatalf("start MinIO: %v", err)
	}
	go m.cmd.Wait()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(m.Endpoint + "/minio/health/live")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(m.dir, "minio.log"))
			m.t.Fatalf("MinIO did not start in 30 s:\n%s", log)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Stop kills the server: a cut, as far as a client can tell.
func (m *MinIO) Stop() {
	if m.cmd != nil && m.cmd.Process != nil {
		m.cmd.Process.Kill()
		for i := 0; i < 100; i++ {
			if c, err := net.DialTimeout("tcp", m.addr, 50*time.Millisecond); err != nil {
				break
			} else {
				c.Close()
			}
			time.Sleep(50 * time.Millisecond)
		}
		m.cmd = nil
	}
}

// Bucket creates a bucket with a SigV4-signed PUT, which curl speaks; the
// keys reach curl on stdin, never in its arguments.
func (m *MinIO) Bucket(name string) {
	m.t.Helper()
	cmd := exec.CommandContext(context.Background(), "curl", "-sf", "-K", "-", "--aws-sigv4", "aws:amz:us-east-1:s3", "-X", "PUT", m.Endpoint+"/"+name)
	cmd.Stdin = strings.NewReader(fmt.Sprintf("user = \"%s:%s\"\n", m.AccessKey, m.SecretKey))
	out, err := cmd.CombinedOutput()
	if err != nil {
		m.t.Fatalf("create bucket %s: %v %s", name, err, out)
	}
}

// Env is what lifeboat needs to reach the server.
func (m *MinIO) Env() []string {
	return []string{"LIFEBOAT_S3_ENDPOINT=" + m.Endpoint, "AWS_ACCESS_KEY_ID=" + m.AccessKey, "AWS_SECRET_ACCESS_KEY=" + m.SecretKey}
}

func (m *MinIO) String() string { return fmt.Sprintf("MinIO at %s", m.Endpoint) }

package testutil

import (
	"bytes"
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

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// MinIO is a private S3 server on 127.0.0.1 for one test.
type MinIO struct {
	Endpoint  string // http://127.0.0.1:PORT
	AccessKey string
	SecretKey string
	DataDir   string // the server's storage: buckets are directories in it
	t         testing.TB
	bin, dir  string
	addr      string
	cmd       *exec.Cmd
	exited    chan struct{}
}

// StartMinIO starts MinIO on a free port of 127.0.0.1 with its own data
// directory, and stops it when the test ends. The binary is the one
// scripts/build-minio built (scripts/install-deps runs it); when it is
// missing the test fails, never skips, and says how to build it: building
// here would spend minutes inside a test's timeout.
func StartMinIO(t testing.TB) *MinIO {
	t.Helper()
	var stderr bytes.Buffer
	check := exec.Command(filepath.Join(RepoRoot(), "scripts", "build-minio"), "--check")
	check.Stderr = &stderr
	out, err := check.Output()
	if err != nil {
		t.Fatalf("MinIO is not built: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	dir := t.TempDir()
	m := &MinIO{t: t, bin: strings.TrimSpace(string(out)), dir: dir, DataDir: filepath.Join(dir, "data"),
		AccessKey: "lbtestadmin", SecretKey: "lbtest-" + randomID() + "-secret"}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port for MinIO: %v", err)
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
	m.cmd = exec.Command(m.bin, "server", m.DataDir, "--address", m.addr, "--quiet")
	// The keys go through the environment, as MinIO reads them, not the
	// command line, where ps would show them.
	m.cmd.Env = append(os.Environ(), "MINIO_ROOT_USER="+m.AccessKey, "MINIO_ROOT_PASSWORD="+m.SecretKey,
		"MINIO_BROWSER=off", "MINIO_UPDATE=off", "MINIO_CI_CD=1")
	logf, err := os.OpenFile(filepath.Join(m.dir, "minio.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		m.t.Fatalf("MinIO log: %v", err)
	}
	defer logf.Close()
	m.cmd.Stdout, m.cmd.Stderr = logf, logf
	m.cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := m.cmd.Start(); err != nil {
		m.t.Fatalf("start MinIO: %v", err)
	}
	exited := make(chan struct{})
	m.exited = exited
	go func(c *exec.Cmd) { c.Wait(); close(exited) }(m.cmd)
	deadline := time.Now().Add(30 * time.Second)
	for {
		// ready, not live: a live server may still answer S3 calls 503
		// while it initializes its drive.
		resp, err := http.Get(m.Endpoint + "/minio/health/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-exited:
			log, _ := os.ReadFile(filepath.Join(m.dir, "minio.log"))
			m.t.Fatalf("MinIO exited at start:\n%s", log)
		default:
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(m.dir, "minio.log"))
			m.t.Fatalf("MinIO did not start in 30 s:\n%s", log)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Stop kills the server, as a cut link or a crash looks to a client, and
// waits until it has exited, so a Start after it gets the port.
func (m *MinIO) Stop() {
	if m.cmd == nil {
		return
	}
	m.cmd.Process.Kill()
	<-m.exited
	m.cmd = nil
}

// Bucket creates a bucket with a SigV4-signed PUT, which curl speaks; the
// keys reach curl on stdin, never in its arguments.
func (m *MinIO) Bucket(name string) { m.t.Helper(); m.bucket(name) }

// LockedBucket creates a bucket with S3 object lock enabled (and so
// versioning, which object lock implies). Lock can only be enabled when a
// bucket is created.
func (m *MinIO) LockedBucket(name string) {
	m.t.Helper()
	m.bucket(name, "-H", "x-amz-bucket-object-lock-enabled: true")
}

func (m *MinIO) bucket(name string, extra ...string) {
	m.t.Helper()
	// A busy server answers 503 (SlowDown) now and then: try again.
	for attempt := 1; ; attempt++ {
		args := append([]string{"-sSf", "-K", "-", "--aws-sigv4", "aws:amz:us-east-1:s3", "-X", "PUT"}, extra...)
		cmd := exec.Command("curl", append(args, m.Endpoint+"/"+name)...)
		cmd.Stdin = strings.NewReader(fmt.Sprintf("user = \"%s:%s\"\n", m.AccessKey, m.SecretKey))
		out, err := cmd.CombinedOutput()
		if err == nil {
			return
		}
		if attempt == 20 || !strings.Contains(string(out), "503") {
			m.t.Fatalf("create bucket %s: %v %s", name, err, out)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// Client is an S3 client of the server with its root keys, for tests
// that look at objects, versions and their retention directly.
func (m *MinIO) Client() *minio.Client {
	m.t.Helper()
	cli, err := minio.New(strings.TrimPrefix(m.Endpoint, "http://"), &minio.Options{
		Creds: credentials.NewStaticV4(m.AccessKey, m.SecretKey, ""), Secure: false})
	if err != nil {
		m.t.Fatalf("S3 client of %s: %v", m, err)
	}
	return cli
}

// Env is what lifeboat needs to reach the server.
func (m *MinIO) Env() []string {
	return []string{"LIFEBOAT_S3_ENDPOINT=" + m.Endpoint, "AWS_ACCESS_KEY_ID=" + m.AccessKey, "AWS_SECRET_ACCESS_KEY=" + m.SecretKey}
}

// Setenv sets Env for the rest of the test, for code under test that reads
// the environment in this process.
func (m *MinIO) Setenv(t *testing.T) {
	t.Helper()
	for _, kv := range m.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
}

func (m *MinIO) String() string { return fmt.Sprintf("MinIO at %s", m.Endpoint) }

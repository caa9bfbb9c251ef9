package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The test binary doubles as the slow-client process of
// TestServeSlowClients: 20,000 client sockets and the test's own do not
// fit under this machine's descriptor limit (20,000, which an unprivileged
// process cannot raise), so the clients live in children. init, not
// TestMain, so the shared main_test.go is not involved.
func init() {
	if spec := os.Getenv("LIFEBOAT_E2E_SLOW_CLIENTS"); spec != "" {
		os.Exit(slowClientsChild(spec))
	}
}

// slowClientsChild opens count connections from 127.0.0.<first>… (per
// of them from each), starts on each a POST whose body never comes, says
// "ready N" and holds them until stdin closes.
func slowClientsChild(spec string) int {
	var addr string
	var count, first, per int
	if _, err := fmt.Sscanf(spec, "%s %d %d %d", &addr, &count, &first, &per); err != nil {
		fmt.Fprintln(os.Stderr, "spec:", err)
		return 2
	}
	var rl syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl) == nil {
		rl.Cur = rl.Max
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl)
	}
	var mu sync.Mutex
	var conns []net.Conn
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < count; i += 8 {
				d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(first+i/per))}}
				c, err := d.Dial("tcp", addr)
				if err != nil {
					continue
				}
				fmt.Fprintf(c, "POST /api/v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{")
				mu.Lock()
				conns = append(conns, c)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	fmt.Printf("ready %d\n", len(conns))
	io.Copy(io.Discard, os.Stdin)
	for _, c := range conns {
		c.Close()
	}
	return 0
}

// TestServeSlowClients: 20,000 clients that send a POST's headers and
// never its body, from 10 loopback addresses, against the real lifeboat
// serve. Meanwhile an authenticated request answers within a second and a
// backup submitted during the flood succeeds (the engine connection it
// needs still gets a descriptor).
func TestServeSlowClients(t *testing.T) {
	const total, children, addrs = 20000, 2, 10
	e := newEnvOwnDaemon(t)
	e.d.EnsureImages(t, "busybox")
	e.ok("init")
	e.vars = append(e.vars, "LIFEBOAT_STATE_DIR="+filepath.Join(t.TempDir(), "state"))
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("slow-clients-token-0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.d.Docker(t, "run", "-d", "--name", "steady", "-v", "steady_data:/data", "lifeboat-test/busybox:1", "sh", "-c", "echo hi > /data/f; sleep 100000")
	addr := freePort(t)
	p := e.serve(t, addr, tokenFile)

	var polls, failed int
	var slowest time.Duration
	stop := make(chan struct{})
	var poller sync.WaitGroup
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	poller.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			req, _ := http.NewRequest("GET", p.url+"/api/v1/units", nil)
			req.Header.Set("Authorization", "Bearer "+p.token)
			start := time.Now()
			resp, err := client.Do(req)
			slowest = max(slowest, time.Since(start))
			polls++
			if err != nil || resp.StatusCode != 200 {
				failed++
				continue
			}
			resp.Body.Close()
		}
	})

	per := total / children
	opened := 0
	var mu sync.Mutex
	var ready sync.WaitGroup
	start := time.Now()
	for i := range children {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), fmt.Sprintf("LIFEBOAT_E2E_SLOW_CLIENTS=%s %d %d %d", addr, per, 2+i*addrs/children, per/(addrs/children)))
		stdin, _ := cmd.StdinPipe()
		stdout, _ := cmd.StdoutPipe()
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { stdin.Close(); cmd.Wait() })
		ready.Go(func() {
			line, _ := bufio.NewReader(stdout).ReadString('\n')
			n, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "ready ")))
			if err != nil {
				t.Errorf("slow-client process: %q", line)
			}
			mu.Lock()
			opened += n
			mu.Unlock()
		})
	}
	ready.Wait()
	storm := time.Since(start)

	// Every slow client is connected and waiting: back up now.
	var j apiJob
	submitStart := time.Now()
	code := p.api("POST", "/api/v1/jobs", map[string]any{"kind": "backup", "unit": "container/steady"}, &j)
	submitted := time.Since(submitStart)
	if code != 202 {
		t.Fatalf("a backup submitted during the flood: %d %+v", code, j)
	}
	done := p.waitJob(j.ID, 90*time.Second)
	close(stop)
	poller.Wait()
	t.Logf("%d slow clients connected in %v; authenticated requests: %d, %d failed, slowest %v; backup accepted in %v, ended %s",
		opened, storm.Round(time.Millisecond), polls, failed, slowest.Round(time.Millisecond), submitted.Round(time.Millisecond), done.State)
	if opened < total*99/100 {
		t.Fatalf("only %d of %d slow clients connected", opened, total)
	}
	if done.State != "succeeded" {
		t.Fatalf("the backup submitted during the flood: %+v\ndaemon log:\n%s", done, p.logs())
	}
	if failed > 0 || slowest > time.Second || submitted > time.Second {
		t.Fatalf("authenticated requests: %d of %d failed, slowest %v, submit %v; want none failed, all under 1 s", failed, polls, slowest, submitted)
	}
}

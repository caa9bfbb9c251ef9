package server

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestMain doubles as the slow-client process of TestSlowClients: one
// process cannot hold 20,000 client sockets and the server's under this
// machine's descriptor limit, so the clients live in children.
func TestMain(m *testing.M) {
	if spec := os.Getenv("LIFEBOAT_TEST_SLOW_CLIENTS"); spec != "" {
		os.Exit(slowClients(spec))
	}
	os.Exit(m.Run())
}

// serve runs h on 127.0.0.1 with the given limits and returns its URL and
// its limiting listener.
func serve(t *testing.T, h http.Handler, l Limits) (string, *limitListener) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, sln, err := HTTPServer(h, ln, l, "", "", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(sln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		srv.Close()
	})
	return "http://" + ln.Addr().String(), sln.(*limitListener)
}

// closedWithin waits until the server ends conn, and says how long it took.
func closedWithin(t *testing.T, conn net.Conn, max time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	conn.SetReadDeadline(start.Add(max))
	_, err := io.Copy(io.Discard, conn)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("the server kept the connection open over %v", max)
	}
	return time.Since(start)
}

func TestTimeouts(t *testing.T) {
	url, _ := serve(t, New(testOptions(&fakeBackend{})), Limits{ReadHeaderTimeout: 300 * time.Millisecond, ReadTimeout: 600 * time.Millisecond, IdleTimeout: 500 * time.Millisecond})
	addr := strings.TrimPrefix(url, "http://")
	dial := func() net.Conn {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	t.Run("slow headers", func(t *testing.T) {
		c := dial()
		fmt.Fprintf(c, "GET /api/v1/units HTTP/1.1\r\nHost: x\r\n")
		if d := closedWithin(t, c, 3*time.Second); d > 2*time.Second {
			t.Fatalf("closed after %v", d)
		}
	})
	t.Run("slow body", func(t *testing.T) {
		c := dial()
		fmt.Fprintf(c, "POST /api/v1/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"kind\":", adminToken)
		if d := closedWithin(t, c, 3*time.Second); d > 2*time.Second {
			t.Fatalf("closed after %v", d)
		}
	})
	t.Run("idle keep-alive", func(t *testing.T) {
		c := dial()
		fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("healthz: %v %v", resp, err)
		}
		resp.Body.Close()
		if d := closedWithin(t, c, 3*time.Second); d > 2*time.Second {
			t.Fatalf("closed after %v", d)
		}
	})
	t.Run("huge header", func(t *testing.T) {
		c := dial()
		fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: %s\r\n\r\n", strings.Repeat("a", 200<<10))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Fatalf("a 200 KiB header: %v %v", resp, err)
		}
	})
}

func TestLimitListener(t *testing.T) {
	url, ll := serve(t, New(testOptions(&fakeBackend{})), Limits{MaxConns: 6, MaxConnsPerClient: 3})
	addr := strings.TrimPrefix(url, "http://")
	dialFrom := func(ip string) net.Conn {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	healthy := func(c net.Conn) bool {
		c.SetDeadline(time.Now().Add(2 * time.Second))
		fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		return err == nil && resp.StatusCode == 200
	}
	var held []net.Conn
	for range 3 {
		c := dialFrom("127.0.0.2")
		if !healthy(c) {
			t.Fatal("a connection under the per-client cap was refused")
		}
		held = append(held, c)
	}
	if healthy(dialFrom("127.0.0.2")) {
		t.Fatal("a 4th connection from one client was served")
	}
	for range 3 {
		if !healthy(dialFrom("127.0.0.3")) {
			t.Fatal("another client was refused")
		}
	}
	if healthy(dialFrom("127.0.0.4")) {
		t.Fatal("a connection over the total cap was served")
	}
	held[0].Close()
	deadline := time.Now().Add(2 * time.Second)
	for !healthy(dialFrom("127.0.0.4")) {
		if time.Now().After(deadline) {
			t.Fatal("a closed connection did not free its slot")
		}
		time.Sleep(50 * time.Millisecond)
	}
	ll.mu.Lock()
	defer ll.mu.Unlock()
	if ll.refused < 2 {
		t.Fatalf("the listener counted %d refusals, want at least 2", ll.refused)
	}
}

// slowClients is the child: it opens count connections from source
// addresses 127.0.0.<first>… (per of them each), starts on each a POST
// whose body never comes, says "ready" and holds them until stdin closes.
func slowClients(spec string) int {
	var addr string
	var count, first, per int
	if _, err := fmt.Sscanf(spec, "%s %d %d %d", &addr, &count, &first, &per); err != nil {
		fmt.Fprintln(os.Stderr, "spec:", err)
		return 2
	}
	raiseNoFile()
	conns := make([]net.Conn, 0, count)
	failed := 0
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < count; i += 8 {
				d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, byte((first+i/per)/256), byte((first+i/per)%256))}}
				c, err := d.Dial("tcp", addr)
				if err != nil {
					mu.Lock()
					failed++
					mu.Unlock()
					continue
				}
				// Headers complete, body promised and never sent: the
				// server reads (or discards) it until its read timeout.
				fmt.Fprintf(c, "POST /api/v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{")
				mu.Lock()
				conns = append(conns, c)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	fmt.Printf("ready %d %d\n", len(conns), failed)
	io.Copy(io.Discard, os.Stdin)
	for _, c := range conns {
		c.Close()
	}
	return 0
}

// raiseNoFile lifts the soft descriptor limit to the hard one.
func raiseNoFile() uint64 {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0
	}
	rl.Cur = rl.Max
	_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl)
	return rl.Cur
}

// openFDs counts this process's descriptors.
func openFDs(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// TestSlowClients: 20,000 clients that send a request's headers and never
// its body, from 10 addresses, against the server with its default
// limits. Meanwhile an authenticated client answers within a second, a
// job submitted meanwhile is accepted (the backend can still open files),
// and the server's descriptors stay within the connection cap.
func TestSlowClients(t *testing.T) {
	const total, children, addrs = 20000, 2, 10
	limit := raiseNoFile()
	b := &fakeBackend{}
	url, ll := serve(t, New(testOptions(b)), Limits{})
	addr := strings.TrimPrefix(url, "http://")
	t.Logf("RLIMIT_NOFILE %d; %d slow clients in %d processes from %d addresses; caps %d open, %d per client", limit, total, children, addrs, 1024, 64)
	baseFDs := openFDs(t)

	// The authenticated client polls all along, from 127.0.0.1.
	good := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	var slowest time.Duration
	var took []time.Duration
	var polls, bad int
	ask := func() {
		start := time.Now()
		r, _ := http.NewRequest("GET", url+"/api/v1/units", nil)
		r.Header.Set("Authorization", "Bearer "+viewerToken)
		resp, err := good.Do(r)
		d := time.Since(start)
		polls++
		slowest = max(slowest, d)
		took = append(took, d)
		if err != nil || resp.StatusCode != 200 {
			bad++
			t.Logf("authenticated request: %v %v", resp, err)
			return
		}
		resp.Body.Close()
	}
	// The same polls before the flood: what this machine's load alone
	// costs a request, so that the flood's cost is judged against it.
	for range 20 {
		ask()
		time.Sleep(50 * time.Millisecond)
	}
	slices.Sort(took)
	calm := took[len(took)*95/100]
	took, slowest, polls = nil, 0, 0
	stop := make(chan struct{})
	var pollers sync.WaitGroup
	pollers.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
				ask()
			}
		}
	})

	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Second)
	defer cancel()
	var ready sync.WaitGroup
	var mu sync.Mutex
	opened := 0
	per := total / children
	for i := range children {
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), fmt.Sprintf("LIFEBOAT_TEST_SLOW_CLIENTS=%s %d %d %d", addr, per, 2+i*addrs/children, per/(addrs/children)))
		stdin, _ := cmd.StdinPipe()
		stdout, _ := cmd.StdoutPipe()
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { stdin.Close(); cmd.Wait() })
		ready.Go(func() {
			line, err := bufio.NewReader(stdout).ReadString('\n')
			f := strings.Fields(line)
			if err != nil || len(f) != 3 {
				t.Errorf("slow-client process: %q %v", line, err)
				return
			}
			n, _ := strconv.Atoi(f[1])
			mu.Lock()
			opened += n
			mu.Unlock()
		})
	}
	start := time.Now()
	ready.Wait()
	storm := time.Since(start)

	// All 20,000 are connected and waiting: submit a job, ask once more.
	r, _ := http.NewRequest("POST", url+"/api/v1/jobs", strings.NewReader(`{"kind":"backup","unit":"container/web"}`))
	r.Header.Set("Authorization", "Bearer "+operatorToken)
	r.Header.Set("Content-Type", "application/json")
	jobStart := time.Now()
	resp, err := good.Do(r)
	if err != nil || resp.StatusCode != 202 {
		t.Fatalf("a job submitted during the flood: %v %v", resp, err)
	}
	resp.Body.Close()
	jobTime := time.Since(jobStart)
	fds := openFDs(t)
	close(stop)
	pollers.Wait()
	ll.mu.Lock()
	refused, open := ll.refused, ll.open
	ll.mu.Unlock()
	slices.Sort(took)
	p95 := time.Duration(0)
	if len(took) > 0 {
		p95 = took[len(took)*95/100]
	}
	t.Logf("%d slow clients connected in %v; server: %d held, %d refused, %d descriptors (%d before); authenticated: %d requests, 95th percentile %v, slowest %v; job accepted in %v",
		opened, storm.Round(time.Millisecond), open, refused, fds, baseFDs, polls, p95.Round(time.Millisecond), slowest.Round(time.Millisecond), jobTime.Round(time.Millisecond))
	if opened < total*99/100 {
		t.Fatalf("only %d of %d slow clients connected", opened, total)
	}
	// Starvation shows as failures and timeouts; one poll past a second
	// while this 2-core machine runs other tests does not. So: none fails,
	// and 95 in 100 answer, as does the job, within two seconds or within
	// four times what the same polls took before the flood, whichever is
	// longer (under a load of 20 a calm poll already takes hundreds of ms;
	// in CI, beside two end-to-end tests, one of few polls took 1.16 s).
	budget := max(2*time.Second, 4*calm)
	t.Logf("before the flood: 95th percentile %v; budget %v", calm.Round(time.Millisecond), budget)
	if bad > 0 || p95 > budget || jobTime > budget {
		t.Fatalf("authenticated requests: %d failed, 95th percentile %v (slowest %v), job %v; want none failed, under %v", bad, p95, slowest, jobTime, budget)
	}
	if fds > baseFDs+1024+64 {
		t.Fatalf("the server holds %d descriptors: the cap did not hold", fds)
	}
	if b.submits() != 1 {
		t.Fatalf("backend saw %d submits", b.submits())
	}
}

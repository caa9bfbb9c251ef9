package drill

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lifeboat-backup/lifeboat/internal/engine"
	"github.com/lifeboat-backup/lifeboat/internal/policy"
	"github.com/lifeboat-backup/lifeboat/internal/restore"
)

// probes runs the probes of every container that came up, each retried
// until it passes or the probe timeout ends: a service may answer only
// some time after its process runs.
func (d *drill) probes(ctx context.Context) {
	for _, c := range d.sb.Containers {
		if !c.Running {
			continue // stopped when the point was taken: not started
		}
		ps, err := policy.DrillProbes(c.Labels)
		if err != nil {
			d.add(Check{Name: "probe labels", Container: c.Name, Output: err.Error()}, time.Now())
			continue
		}
		for _, p := range ps {
			t0 := time.Now()
			if !d.up[c.Name] {
				d.add(Check{Name: p.Name(), Container: c.Name, Output: "not run: the container did not come up"}, t0)
				continue
			}
			var out string
			err := waitFor(ctx, d.opts.ProbeTimeout, func(ctx context.Context) error {
				var err error
				out, err = d.probe(ctx, c, p)
				return err
			})
			if err != nil {
				out = err.Error() + "\n" + out
			}
			d.add(Check{Name: p.Name(), Container: c.Name, Passed: err == nil, Output: out}, t0)
		}
	}
}

func (d *drill) probe(ctx context.Context, c restore.SandboxContainer, p policy.Probe) (string, error) {
	if p.Cmd != "" {
		var out bytes.Buffer
		r, err := d.eng.Exec(ctx, c.ID, engine.ExecSpec{Cmd: []string{"sh", "-c", p.Cmd}}, nil, &out, &out)
		if err == nil && r.ExitCode != 0 {
			err = fmt.Errorf("exited %d", r.ExitCode)
		}
		if err == nil && out.Len() == 0 {
			return "exit 0", nil
		}
		return out.String(), err
	}
	from, addr, err := d.httpRoute(ctx, c, p.Port)
	if err != nil {
		return "", err
	}
	return httpGet(ctx, from, addr, p.Path)
}

// httpRoute picks where an HTTP probe of c comes from: the network
// namespace of another running container of the sandbox on a network c
// is on (as a client of the service would be), else c's own; and c's
// address there.
func (d *drill) httpRoute(ctx context.Context, c restore.SandboxContainer, port int) (pid int, addr string, err error) {
	target, err := d.eng.Presence(ctx, c.ID)
	if err != nil {
		return 0, "", err
	}
	nets := make([]string, 0, len(target.IPs))
	for n := range target.IPs {
		nets = append(nets, n)
	}
	if len(nets) == 0 {
		return 0, "", fmt.Errorf("container %s has no address on any network", c.Sandboxed)
	}
	slices.Sort(nets)
	pid, ip := target.PID, target.IPs[nets[0]]
	for _, o := range d.sb.Containers {
		if o.ID == c.ID || !d.up[o.Name] {
			continue
		}
		op, err := d.eng.Presence(ctx, o.ID)
		if err != nil || op.PID == 0 {
			continue
		}
		if n := shared(nets, op.IPs); n != "" {
			pid, ip = op.PID, target.IPs[n]
			break
		}
	}
	if pid == 0 {
		return 0, "", fmt.Errorf("container %s is not running", c.Sandboxed)
	}
	return pid, net.JoinHostPort(ip, strconv.Itoa(port)), nil
}

func shared(nets []string, ips map[string]string) string {
	for _, n := range nets {
		if _, ok := ips[n]; ok {
			return n
		}
	}
	return ""
}

// httpGet GETs path from addr inside the network namespace of process
// pid, expecting 2xx or 3xx (redirects are not followed: they may lead
// out of the sandbox). The sandbox's networks are internal, with no
// route from the host; so the connection is made from a thread that
// entered the namespace, and needs nothing inside the container.
func httpGet(ctx context.Context, pid int, addr, path string) (string, error) {
	conn, err := dialIn(ctx, pid, addr)
	if err != nil {
		return "", err
	}
	used := false
	tr := &http.Transport{DisableKeepAlives: true, DialContext: func(context.Context, string, string) (net.Conn, error) {
		if used {
			return nil, fmt.Errorf("one connection per probe")
		}
		used = true
		return conn, nil
	}}
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr, Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		conn.Close()
		return "", fmt.Errorf("http probe %s%s: %w", addr, path, err)
	}
	resp, err := cl.Do(req)
	if err != nil {
		return "", fmt.Errorf("GET http://%s%s: %w", addr, path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	out := fmt.Sprintf("GET http://%s%s: %s", addr, path, resp.Status)
	if resp.StatusCode < 200 || resp.StatusCode > 399 {
		return out + "\n" + string(body), fmt.Errorf("status %s", resp.Status)
	}
	return out, nil
}

// dialIn connects to addr from inside the network namespace of pid. The
// socket is made on a thread that entered the namespace and never leaves
// it: the goroutine ends locked, so the runtime discards the thread
// rather than run other goroutines in the wrong namespace. The socket
// keeps its namespace wherever it is used after.
func dialIn(ctx context.Context, pid int, addr string) (net.Conn, error) {
	type dialed struct {
		conn net.Conn
		err  error
	}
	ch := make(chan dialed, 1)
	go func() {
		runtime.LockOSThread()
		f, err := os.Open(fmt.Sprintf("/proc/%d/ns/net", pid))
		if err != nil {
			ch <- dialed{err: fmt.Errorf("open the network namespace of pid %d: %w", pid, err)}
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			ch <- dialed{err: fmt.Errorf("enter the network namespace of pid %d: %w", pid, err)}
			return
		}
		dl := net.Dialer{Timeout: 5 * time.Second}
		c, err := dl.DialContext(ctx, "tcp", addr)
		if err != nil {
			err = fmt.Errorf("connect to %s in the sandbox: %w", addr, err)
		}
		ch <- dialed{c, err}
	}()
	r := <-ch
	return r.conn, r.err
}

package notify

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Ping signals, in the healthchecks.io convention: URL/start when a
// backup starts, URL on success, URL/fail on failure. A dead-man service
// then alarms on silence too.
const (
	PingStart   = "start"
	PingSuccess = ""
	PingFail    = "fail"
)

// Pinger sends pings: short timeouts, a few quick attempts, so a slow
// ping service costs seconds, never a job.
type Pinger struct {
	Client *http.Client
	// Attempts per ping; 3. Backoff between them; 500ms.
	Attempts int
	Backoff  time.Duration
}

// CheckPingURL accepts a ping URL: http or https, with a host.
func CheckPingURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%s is not an http(s) URL: write the check's ping URL, as https://hc-ping.com/UUID", Shown(raw))
	}
	return nil
}

// PingURL is base with the signal's path appended, its query kept.
func PingURL(base, signal string) (string, error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", fmt.Errorf("parse ping URL %s: %w", Shown(base), scrub(err, base))
	}
	if signal != "" {
		u.Path = strings.TrimSuffix(u.Path, "/") + "/" + signal
		if u.RawPath != "" {
			u.RawPath = strings.TrimSuffix(u.RawPath, "/") + "/" + signal
		}
	}
	return u.String(), nil
}

// Ping POSTs body (for fail: the error's first line) to base's signal
// URL. Errors never show the URL's secret parts.
func (p *Pinger) Ping(ctx context.Context, base, signal, body string) error {
	target, err := PingURL(base, signal)
	if err != nil {
		return err
	}
	client := p.Client
	if client == nil {
		client = &http.Client{Timeout: 3 * time.Second}
	}
	attempts, backoff := p.Attempts, p.Backoff
	if attempts <= 0 {
		attempts = 3
	}
	if backoff == 0 {
		backoff = 500 * time.Millisecond
	}
	var last error
	for i := range attempts {
		if i > 0 {
			select {
			case <-ctx.Done():
				return fmt.Errorf("ping %s: %w", Shown(base), ctx.Err())
			case <-time.After(backoff):
			}
		}
		if last = p.once(ctx, client, target, body); last == nil {
			return nil
		}
	}
	return fmt.Errorf("ping %s %s: %w", Shown(base), signalName(signal), scrub(last, base))
}

func (p *Pinger) once(ctx context.Context, client *http.Client, target, body string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	req.Header.Set("User-Agent", "lifeboat")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode >= 300 {
		return fmt.Errorf("answered %s", resp.Status)
	}
	return nil
}

func signalName(s string) string {
	if s == "" {
		return "success"
	}
	return s
}

// FirstLine is an error's first line, cut to what a ping body holds
// (healthchecks keeps 100 kB; a line says enough).
func FirstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 1000 {
		s = s[:1000]
	}
	return s
}

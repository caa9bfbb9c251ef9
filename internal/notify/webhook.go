// Package notify tells the outside world about jobs: events (a job
// failed, a backup succeeded, a drill passed, a point looks like damage)
// to shoutrrr's services and to a signed webhook, and start, success and
// fail pings to a dead-man service. Nothing here ever fails a job.
package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"
)

// Webhook posts events to a URL, retrying a few times with backoff; a
// receiver that stays down costs a logged warning, never a job.
type Webhook struct {
	URL string
	// Secret signs each body: X-Lifeboat-Signature is sha256= and the hex
	// HMAC-SHA256 of the body under it, as GitHub signs its webhooks.
	Secret string
	// Events are the classes sent; DefaultClasses when none.
	Events []string
	Client *http.Client
	Log    *slog.Logger
	// Backoff between attempts; 1s, 4s, 16s when nil.
	Backoff []time.Duration
}

// Send delivers ev, retrying on errors and 5xx answers.
func (w *Webhook) Send(ctx context.Context, ev Event) error {
	if w.URL == "" {
		return nil
	}
	body, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	client := w.Client
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	backoff := w.Backoff
	if backoff == nil {
		backoff = []time.Duration{time.Second, 4 * time.Second, 16 * time.Second}
	}
	var last error
	for attempt := 0; ; attempt++ {
		last = w.post(ctx, client, body)
		if last == nil || attempt >= len(backoff) {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff[attempt]):
		}
	}
	if last != nil && w.Log != nil {
		w.Log.Warn("webhook not delivered", "job", ev.Job, "err", last)
	}
	return last
}

func (w *Webhook) post(ctx context.Context, client *http.Client, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("webhook: %w", scrub(err, w.URL))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "lifeboat")
	if w.Secret != "" {
		req.Header.Set(SignatureHeader, Sign(w.Secret, body))
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("webhook: %w", scrub(err, w.URL))
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode >= 300 {
		return fmt.Errorf("webhook: %s answered %s", Shown(w.URL), resp.Status)
	}
	return nil
}

// SignatureHeader carries a signed webhook's signature.
const SignatureHeader = "X-Lifeboat-Signature"

// Sign is the signature header's value of body under secret: sha256= and
// the hex HMAC-SHA256. A receiver computes the same over the raw body and
// compares in constant time (hmac.Equal).
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

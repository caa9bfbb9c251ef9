// Package notify tells the outside world about jobs: a webhook POST of a
// JSON event when a job fails, or a backup looks like damage.
package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"
)

// Event is what a webhook receives.
type Event struct {
	Event   string    `json:"event"` // job.failed, point.suspect
	Host    string    `json:"host"`
	Job     string    `json:"job"`
	Kind    string    `json:"kind"`
	Unit    string    `json:"unit,omitempty"`
	Error   string    `json:"error"`
	Point   string    `json:"point,omitempty"` // point.suspect: the point the anomaly guard marked
	Started time.Time `json:"started"`
	Ended   time.Time `json:"ended"`
}

// Webhook posts events to a URL, retrying a few times with backoff; a
// receiver that stays down costs a logged warning, never a job.
type Webhook struct {
	URL    string
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
		return fmt.Errorf("webhook: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "lifeboat")
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("webhook: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode >= 300 {
		return fmt.Errorf("webhook: %s answered %s", req.URL.Redacted(), resp.Status)
	}
	return nil
}

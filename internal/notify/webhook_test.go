package notify

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

func TestWebhookRetriesThenDelivers(t *testing.T) {
	var calls atomic.Int32
	var got Event
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		if err := json.NewDecoder(r.Body).Decode(&got); err != nil {
			t.Error(err)
		}
	}))
	defer srv.Close()
	w := &Webhook{URL: srv.URL, Backoff: []time.Duration{10 * time.Millisecond}}
	if err := w.Send(t.Context(), Event{Event: "job.failed", Job: "j1", Unit: "project/shop", Error: "boom"}); err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 2 || got.Job != "j1" || got.Error != "boom" {
		t.Fatalf("calls %d, event %+v", calls.Load(), got)
	}
	w.URL = srv.URL + "/x"
	srv.Close()
	if err := w.Send(t.Context(), Event{Job: "j2"}); err == nil {
		t.Fatal("a receiver that is down reported delivered")
	}
}

package notify

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Notifier sends in the background what the daemon decides happened, so
// that no job waits for a chat service: a bounded queue, a few workers,
// and on shutdown a short wait for what is pending.
type Notifier struct {
	Router  *Router  // shoutrrr targets; nil: none
	Webhook *Webhook // nil or no URL: none
	Pinger  *Pinger
	Log     *slog.Logger

	once  sync.Once
	mu    sync.Mutex
	tasks chan func(context.Context)
	// ctx ends sends still under way when Close gives up waiting.
	ctx    context.Context
	cancel context.CancelFunc
	closed bool
	wg     sync.WaitGroup
}

// queueSize bounds what waits to be sent: beyond it a notification is
// dropped with a warning rather than memory grown without end.
const (
	queueSize = 256
	workers   = 2
)

func (n *Notifier) start() {
	n.once.Do(func() {
		n.tasks = make(chan func(context.Context), queueSize)
		n.ctx, n.cancel = context.WithCancel(context.Background())
		if n.Pinger == nil {
			n.Pinger = &Pinger{}
		}
		if n.Log == nil {
			n.Log = slog.New(slog.DiscardHandler)
		}
		for range workers {
			n.wg.Add(1)
			go func() {
				defer n.wg.Done()
				for t := range n.tasks {
					t(n.ctx)
				}
			}()
		}
	})
}

// enqueue queues t, or drops it (false) when the queue is full or closed.
func (n *Notifier) enqueue(what string, t func(context.Context)) bool {
	n.start()
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return false
	}
	select {
	case n.tasks <- t:
		return true
	default:
		n.Log.Warn("notification dropped: too many waiting to be sent", "what", what)
		return false
	}
}

// Notify sends ev to the webhook and to the targets of routes (a unit's
// lifeboat.notify label; nil: the default routes), in the background.
func (n *Notifier) Notify(ev Event, routes []string) {
	if n.Webhook != nil && n.Webhook.URL != "" && wants(n.Webhook.Events, ev) {
		n.enqueue("webhook", func(ctx context.Context) {
			ctx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			_ = n.Webhook.Send(ctx, ev) // it logs its own failure
		})
	}
	if n.Router.Empty() || len(n.Router.pick(ev, routes)) == 0 {
		return
	}
	n.enqueue("notify", func(context.Context) {
		if err := n.Router.Send(ev, routes); err != nil {
			n.Log.Warn("notification not delivered", "event", ev.Event, "job", ev.Job, "err", err)
		}
	})
}

// PingRun is one job's pings: its start, then its end.
type PingRun struct {
	n       *Notifier
	url     string
	job     string
	started chan struct{} // closed once the start ping is sent or given up
}

// PingStart sends url's start ping in the background; Done sends the end
// ping after it, so a dead-man service sees them in order. An empty url
// gives a PingRun that sends nothing.
func (n *Notifier) PingStart(url, job string) *PingRun {
	p := &PingRun{n: n, url: url, job: job, started: make(chan struct{})}
	if url == "" {
		close(p.started)
		return p
	}
	if !n.enqueue("ping", func(ctx context.Context) {
		defer close(p.started)
		n.ping(ctx, url, PingStart, "", job)
	}) {
		close(p.started)
	}
	return p
}

// Done sends the success ping (err nil) or the fail ping with err's
// first line.
func (p *PingRun) Done(err error) {
	if p == nil || p.url == "" {
		return
	}
	signal, body := PingSuccess, ""
	if err != nil {
		signal, body = PingFail, FirstLine(err.Error())
	}
	p.n.enqueue("ping", func(ctx context.Context) {
		select {
		case <-p.started:
		case <-ctx.Done():
			return
		}
		p.n.ping(ctx, p.url, signal, body, p.job)
	})
}

func (n *Notifier) ping(ctx context.Context, url, signal, body, job string) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := n.Pinger.Ping(ctx, url, signal, body); err != nil {
		n.Log.Warn("ping not delivered", "job", job, "err", err)
	}
}

// Close stops taking notifications and waits until ctx ends for those
// queued; what is still under way then is abandoned.
func (n *Notifier) Close(ctx context.Context) {
	n.start()
	n.mu.Lock()
	if !n.closed {
		n.closed = true
		close(n.tasks)
	}
	n.mu.Unlock()
	done := make(chan struct{})
	go func() { n.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		n.Log.Warn("stopping with notifications not sent")
	}
	n.cancel()
}

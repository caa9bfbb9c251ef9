package scheduler

import (
	"context"
	"sync"
)

// subscriber hands state changes to one listener, in order, from its own
// goroutine: a slow listener (a webhook retrying) delays neither the queue
// nor the other listeners, and nobody sees "succeeded" before "running".
type subscriber struct {
	fn      func(Job)
	mu      sync.Mutex
	pending []Job
	closed  bool
	wake    chan struct{}
	done    chan struct{}
}

func newSubscriber(fn func(Job)) *subscriber {
	s := &subscriber{fn: fn, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go s.loop()
	return s
}

func (s *subscriber) push(j Job) {
	s.mu.Lock()
	if !s.closed {
		s.pending = append(s.pending, j)
	}
	s.mu.Unlock()
	s.poke()
}

func (s *subscriber) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// close lets the listener drain what is pending, then ends its goroutine.
func (s *subscriber) close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.poke()
}

func (s *subscriber) loop() {
	defer close(s.done)
	for {
		s.mu.Lock()
		batch, closed := s.pending, s.closed
		s.pending = nil
		s.mu.Unlock()
		for _, j := range batch {
			s.fn(j)
		}
		if len(batch) == 0 {
			if closed {
				return
			}
			<-s.wake
		}
	}
}

// Subscribe calls fn with every job state change from now on, in the order
// they happen, until the returned func is called or the queue shuts down.
// fn runs on a goroutine of its own and may block.
func (q *Queue) Subscribe(fn func(Job)) (unsubscribe func()) {
	s := newSubscriber(fn)
	q.mu.Lock()
	if q.closed && q.running == 0 {
		q.mu.Unlock()
		s.close()
		return func() {}
	}
	q.subs = append(q.subs, s)
	q.mu.Unlock()
	return func() {
		q.mu.Lock()
		for i, o := range q.subs {
			if o == s {
				q.subs = append(q.subs[:i], q.subs[i+1:]...)
				break
			}
		}
		q.mu.Unlock()
		s.close()
	}
}

// closeSubscribers ends delivery once the last change is announced, and
// waits for the listeners to drain until ctx ends. When the shutdown grace
// is spent already, a listener still busy is left to finish on its own
// rather than hold the daemon's exit.
func (q *Queue) closeSubscribers(ctx context.Context) {
	q.mu.Lock()
	subs := q.subs
	q.subs = nil
	q.mu.Unlock()
	for _, s := range subs {
		s.close()
	}
	for _, s := range subs {
		select {
		case <-s.done:
		case <-ctx.Done():
			return
		}
	}
}

package notify

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// request is one request a receiver recorded.
type request struct {
	Method, Path, Query string
	Header              http.Header
	Body                string
}

// recorder is an HTTP receiver on 127.0.0.1 that keeps what it got.
type recorder struct {
	*httptest.Server
	mu   sync.Mutex
	got  []request
	code int
	wake chan struct{}
}

func newRecorder(t *testing.T) *recorder {
	r := &recorder{code: http.StatusOK, wake: make(chan struct{}, 100)}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.got = append(r.got, request{req.Method, req.URL.Path, req.URL.RawQuery, req.Header.Clone(), string(b)})
		code := r.code
		r.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_, _ = io.WriteString(w, `{}`)
		r.wake <- struct{}{}
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *recorder) requests() []request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]request(nil), r.got...)
}

// hostPort is the receiver's 127.0.0.1:PORT.
func (r *recorder) hostPort() string { return strings.TrimPrefix(r.URL, "http://") }

// smtpReceiver is a tiny SMTP server on 127.0.0.1: no TLS, no auth; it
// keeps each message's envelope and DATA.
type smtpReceiver struct {
	addr string
	mu   sync.Mutex
	mail []mail
}

type mail struct {
	From string
	To   []string
	Data string
}

func newSMTPReceiver(t *testing.T) *smtpReceiver {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	s := &smtpReceiver{addr: ln.Addr().String()}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serve(c)
		}
	}()
	return s
}

func (s *smtpReceiver) serve(c net.Conn) {
	defer c.Close()
	rd := bufio.NewReader(c)
	say := func(line string) { _, _ = io.WriteString(c, line+"\r\n") }
	say("220 127.0.0.1 ESMTP test")
	var m mail
	for {
		line, err := rd.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		verb := strings.ToUpper(strings.SplitN(line, " ", 2)[0])
		switch verb {
		case "EHLO", "HELO":
			say("250 127.0.0.1")
		case "MAIL":
			m = mail{From: line}
			say("250 ok")
		case "RCPT":
			m.To = append(m.To, line)
			say("250 ok")
		case "DATA":
			say("354 go on")
			var data strings.Builder
			for {
				l, err := rd.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
				data.WriteString(l)
			}
			m.Data = data.String()
			s.mu.Lock()
			s.mail = append(s.mail, m)
			s.mu.Unlock()
			say("250 queued")
		case "QUIT":
			say("221 bye")
			return
		default:
			say("250 ok")
		}
	}
}

func (s *smtpReceiver) received() []mail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]mail(nil), s.mail...)
}

package server

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// Limits keep slow or many clients from starving the daemon: each
// connection costs a file descriptor, and the daemon needs descriptors of
// its own (the engine's socket, the repository's files) to do its jobs.
type Limits struct {
	ReadHeaderTimeout time.Duration // 5s
	ReadTimeout       time.Duration // whole request, body included; 30s
	WriteTimeout      time.Duration // the response; 60s (downloads extend it chunk by chunk)
	IdleTimeout       time.Duration // keep-alive between requests; 60s
	MaxHeaderBytes    int           // 64 KiB
	MaxConns          int           // open connections; 1024
	MaxConnsPerClient int           // of one client IP; 64; negative: no per-client cap
}

func (l *Limits) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&l.ReadHeaderTimeout, 5*time.Second)
	def(&l.ReadTimeout, 30*time.Second)
	def(&l.WriteTimeout, 60*time.Second)
	def(&l.IdleTimeout, 60*time.Second)
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = 64 << 10
	}
	if l.MaxConns <= 0 {
		l.MaxConns = 1024
	}
	if l.MaxConnsPerClient == 0 {
		l.MaxConnsPerClient = 64
	}
}

// HTTPServer is an http.Server for h with the limits' timeouts, and the
// listener to serve it on: ln wrapped to cap connections, and TLS when
// cert and key are given.
func HTTPServer(h http.Handler, ln net.Listener, l Limits, certFile, keyFile string, log *slog.Logger) (*http.Server, net.Listener, error) {
	l.setDefaults()
	srv := &http.Server{Handler: h, ReadHeaderTimeout: l.ReadHeaderTimeout, ReadTimeout: l.ReadTimeout, WriteTimeout: l.WriteTimeout,
		IdleTimeout: l.IdleTimeout, MaxHeaderBytes: l.MaxHeaderBytes, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}
	ln = LimitListener(ln, l.MaxConns, l.MaxConnsPerClient, log)
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, nil, fmt.Errorf("API TLS certificate %s: %w", certFile, err)
		}
		srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
		ln = tls.NewListener(ln, srv.TLSConfig)
	}
	return srv, ln, nil
}

// LimitListener caps the connections ln hands out: total at once, and
// perClient from one IP (negative: no such cap). A connection over a cap
// is closed at once rather than queued: a queue would make every new
// client wait behind the slow ones, while closing frees the descriptor
// immediately and keeps Accept turning, so clients under their cap (the
// dashboard, the operator's curl) are served while one address floods.
func LimitListener(ln net.Listener, total, perClient int, log *slog.Logger) net.Listener {
	return &limitListener{Listener: ln, total: total, perClient: perClient, byIP: map[string]int{}, log: log}
}

type limitListener struct {
	net.Listener
	total, perClient int
	log              *slog.Logger

	mu       sync.Mutex
	open     int
	byIP     map[string]int
	refused  int64
	lastWarn time.Time
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := clientIP(c.RemoteAddr())
		if l.admit(ip) {
			return &limitConn{Conn: c, l: l, ip: ip}, nil
		}
		c.Close()
	}
}

func (l *limitListener) admit(ip string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open >= l.total || (l.perClient > 0 && l.byIP[ip] >= l.perClient) {
		l.refused++
		// One line per minute at most: a flood must not flood the log too.
		if time.Since(l.lastWarn) > time.Minute {
			l.lastWarn = time.Now()
			l.log.Warn("API connection refused: too many open", "client", ip, "open", l.open, "client_open", l.byIP[ip], "refused_total", l.refused)
		}
		return false
	}
	l.open++
	l.byIP[ip]++
	return true
}

func (l *limitListener) release(ip string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open--
	if l.byIP[ip]--; l.byIP[ip] <= 0 {
		delete(l.byIP, ip)
	}
}

func clientIP(a net.Addr) string {
	if t, ok := a.(*net.TCPAddr); ok {
		return t.IP.String()
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}

type limitConn struct {
	net.Conn
	l    *limitListener
	ip   string
	once sync.Once
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c.ip) })
	return err
}

package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Role is what a credential may do. Each role may do what the weaker ones
// may.
type Role int

// The roles, weakest first. A zero Role is no access.
const (
	NoRole Role = iota
	// Viewer sees status, points, jobs and the names in a point.
	Viewer
	// Operator also starts and cancels jobs: backups, upkeep, restores
	// into Docker.
	Operator
	// Admin also restores into host directories and reads captured
	// configuration and file contents unmasked: what a root shell could.
	Admin
)

func (r Role) String() string {
	switch r {
	case Viewer:
		return "viewer"
	case Operator:
		return "operator"
	case Admin:
		return "admin"
	}
	return "none"
}

// ParseRole reads viewer, operator or admin.
func ParseRole(s string) (Role, error) {
	for _, r := range []Role{Viewer, Operator, Admin} {
		if r.String() == s {
			return r, nil
		}
	}
	return NoRole, fmt.Errorf("role %q: use viewer, operator or admin", s)
}

// Credential is one API token, kept only as its SHA-256. A plain hash is
// enough here, unlike for passwords: tokens are long random strings (the
// generated one has 256 bits), so no dictionary or brute force reaches
// them through a fast hash, and a slow one (bcrypt, argon2) would make
// every bearer request cost tens of milliseconds of CPU, an easy way to
// load the daemon. What the hash buys is that a leaked config file or
// memory dump does not hand out the tokens.
type Credential struct {
	Role Role
	Hash [sha256.Size]byte
}

// HashToken is the hash a Credential holds for token.
func HashToken(token string) [sha256.Size]byte { return sha256.Sum256([]byte(token)) }

// ParseHash reads a hex SHA-256, as sha256sum prints it.
func ParseHash(s string) ([sha256.Size]byte, error) {
	var h [sha256.Size]byte
	b, err := hex.DecodeString(strings.TrimSpace(s))
	if err != nil || len(b) != sha256.Size {
		return h, errors.New("a token hash is 64 hex digits: printf %s TOKEN | sha256sum")
	}
	copy(h[:], b)
	return h, nil
}

// roleOf is the role of token, NoRole when it matches none. Every
// credential is compared, in constant time, so the time taken says
// nothing about which one came close.
func roleOf(creds []Credential, token string) Role {
	if token == "" {
		return NoRole
	}
	h := HashToken(token)
	role := NoRole
	for _, c := range creds {
		if subtle.ConstantTimeCompare(h[:], c.Hash[:]) == 1 && c.Role > role {
			role = c.Role
		}
	}
	return role
}

// sessions are the web UI's sign-ins: random IDs, never the token, each
// with an expiry, forgotten on logout. They live in memory only: a
// restarted daemon asks the browser to sign in again.
type sessions struct {
	ttl time.Duration
	now func() time.Time

	mu   sync.Mutex
	byID map[[sha256.Size]byte]session // keyed by the ID's hash: lookups time nothing secret
}

type session struct {
	role    Role
	expires time.Time
}

// maxSessions bounds memory: signing in needs a valid token, but a script
// holding one should not grow the map without end.
const maxSessions = 10000

func newSessions(ttl time.Duration) *sessions {
	return &sessions{ttl: ttl, now: time.Now, byID: map[[sha256.Size]byte]session{}}
}

// create starts a session and returns its ID.
func (s *sessions) create(role Role) (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("session ID: %w", err)
	}
	id := hex.EncodeToString(b)
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.byID) >= maxSessions {
		s.pruneLocked(now)
	}
	if len(s.byID) >= maxSessions {
		return "", fmt.Errorf("%w: %d sessions are open: sign out of some", ErrConflict, maxSessions)
	}
	s.byID[sha256.Sum256([]byte(id))] = session{role: role, expires: now.Add(s.ttl)}
	return id, nil
}

// role is the role of a live session, NoRole for an unknown, ended or
// expired one.
func (s *sessions) role(id string) Role {
	if id == "" {
		return NoRole
	}
	k := sha256.Sum256([]byte(id))
	s.mu.Lock()
	defer s.mu.Unlock()
	se, ok := s.byID[k]
	if !ok {
		return NoRole
	}
	if !s.now().Before(se.expires) {
		delete(s.byID, k)
		return NoRole
	}
	return se.role
}

func (s *sessions) revoke(id string) {
	s.mu.Lock()
	delete(s.byID, sha256.Sum256([]byte(id)))
	s.mu.Unlock()
}

func (s *sessions) pruneLocked(now time.Time) {
	for k, se := range s.byID {
		if !now.Before(se.expires) {
			delete(s.byID, k)
		}
	}
}

// principal is who a request is.
type principal struct {
	role   Role
	cookie bool // authenticated by the session cookie (a browser)
}

type principalKey struct{}

func roleFrom(ctx context.Context) Role {
	p, _ := ctx.Value(principalKey{}).(principal)
	return p.role
}

// identify finds the request's role: a bearer token, or else the session
// cookie. A wrong bearer token is not rescued by a cookie.
func (s *server) identify(r *http.Request) principal {
	if h := r.Header.Get("Authorization"); h != "" {
		tok, ok := strings.CutPrefix(h, "Bearer ")
		if !ok {
			return principal{}
		}
		return principal{role: roleOf(s.opts.Credentials, strings.TrimSpace(tok))}
	}
	if c, err := r.Cookie(CookieName); err == nil {
		return principal{role: s.sessions.role(c.Value), cookie: true}
	}
	return principal{}
}

// need admits requests of at least role min. State-changing requests must
// also be JSON (see requireJSON).
func (s *server) need(min Role, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := s.identify(r)
		if p.role == NoRole {
			w.Header().Set("WWW-Authenticate", `Bearer realm="lifeboat"`)
			writeError(w, http.StatusUnauthorized, errors.New("missing, wrong or expired credentials: send Authorization: Bearer TOKEN, or sign in again"))
			return
		}
		if p.role < min {
			writeError(w, http.StatusForbidden, fmt.Errorf("%w: this needs the %s role; the credentials are %s", ErrForbidden, min, p.role))
			return
		}
		if !changes(r) || requireJSON(w, r, p.cookie) {
			h(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
		}
	})
}

// login trades a token for a session: an HttpOnly cookie holding a random
// ID that scripts never see and logout revokes.
func (s *server) login(w http.ResponseWriter, r *http.Request) {
	if !requireJSON(w, r, true) {
		return
	}
	var body struct {
		Token string `json:"token"`
	}
	if err := decodeJSON(r, &body); err != nil {
		writeError(w, http.StatusBadRequest, errors.New(`send {"token": "…"}`))
		return
	}
	role := roleOf(s.opts.Credentials, body.Token)
	if role == NoRole {
		// A wrong guess costs time: online guessing stays slow.
		time.Sleep(s.opts.loginDelay)
		writeError(w, http.StatusUnauthorized, errors.New("wrong token"))
		return
	}
	id, err := s.sessions.create(role)
	if err != nil {
		writeError(w, status(err), err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: id, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: r.TLS != nil, MaxAge: int(s.sessions.ttl.Seconds())})
	writeJSON(w, http.StatusOK, map[string]string{"status": "logged in", "role": role.String()})
}

// logout ends the session for good: the ID is forgotten by the server,
// not only cleared in the browser.
func (s *server) logout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(CookieName); err == nil {
		s.sessions.revoke(c.Value)
	}
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil, MaxAge: -1})
	writeJSON(w, http.StatusOK, map[string]string{"status": "logged out"})
}

// whoami tells the UI which actions to offer.
func (s *server) whoami(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"role": roleFrom(r.Context()).String()})
}

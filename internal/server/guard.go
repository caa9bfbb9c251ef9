package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
)

// changes reports whether a request may change state.
func changes(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	return true
}

// requireJSON refuses a state-changing request that is not
// application/json when it has a body or comes from a browser session.
// Browsers send text/plain, form and multipart bodies cross-origin without
// asking (no CORS preflight); application/json always needs a preflight,
// which this server never grants. It backs up CrossOriginProtection for
// browsers that send neither Sec-Fetch-Site nor Origin. A bearer-token
// request without a body (curl -X POST …/cancel) cannot be forged by a
// page: browsers never add the Authorization header on their own.
func requireJSON(w http.ResponseWriter, r *http.Request, browser bool) bool {
	hasBody := r.ContentLength != 0 // -1: chunked
	if !hasBody && !browser {
		return true
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err == nil && mt == "application/json" {
		return true
	}
	writeError(w, http.StatusUnsupportedMediaType, errors.New("send Content-Type: application/json"))
	return false
}

// decodeJSON reads one JSON value of a known shape: unknown fields are
// errors, so a misspelt option ("dryrun") is not silently ignored.
func decodeJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return fmt.Errorf("%w: the body is over %d bytes", ErrBadRequest, mbe.Limit)
		}
		return fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	return nil
}

// limitBody caps every request body: requests here are small JSON, and
// a client that streams more is cut off instead of being read forever.
func limitBody(max int64, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > max {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Errorf("the body is over %d bytes", max))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, max)
		h.ServeHTTP(w, r)
	})
}

// crossOrigin refuses state-changing browser requests from other origins
// (Sec-Fetch-Site, else Origin against Host), with a JSON error.
func crossOrigin(h http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusForbidden, fmt.Errorf("%w: cross-origin request refused", ErrForbidden))
	}))
	return cop.Handler(h)
}

// securityHeaders keeps pages out of frames and other origins' scripts.
func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("X-Frame-Options", "DENY")
		w.Header().Set("Referrer-Policy", "no-referrer")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'")
		if r.TLS != nil {
			w.Header().Set("Strict-Transport-Security", "max-age=31536000")
		}
		h.ServeHTTP(w, r)
	})
}

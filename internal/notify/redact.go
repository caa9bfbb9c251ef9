package notify

import (
	"errors"
	"net/url"
	"sort"
	"strings"
)

// Shown is a URL as logs and the API may show it: scheme and host only.
// Notification and ping URLs carry their secret in the user, the path
// (a healthchecks UUID, a Gotify token) or the query, so none of those
// is shown.
func Shown(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" {
		return "(unparsable URL)"
	}
	s := u.Scheme + "://" + u.Host
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.User != nil {
		s += "/…"
	}
	return s
}

// secrets are the parts of raw that must not reach a log: its user
// information, path segments and query values.
func secrets(raw string) []string {
	var out []string
	// Path segments and query values shorter than a token are words
	// ("api", "yes") whose replacement would garble the message.
	add := func(s string, min int) {
		if len(s) >= min {
			out = append(out, s)
			if esc := url.PathEscape(s); esc != s {
				out = append(out, esc)
			}
		}
	}
	u, err := url.Parse(raw)
	if err != nil {
		return []string{raw}
	}
	out = append(out, raw)
	if u.User != nil {
		add(u.User.Username(), 3)
		if p, ok := u.User.Password(); ok {
			add(p, 3)
		}
	}
	for _, seg := range strings.Split(u.Path, "/") {
		add(seg, 6)
	}
	for _, vs := range u.Query() {
		for _, v := range vs {
			add(v, 6)
		}
	}
	// Longest first, so that a secret containing another is replaced whole.
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}

// scrub takes raw's secret parts out of err's text: libraries put the URL
// they were given into their errors.
func scrub(err error, raw string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	for _, s := range secrets(raw) {
		msg = strings.ReplaceAll(msg, s, "***")
	}
	return errors.New(msg)
}

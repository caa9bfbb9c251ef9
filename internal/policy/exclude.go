package policy

import (
	"fmt"
	"path"
	"strings"
)

// Matcher decides which paths of a volume or bind mount are left out.
// Patterns are relative to its root: "*.log" matches at any depth, a
// pattern with a slash ("cache/tmp", "/tmp") is anchored at the root, a
// trailing slash matches directories only, and "**" matches any number of
// directories.
type Matcher struct{ pats []pattern }

type pattern struct {
	parts   []string
	anchor  bool
	dirOnly bool
}

// NewMatcher compiles patterns; nil or empty matches nothing.
func NewMatcher(patterns []string) (*Matcher, error) {
	m := &Matcher{}
	for _, p := range patterns {
		orig := p
		var pt pattern
		if strings.HasSuffix(p, "/") {
			pt.dirOnly, p = true, strings.TrimRight(p, "/")
		}
		if strings.Contains(p, "/") {
			pt.anchor = true
		}
		p = strings.TrimPrefix(p, "/")
		if p == "" {
			return nil, fmt.Errorf("exclude pattern %q matches the whole tree", orig)
		}
		pt.parts = strings.Split(p, "/")
		for _, part := range pt.parts {
			if _, err := path.Match(part, ""); err != nil {
				return nil, fmt.Errorf("exclude pattern %q: %w", orig, err)
			}
		}
		m.pats = append(m.pats, pt)
	}
	return m, nil
}

// Match reports whether rel (slash-separated, relative to the root) is
// excluded.
func (m *Matcher) Match(rel string, isDir bool) bool {
	if m == nil || len(m.pats) == 0 {
		return false
	}
	parts := strings.Split(strings.Trim(rel, "/"), "/")
	for _, p := range m.pats {
		if p.dirOnly && !isDir {
			continue
		}
		if p.anchor {
			if matchParts(p.parts, parts) {
				return true
			}
			continue
		}
		if ok, _ := path.Match(p.parts[0], parts[len(parts)-1]); ok {
			return true
		}
	}
	return false
}

func matchParts(pat, parts []string) bool {
	if len(pat) == 0 {
		return len(parts) == 0
	}
	if pat[0] == "**" {
		for i := 0; i <= len(parts); i++ {
			if matchParts(pat[1:], parts[i:]) {
				return true
			}
		}
		return false
	}
	if len(parts) == 0 {
		return false
	}
	ok, _ := path.Match(pat[0], parts[0])
	return ok && matchParts(pat[1:], parts[1:])
}

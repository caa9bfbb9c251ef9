// Package fsmeta records what kopia's snapshot format does not keep — hard
// links, extended attributes (POSIX ACLs and file capabilities among them),
// FIFOs and device nodes — in a sidecar stored inside the restore point, and
// re-applies it after kopia's restore, so a tree comes back exact. What
// still cannot be kept (sockets) is listed, never dropped silently.
package fsmeta

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"path"
	"strings"
	"unicode/utf8"
)

// Version is the sidecar format this package writes.
const Version = 1

// Sidecar records what kopia does not keep for one tree. Paths are relative
// to the tree's root and slash-separated; "." is the root.
type Sidecar struct {
	Version   int                        `json:"version"`
	HardLinks [][]Path                   `json:"hard_links,omitempty"`
	Xattrs    map[Path]map[string][]byte `json:"xattrs,omitempty"`
	Specials  []Special                  `json:"specials,omitempty"`
	// Times holds the mtimes (ns) of directories and symlinks: kopia gives a
	// restored directory the newest mtime found below it, and sets symlink
	// times to the microsecond only.
	Times map[Path]int64 `json:"times,omitempty"`
	// Renames maps paths whose names are not valid UTF-8 to the names kopia
	// restores them under: its JSON directory listings turn each invalid
	// byte into U+FFFD.
	Renames []Rename  `json:"renames,omitempty"`
	NotKept []NotKept `json:"not_kept,omitempty"`
}

// Special is a FIFO or a device node.
type Special struct {
	Path    Path   `json:"path"`
	Type    string `json:"type"` // fifo, char, block
	Mode    uint32 `json:"mode"` // 07777 bits
	Rdev    uint64 `json:"rdev,omitempty"`
	UID     uint32 `json:"uid"`
	GID     uint32 `json:"gid"`
	MtimeNs int64  `json:"mtime_ns"`
}

// Rename is a path kopia restores under another name.
type Rename struct {
	Path   Path `json:"path"`   // the original
	Stored Path `json:"stored"` // as kopia restores it
}

// storedName is how kopia's JSON listings keep a name: every byte that is
// not part of valid UTF-8 becomes U+FFFD, as encoding/json does.
func storedName(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			b.WriteString("\uFFFD")
		} else {
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// NotKept is something that cannot be backed up or restored, and why.
type NotKept struct {
	Path   Path   `json:"path"`
	Reason string `json:"reason"`
}

// Stats is what a scan saw.
type Stats struct {
	Files, Dirs, Symlinks, Specials int64
	Bytes                           int64 // apparent size of regular files
}

// Empty reports whether the sidecar records nothing.
func (s *Sidecar) Empty() bool {
	return len(s.HardLinks) == 0 && len(s.Renames) == 0 && len(s.Xattrs) == 0 && len(s.Specials) == 0 && len(s.NotKept) == 0
}

// Marshal encodes the sidecar.
func (s *Sidecar) Marshal() ([]byte, error) {
	b, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("encode sidecar: %w", err)
	}
	return b, nil
}

// Unmarshal decodes a sidecar and refuses newer formats.
func Unmarshal(b []byte) (*Sidecar, error) {
	var s Sidecar
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("decode sidecar: %w", err)
	}
	if s.Version > Version {
		return nil, fmt.Errorf("sidecar format %d is newer than this lifeboat understands (%d): upgrade lifeboat", s.Version, Version)
	}
	return &s, nil
}

// Path is a relative path that survives JSON even when it is not valid
// UTF-8: such paths (and any that begin with the marker) are stored as
// "b64:" plus base64 of the raw bytes.
type Path string

const b64Marker = "b64:"

// MarshalText implements encoding.TextMarshaler (also for map keys).
func (p Path) MarshalText() ([]byte, error) {
	s := string(p)
	if !utf8.ValidString(s) || strings.HasPrefix(s, b64Marker) {
		s = b64Marker + base64.StdEncoding.EncodeToString([]byte(s))
	}
	return []byte(s), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (p *Path) UnmarshalText(b []byte) error {
	s := string(b)
	if strings.HasPrefix(s, b64Marker) {
		raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, b64Marker))
		if err != nil {
			return fmt.Errorf("decode path %q: %w", s, err)
		}
		s = string(raw)
	}
	*p = Path(s)
	return nil
}

// Sub is the part of the sidecar under prefix (a path relative to the
// sidecar's root), rebased so that prefix becomes the root: what to apply
// when only that part is restored. A restored single file lands in its
// target directory under its own name, so with asFile prefix becomes that
// name instead of the root.
func (s *Sidecar) Sub(prefix string, asFile bool) *Sidecar {
	prefix = strings.Trim(prefix, "/")
	if prefix == "" || prefix == "." {
		return s
	}
	rebase := func(p Path) (Path, bool) {
		switch r := string(p); {
		case r == prefix && asFile:
			return Path(path.Base(prefix)), true
		case r == prefix:
			return ".", true
		case strings.HasPrefix(r, prefix+"/") && !asFile:
			return Path(strings.TrimPrefix(r, prefix+"/")), true
		}
		return "", false
	}
	out := &Sidecar{Version: s.Version}
	for _, g := range s.HardLinks {
		var sub []Path
		for _, p := range g {
			if q, ok := rebase(p); ok {
				sub = append(sub, q)
			}
		}
		if len(sub) > 1 {
			out.HardLinks = append(out.HardLinks, sub)
		}
	}
	for p, xs := range s.Xattrs {
		if q, ok := rebase(p); ok {
			if out.Xattrs == nil {
				out.Xattrs = map[Path]map[string][]byte{}
			}
			out.Xattrs[q] = xs
		}
	}
	for _, sp := range s.Specials {
		if q, ok := rebase(sp.Path); ok {
			sp.Path = q
			out.Specials = append(out.Specials, sp)
		}
	}
	for p, t := range s.Times {
		if q, ok := rebase(p); ok {
			if out.Times == nil {
				out.Times = map[Path]int64{}
			}
			out.Times[q] = t
		}
	}
	storedPrefix := storedName(prefix)
	for _, r := range s.Renames {
		q, ok := rebase(r.Path)
		if !ok || q == "." {
			continue
		}
		stored := strings.TrimPrefix(strings.TrimPrefix(string(r.Stored), storedPrefix), "/")
		if asFile {
			stored = path.Base(string(r.Stored))
		}
		out.Renames = append(out.Renames, Rename{Path: q, Stored: Path(stored)})
	}
	for _, nk := range s.NotKept {
		if q, ok := rebase(nk.Path); ok {
			nk.Path = q
			out.NotKept = append(out.NotKept, nk)
		}
	}
	return out
}

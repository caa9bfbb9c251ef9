package consistency

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// maxFileName is the longest file name most file systems take: a dump
// restored with --target must fit.
const maxFileName = 255

// hashMark starts the suffix of a name cut to fit. FileName never writes
// it otherwise (it is outside the unescaped set), so a cut name cannot
// collide with a whole one.
const hashMark = '~'

// errCut says a file name was cut to fit and no longer holds its name: the
// restore point's manifest does.
var errCut = errors.New("the name was cut to fit a file name: read it from the manifest")

// FileName is the file a dump of the database (or SQLite path) name
// becomes, ending in suffix. Every byte outside [A-Za-z0-9._-], and a
// leading '.', is percent-encoded, so distinct names give distinct files
// ("a/b" is a%2Fb, "a_b" stays a_b) that DecodeName reads back. The empty
// name is a lone "%". A name whose file would pass 255 bytes is cut and
// ends in "~" and 16 hex digits of its SHA-256.
func FileName(name, suffix string) string {
	if name == "" {
		return "%" + suffix
	}
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		c := name[i]
		if unescaped(c) && (c != '.' || i > 0) {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	enc := b.String()
	if len(enc)+len(suffix) <= maxFileName {
		return enc + suffix
	}
	sum := sha256.Sum256([]byte(name))
	tail := string(hashMark) + hex.EncodeToString(sum[:8])
	cut := maxFileName - len(suffix) - len(tail)
	// Never in the middle of a %XX.
	if i := strings.LastIndexByte(enc[:cut], '%'); i >= cut-2 {
		cut = i
	}
	return enc[:cut] + tail + suffix
}

// DecodeName reads back the name FileName wrote (suffix already removed).
// It fails on a name cut to fit, and on what FileName never writes.
func DecodeName(file string) (string, error) {
	if file == "%" {
		return "", nil
	}
	var b strings.Builder
	for i := 0; i < len(file); i++ {
		c := file[i]
		switch {
		case c == hashMark:
			return "", errCut
		case c == '%':
			if i+2 >= len(file) {
				return "", fmt.Errorf("%q: %% at %d is not followed by two hex digits", file, i)
			}
			v, err := hex.DecodeString(file[i+1 : i+3])
			if err != nil {
				return "", fmt.Errorf("%q: %% at %d is not followed by two hex digits", file, i)
			}
			b.WriteByte(v[0])
			i += 2
		case unescaped(c) && (c != '.' || i > 0):
			b.WriteByte(c)
		default:
			return "", fmt.Errorf("%q: byte %q at %d is not written by this encoding", file, c, i)
		}
	}
	return b.String(), nil
}

func unescaped(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
}

// ParseNames reads a listing of names, one hex-encoded name a line: the
// servers print them so, since a name may hold any byte, newlines and
// spaces included. A name listed twice is an error, as is a line that is
// not hex.
func ParseNames(out string) ([]string, error) {
	var names []string
	seen := map[string]bool{}
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		raw, err := hex.DecodeString(line)
		if err != nil {
			return nil, fmt.Errorf("listing of databases: %q is not a hex-encoded name", line)
		}
		name := string(raw)
		if seen[name] {
			return nil, fmt.Errorf("listing of databases names %q twice", name)
		}
		seen[name] = true
		names = append(names, name)
	}
	return names, nil
}

// checkUnique fails when two commands would write one file: one dump
// would replace the other in the restore point.
func checkUnique(cmds []Command) error {
	by := map[string]string{}
	for _, c := range cmds {
		if other, ok := by[c.File]; ok {
			return fmt.Errorf("dumps of %q and %q would both be file %s", other, c.Source, c.File)
		}
		by[c.File] = c.Source
	}
	return nil
}

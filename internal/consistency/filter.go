package consistency

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
)

// mariaSection starts each database's part of a mysqldump or mariadb-dump
// of several databases, on a line of its own.
const mariaSection = "-- Current Database: "

// WithoutSchema passes a MariaDB/MySQL dump of several databases through,
// leaving out every section of schema: from its "-- Current Database:"
// line to the next one. Lines are streamed, never held whole (an extended
// INSERT may be megabytes long).
func WithoutSchema(r io.Reader, schema string) io.Reader {
	return &schemaFilter{r: bufio.NewReaderSize(r, 64<<10), skipHeader: []byte(mariaSection + "`" + strings.ReplaceAll(schema, "`", "``") + "`"), atStart: true}
}

type schemaFilter struct {
	r          *bufio.Reader
	skipHeader []byte
	atStart    bool // the next chunk begins a line
	skip       bool
	buf        []byte // what is left of the current chunk to pass on
	err        error
}

func (f *schemaFilter) Read(p []byte) (int, error) {
	for len(f.buf) == 0 {
		if f.err != nil {
			return 0, f.err
		}
		// A chunk is a line, or a buffer's worth of a longer one.
		chunk, err := f.r.ReadSlice('\n')
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			f.err = err
		}
		if f.atStart && bytes.HasPrefix(chunk, []byte(mariaSection)) {
			f.skip = bytes.Equal(bytes.TrimRight(chunk, "\r\n"), f.skipHeader)
		}
		f.atStart = len(chunk) > 0 && chunk[len(chunk)-1] == '\n'
		if !f.skip {
			f.buf = chunk
		}
	}
	n := copy(p, f.buf)
	f.buf = f.buf[n:]
	return n, nil
}

// maxGlobals bounds the pg_dumpall --globals-only file WithoutRoles holds
// in memory: roles and tablespaces, kilobytes in practice.
const maxGlobals = 64 << 20

// WithoutRoles passes pg_dumpall --globals-only output through, leaving
// out the CREATE ROLE and ALTER ROLE lines of the roles named: loading
// into a server where they exist then keeps their passwords and
// attributes (its superuser's above all). Missing roles are still
// created, and memberships granted.
func WithoutRoles(r io.Reader, roles []string) io.Reader {
	b, err := io.ReadAll(io.LimitReader(r, maxGlobals+1))
	if err == nil && len(b) > maxGlobals {
		err = errors.New("the globals dump is larger than 64 MiB")
	}
	if err != nil {
		return &errReader{err}
	}
	var prefixes []string
	for _, role := range roles {
		for _, id := range []string{role, `"` + strings.ReplaceAll(role, `"`, `""`) + `"`} {
			prefixes = append(prefixes, "CREATE ROLE "+id+";", "ALTER ROLE "+id+" ")
		}
	}
	var out bytes.Buffer
	for _, line := range bytes.SplitAfter(b, []byte("\n")) {
		keep := true
		for _, p := range prefixes {
			if bytes.HasPrefix(line, []byte(p)) {
				keep = false
				break
			}
		}
		if keep {
			out.Write(line)
		}
	}
	return &out
}

type errReader struct{ err error }

func (e *errReader) Read([]byte) (int, error) { return 0, e.err }

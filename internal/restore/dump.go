package restore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/lifeboat-backup/lifeboat/internal/consistency"
	"github.com/lifeboat-backup/lifeboat/internal/engine"
	"github.com/lifeboat-backup/lifeboat/internal/layout"
	"github.com/lifeboat-backup/lifeboat/internal/repository"
)

// DumpResult says what LoadDumps loaded where.
type DumpResult struct {
	ID        string   `json:"id"`
	Unit      string   `json:"unit"`
	Container string   `json:"container"` // whose dumps, as the point names it
	Into      string   `json:"into"`      // the running container they went into
	Profile   string   `json:"profile"`
	Files     []string `json:"files"`
	Bytes     int64    `json:"bytes"`
}

// LoadDumps loads the dumps a point holds for opts.Container into the
// running container into (the same name when empty): psql and pg_restore,
// mysql, or an RDB replace and restart for Redis. A database that holds
// data is refused unless opts.Force.
func LoadDumps(ctx context.Context, repo *repository.Repository, eng *engine.Client, opts Options, into string) (DumpResult, error) {
	point, m, err := load(ctx, repo, opts.Ref)
	if err != nil {
		return DumpResult{}, err
	}
	res := DumpResult{ID: point.ID, Unit: point.Unit, Container: opts.Container}
	var d *layout.Dump
	var have []string
	for i := range m.Dumps {
		have = append(have, m.Dumps[i].Container)
		if m.Dumps[i].Container == opts.Container {
			d = &m.Dumps[i]
		}
	}
	switch {
	case opts.Container == "":
		return res, errors.New("--dump needs --container NAME: the container whose dumps to load")
	case d == nil && len(have) == 0:
		return res, fmt.Errorf("restore point %s holds no dumps: it was taken with consistency %s (dumps come with dump or auto)", point.ID, m.Consistency)
	case d == nil:
		return res, fmt.Errorf("restore point %s holds no dumps of %s; it has dumps of: %s", point.ID, opts.Container, strings.Join(have, ", "))
	}
	if into == "" {
		into = opts.Container
	}
	target, err := eng.Container(ctx, into)
	if err != nil {
		return res, fmt.Errorf("container %s to load the dumps into: %w (restore the container first, or name a running one with --into)", into, err)
	}
	if target.State != "running" {
		return res, fmt.Errorf("container %s is %s: a dump loads into a running database; start it first", into, target.State)
	}
	res.Into, res.Profile = target.Name, d.Profile
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	l := &loader{ctx: ctx, repo: repo, eng: eng, id: point.ID, dir: path.Join(layout.DumpsDir, d.Container), target: target.ID, res: &res, log: opts.Log}
	switch d.Profile {
	case consistency.PostgreSQL:
		err = l.postgres(d.Files, d.Sources, opts.Force, opts.WithUsers)
	case consistency.MariaDB:
		err = l.mariadb(d.Files, opts.Force, opts.WithUsers)
	case consistency.Redis:
		err = l.redis(d.Files, opts.Force)
	case consistency.SQLite:
		err = l.sqlite(d.Files, d.Sources, opts.Force)
	case consistency.MongoDB:
		err = l.mongodb(d.Files, opts.Force)
	default:
		err = fmt.Errorf("dumps of profile %q cannot be loaded by this version", d.Profile)
	}
	return res, err
}

type loader struct {
	ctx    context.Context
	repo   *repository.Repository
	eng    *engine.Client
	id     string
	dir    string
	target string
	res    *DumpResult
	log    *slog.Logger
}

// output runs a query command and returns its trimmed stdout.
func (l *loader) output(cmd []string) (string, error) {
	return consistency.Output(l.ctx, l.eng, l.target, cmd)
}

// feed streams one dump file from the point into a command's stdin.
func (l *loader) feed(file string, cmd []string) error {
	return l.feedFiltered(file, cmd, nil)
}

// feedFiltered is feed with the file passed through filter first.
func (l *loader) feedFiltered(file string, cmd []string, filter func(io.Reader) io.Reader) error {
	rc, err := l.repo.OpenFile(l.ctx, l.id, path.Join(l.dir, file))
	if err != nil {
		return err
	}
	defer rc.Close()
	cr := &countingReader{r: rc}
	var in io.Reader = cr
	if filter != nil {
		in = filter(cr)
	}
	var errb bytes.Buffer
	r, err := l.eng.Exec(l.ctx, l.target, engine.ExecSpec{Cmd: cmd}, in, io.Discard, &errb)
	if err == nil && r.ExitCode != 0 {
		err = fmt.Errorf("exited %d: %s", r.ExitCode, tailOf(errb.String()))
	}
	if err != nil {
		return fmt.Errorf("load %s into %s: %w", file, l.res.Into, err)
	}
	l.res.Files = append(l.res.Files, file)
	l.res.Bytes += cr.n
	return nil
}

func (l *loader) postgres(files []string, sources map[string]string, force, withUsers bool) error {
	list, err := l.output(consistency.PostgresList())
	if err != nil {
		return fmt.Errorf("list the databases of %s: %w", l.res.Into, err)
	}
	names, err := consistency.ParseNames(list)
	if err != nil {
		return fmt.Errorf("list the databases of %s: %w", l.res.Into, err)
	}
	exists := map[string]bool{}
	for _, db := range names {
		exists[db] = true
	}
	type job struct {
		file, db string
		exists   bool
	}
	var jobs []job
	var busy []string
	for _, f := range files {
		db, ok := dumpDatabase(f, sources)
		if !ok {
			continue
		}
		j := job{file: f, db: db, exists: exists[db]}
		if j.exists {
			n, err := l.output(consistency.PostgresTables(db))
			if err != nil {
				return fmt.Errorf("look into database %q of %s: %w", db, l.res.Into, err)
			}
			if n != "0" && !force {
				busy = append(busy, fmt.Sprintf("%q (%s relations)", db, n))
			}
		}
		jobs = append(jobs, j)
	}
	if len(busy) > 0 {
		return fmt.Errorf("%w: database %s in %s already hold data; load into an empty server, or replace them with --force", ErrConflict, strings.Join(busy, ", "), l.res.Into)
	}
	for _, f := range files {
		if f == "globals.sql" {
			if err := l.globals(f, withUsers); err != nil {
				return err
			}
		}
	}
	for _, j := range jobs {
		if err := l.feed(j.file, consistency.PostgresRestore(j.db, j.exists, force)); err != nil {
			return fmt.Errorf("database %q: %w", j.db, err)
		}
	}
	return nil
}

// globals loads the roles and tablespaces. Roles the server has already
// keep their passwords and attributes unless withUsers: its superuser's
// login, lifeboat's included, keeps working.
func (l *loader) globals(file string, withUsers bool) error {
	if withUsers {
		return l.feed(file, consistency.PostgresGlobals())
	}
	out, err := l.output(consistency.PostgresRoles())
	if err != nil {
		return fmt.Errorf("list the roles of %s: %w", l.res.Into, err)
	}
	roles, err := consistency.ParseNames(out)
	if err != nil {
		return fmt.Errorf("list the roles of %s: %w", l.res.Into, err)
	}
	return l.feedFiltered(file, consistency.PostgresGlobals(), func(r io.Reader) io.Reader { return consistency.WithoutRoles(r, roles) })
}

// dumpDatabase is the database a PostgreSQL dump file holds: as the
// manifest names it, else (points of older versions) read back from the
// file name, which those versions wrote as the name itself.
func dumpDatabase(file string, sources map[string]string) (string, bool) {
	stem, ok := strings.CutSuffix(file, ".dump")
	if !ok {
		return "", false
	}
	if db, ok := sources[file]; ok {
		return db, true
	}
	if db, err := consistency.DecodeName(stem); err == nil {
		return db, true
	}
	return stem, true
}

// mariadb loads the user databases, and the system schema (users and
// grants) only with withUsers: the server's own logins, lifeboat's
// included, keep working. The system schema goes last, so the loads before
// it still log in with the server's own credentials, and its privileges
// take effect at once.
func (l *loader) mariadb(files []string, force, withUsers bool) error {
	n, err := l.output(consistency.MariaDBTables())
	if err != nil {
		return fmt.Errorf("look into %s: %w", l.res.Into, err)
	}
	if n != "0" && !force {
		return fmt.Errorf("%w: %s holds %s tables outside the system schemas, which the dump would replace; load into an empty server, or use --force", ErrConflict, l.res.Into, n)
	}
	var system bool
	for _, f := range files {
		switch f {
		case consistency.MariaDBSystemFile:
			system = true
		case consistency.MariaDBAllFile:
			// An older version's dump of every database, mysql included.
			if withUsers {
				if err := l.feed(f, consistency.MariaDBLoad(true)); err != nil {
					return err
				}
				continue
			}
			l.log.Warn("the dump holds the mysql system schema too (users, grants): loading it without; --with-users loads it", "file", f)
			if err := l.feedFiltered(f, consistency.MariaDBLoad(false), func(r io.Reader) io.Reader { return consistency.WithoutSchema(r, "mysql") }); err != nil {
				return err
			}
		default:
			if err := l.feed(f, consistency.MariaDBLoad(false)); err != nil {
				return err
			}
		}
	}
	if system && withUsers {
		return l.feed(consistency.MariaDBSystemFile, consistency.MariaDBLoad(true))
	}
	return nil
}

func (l *loader) redis(files []string, force bool) error {
	out, err := l.output(consistency.RedisKeys())
	if err != nil {
		return fmt.Errorf("look into %s: %w", l.res.Into, err)
	}
	fields := strings.Fields(out)
	if len(fields) != 2 {
		return fmt.Errorf("look into %s: unexpected answer %q", l.res.Into, out)
	}
	if fields[1] == "yes" {
		return fmt.Errorf("%s runs with appendonly yes and would load its append-only file, not the dump, at restart: restore its volume instead, or turn appendonly off for the load", l.res.Into)
	}
	if keys, _ := strconv.Atoi(fields[0]); keys > 0 && !force {
		return fmt.Errorf("%w: %s holds %d keys, which the dump would replace; use --force", ErrConflict, l.res.Into, keys)
	}
	for _, f := range files {
		if err := l.feed(f, consistency.RedisReplace()); err != nil {
			return err
		}
	}
	// The server dies with this command, and the exec with it.
	_, _ = l.eng.Exec(l.ctx, l.target, engine.ExecSpec{Cmd: consistency.RedisShutdown()}, nil, nil, nil)
	deadline := time.Now().Add(time.Minute)
	for {
		if err := l.eng.Start(l.ctx, l.target); err != nil {
			return err
		}
		if pong, err := l.output(consistency.RedisPing()); err == nil && pong == "PONG" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not answer PING within a minute after loading the dump", l.res.Into)
		}
		select {
		case <-l.ctx.Done():
			return l.ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (l *loader) sqlite(files []string, sources map[string]string, force bool) error {
	var busy []string
	for _, f := range files {
		p := sources[f]
		if p == "" {
			return fmt.Errorf("dump %s names no database path", f)
		}
		n, err := l.output(consistency.SQLiteExists(p))
		if err != nil {
			return fmt.Errorf("look at %s in %s: %w", p, l.res.Into, err)
		}
		if n != "0" && !force {
			busy = append(busy, p)
		}
	}
	if len(busy) > 0 {
		return fmt.Errorf("%w: %s exist in %s; stop the application and use --force to replace them", ErrConflict, strings.Join(busy, ", "), l.res.Into)
	}
	for _, f := range files {
		if err := l.feed(f, consistency.SQLitePut(sources[f])); err != nil {
			return err
		}
	}
	return nil
}

func (l *loader) mongodb(files []string, force bool) error {
	n, err := l.output(consistency.MongoCollections())
	if err != nil {
		return fmt.Errorf("look into %s: %w", l.res.Into, err)
	}
	if n != "0" && !force {
		return fmt.Errorf("%w: %s holds %s collections, which the dump would replace; use --force", ErrConflict, l.res.Into, n)
	}
	for _, f := range files {
		if err := l.feed(f, consistency.MongoRestore(force)); err != nil {
			return err
		}
	}
	return nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func tailOf(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 800 {
		s = "…" + s[len(s)-800:]
	}
	return s
}

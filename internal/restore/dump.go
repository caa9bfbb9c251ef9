package restore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
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
	l := &loader{ctx: ctx, repo: repo, eng: eng, id: point.ID, dir: path.Join(layout.DumpsDir, d.Container), target: target.ID, res: &res}
	switch d.Profile {
	case consistency.PostgreSQL:
		err = l.postgres(d.Files, opts.Force)
	case consistency.MariaDB:
		err = l.mariadb(d.Files, opts.Force)
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
}

// output runs a query command and returns its trimmed stdout.
func (l *loader) output(cmd []string) (string, error) {
	var out, errb bytes.Buffer
	r, err := l.eng.Exec(l.ctx, l.target, engine.ExecSpec{Cmd: cmd}, nil, &out, &errb)
	if err == nil && r.ExitCode != 0 {
		err = fmt.Errorf("exited %d: %s", r.ExitCode, strings.TrimSpace(errb.String()))
	}
	return strings.TrimSpace(out.String()), err
}

// feed streams one dump file from the point into a command's stdin.
func (l *loader) feed(file string, cmd []string) error {
	rc, err := l.repo.OpenFile(l.ctx, l.id, path.Join(l.dir, file))
	if err != nil {
		return err
	}
	defer rc.Close()
	cr := &countingReader{r: rc}
	var errb bytes.Buffer
	r, err := l.eng.Exec(l.ctx, l.target, engine.ExecSpec{Cmd: cmd}, cr, io.Discard, &errb)
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

func (l *loader) postgres(files []string, force bool) error {
	list, err := l.output(consistency.PostgresList())
	if err != nil {
		return fmt.Errorf("list the databases of %s: %w", l.res.Into, err)
	}
	exists := map[string]bool{}
	for _, db := range strings.Fields(list) {
		exists[db] = true
	}
	type job struct {
		file, db string
		exists   bool
	}
	var jobs []job
	var busy []string
	for _, f := range files {
		db, ok := strings.CutSuffix(f, ".dump")
		if !ok {
			continue
		}
		j := job{file: f, db: db, exists: exists[db]}
		if j.exists {
			n, err := l.output(consistency.PostgresTables(db))
			if err != nil {
				return fmt.Errorf("look into database %s of %s: %w", db, l.res.Into, err)
			}
			if n != "0" && !force {
				busy = append(busy, fmt.Sprintf("%s (%s relations)", db, n))
			}
		}
		jobs = append(jobs, j)
	}
	if len(busy) > 0 {
		return fmt.Errorf("%w: database %s in %s already hold data; load into an empty server, or replace them with --force", ErrConflict, strings.Join(busy, ", "), l.res.Into)
	}
	for _, f := range files {
		if f == "globals.sql" {
			if err := l.feed(f, consistency.PostgresGlobals()); err != nil {
				return err
			}
		}
	}
	for _, j := range jobs {
		if err := l.feed(j.file, consistency.PostgresRestore(j.db, j.exists, force)); err != nil {
			return err
		}
	}
	return nil
}

func (l *loader) mariadb(files []string, force bool) error {
	n, err := l.output(consistency.MariaDBTables())
	if err != nil {
		return fmt.Errorf("look into %s: %w", l.res.Into, err)
	}
	if n != "0" && !force {
		return fmt.Errorf("%w: %s holds %s tables outside the system schemas, which the dump would replace; load into an empty server, or use --force", ErrConflict, l.res.Into, n)
	}
	for _, f := range files {
		if err := l.feed(f, consistency.MariaDBLoad()); err != nil {
			return err
		}
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

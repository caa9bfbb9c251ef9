// Package repository keeps restore points in a kopia repository used as a
// library: encrypted, deduplicated and compressed, safe for several writers
// at once. kopia's types stay inside this package and internal/source.
package repository

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/kopia/kopia/repo"
	"github.com/kopia/kopia/repo/blob"
	"github.com/kopia/kopia/repo/content"
	"github.com/kopia/kopia/repo/format"
	"github.com/kopia/kopia/repo/logging"
	"github.com/kopia/kopia/repo/maintenance"
	"github.com/kopia/kopia/snapshot/policy"
	"golang.org/x/sys/unix"

	"github.com/lifeboat-backup/lifeboat/internal/secret"
)

// contentHash is the hash of new repositories: BLAKE3, which kopia's own
// benchmark runs at 4.1 GB/s on this machine against 1.1 GB/s for its
// default BLAKE2B, where hashing was 15 % of a backup's CPU. The stock kopia
// CLI offers and reads it; dedup is the same, and an existing repository
// keeps the hash it was made with.
const contentHash = "BLAKE3-256-128"

// contentSplitter cuts the files of new repositories into contents of
// 1 MiB on average (2 MiB at most), where kopia's default cuts 4 MiB (8
// at most). A restore gets each content whole from kopia and writes it
// out; one of 4 MiB has left the CPU's cache by the time it is written,
// and the kernel's copy into the page cache ran at a ninth of the speed
// it runs at from 1 MiB: a 1 GiB restore of the bench's tree spent 1.8 s
// of CPU in that copy, restic's 0.2 s. Measured on that tree: restore
// 2.58 and 2.96 s against 3.52 and 3.44 s (restic 3.71 and 3.84 s), the
// repository 0.03 % larger. The stock kopia CLI offers and reads it, and
// an existing repository keeps the splitter it was made with.
const contentSplitter = "DYNAMIC-1M-BUZHASH"

// Errors a caller maps to exit codes and hints.
var (
	ErrNotFound      = errors.New("no repository")
	ErrExists        = errors.New("repository already exists")
	ErrWrongPassword = errors.New("wrong repository password")
	ErrNotWritable   = errors.New("repository not writable")
	// ErrDamaged means the repository's own metadata (an index blob) is
	// unreadable: Repair rebuilds it from the packs.
	ErrDamaged = errors.New("repository damaged")
)

func init() {
	// kopia refuses a permissive connection (see openPermissive) unless
	// this is set; it only ever matters for those.
	os.Setenv("KOPIA_UPGRADE_LOCK_ENABLED", "1")
}

// Options locate and unlock a repository.
type Options struct {
	Location string // a path; "" means DefaultPath()
	Password PasswordSource
	Hostname string // recorded in restore points; os.Hostname() when empty
	StateDir string // parent of connection configs and caches; "" means the XDG/var default
	Logger   *slog.Logger
	// ReadOnly skips the writability check, for listing and restoring.
	ReadOnly bool
	// PointInTime, when set, opens an S3 repository as it was then, from
	// the bucket's object versions: read-only, for recovery after the
	// current versions were overwritten or deleted.
	PointInTime time.Time
	// LockMode (governance or compliance) and LockPeriod, for Init of a
	// repository on S3: kopia locks every blob it writes for the period,
	// and maintenance extends the locks.
	LockMode   string
	LockPeriod time.Duration
	// KeyDerivation, for Init: how the password becomes the key, scrypt
	// ("", the default) or pbkdf2 (see keyDerivations).
	KeyDerivation string
}

// Repository is an open repository.
type Repository struct {
	rep      repo.Repository
	log      *slog.Logger
	loc      Location
	path     string // loc.String()
	hostname string
	// damaged names the unreadable index blob a read-only open went past
	// (see openPermissive); "" when the index is whole.
	damaged string
	// viewState is a point-in-time view's own state directory, removed
	// at Close (see viewStateDir).
	viewState string
}

// InitResult says what Init did.
type InitResult struct {
	Path              string
	PasswordFile      string // set when a password was generated into a new file
	PasswordGenerated bool
}

const username = "lifeboat"

// Init creates a repository with encryption and zstd compression on.
func Init(ctx context.Context, opts Options) (InitResult, error) {
	loc, err := ParseLocation(opts.Location)
	if err != nil {
		return InitResult{}, err
	}
	path := loc.String()
	res := InitResult{Path: path}
	if !opts.PointInTime.IsZero() {
		return res, fmt.Errorf("%w: a repository is created as it is now: run init without --point-in-time", ErrPointInTime)
	}
	kdf, err := keyDerivation(opts.KeyDerivation)
	if err != nil {
		return res, err
	}
	if loc.Kind == KindFile {
		if err := checkCreatable(path); err != nil {
			return res, err
		}
	}
	pw, generated, err := resolvePassword(opts.Password, loc, true)
	if err != nil {
		return res, err
	}
	if generated {
		res.PasswordGenerated, res.PasswordFile = true, PasswordFileFor(path)
	}
	ctx = withKopiaLogs(ctx, opts.logger())
	mode, period, err := repoLock(ctx, opts, loc)
	if err != nil {
		return res, err
	}
	st, err := loc.storage(ctx, true)
	if err != nil {
		return res, fmt.Errorf("create repository: %w", err)
	}
	defer st.Close(ctx)
	nopts := &repo.NewRepositoryOptions{
		RetentionMode: mode, RetentionPeriod: period,
		BlockFormat:                       format.ContentFormat{Hash: contentHash},
		ObjectFormat:                      format.ObjectFormat{Splitter: contentSplitter},
		FormatBlockKeyDerivationAlgorithm: kdf,
	}
	kdfHeap()
	if err := repo.Initialize(ctx, st, nopts, pw.Reveal()); err != nil {
		if errors.Is(err, repo.ErrAlreadyInitialized) {
			return res, fmt.Errorf("%w at %s", ErrExists, path)
		}
		return res, fmt.Errorf("initialize repository at %s: %w", path, err)
	}
	// A stale connection config from an earlier repository at this path
	// would point at the wrong cache: start clean.
	if err := os.RemoveAll(stateDir(opts.StateDir, loc.stateKey())); err != nil {
		return res, fmt.Errorf("reset repository state: %w", err)
	}
	r, err := open(ctx, opts, loc, pw)
	if err != nil {
		return res, err
	}
	defer r.Close(ctx)
	return res, r.setDefaults(ctx, mode != "")
}

// checkCreatable refuses a path that holds anything but an empty directory,
// and one we cannot write, before any password is asked for.
func checkCreatable(path string) error {
	entries, err := os.ReadDir(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		parent := filepath.Dir(path)
		for {
			if _, err := os.Stat(parent); err == nil {
				break
			}
			parent = filepath.Dir(parent)
		}
		if err := unix.Access(parent, unix.W_OK); err != nil {
			return fmt.Errorf("%w: cannot create %s under %s: %v", ErrNotWritable, path, parent, err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("repository path %s: %w", path, err)
	case len(entries) > 0:
		if _, err := os.Stat(filepath.Join(path, "kopia.repository.f")); err == nil {
			return fmt.Errorf("%w at %s", ErrExists, path)
		}
		return fmt.Errorf("repository path %s is a non-empty directory: choose an empty or new one", path)
	}
	if err := unix.Access(path, unix.W_OK); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrNotWritable, path, err)
	}
	return nil
}

// setDefaults does what kopia's CLI does at creation and Initialize does
// not: compression in the global policy, and a maintenance owner.
func (r *Repository) setDefaults(ctx context.Context, locked bool) error {
	return repo.WriteSession(ctx, r.rep, repo.WriteSessionOptions{Purpose: "lifeboat:init"},
		func(ctx context.Context, w repo.RepositoryWriter) error {
			pol := *policy.DefaultPolicy
			pol.CompressionPolicy.CompressorName = "zstd-fastest"
			if err := policy.SetPolicy(ctx, w, policy.GlobalPolicySourceInfo, &pol); err != nil {
				return fmt.Errorf("set compression policy: %w", err)
			}
			p := maintenance.DefaultParams()
			p.Owner = w.ClientOptions().UsernameAtHost()
			// A locked repository's full maintenance extends the locks.
			p.ExtendObjectLocks = locked
			if err := maintenance.SetParams(ctx, w, &p); err != nil {
				return fmt.Errorf("set maintenance owner: %w", err)
			}
			return nil
		})
}

// Open opens an existing repository.
func Open(ctx context.Context, opts Options) (*Repository, error) {
	loc, err := ParseLocation(opts.Location)
	if err != nil {
		return nil, err
	}
	if err := checkPointInTime(opts, &loc); err != nil {
		return nil, err
	}
	path := loc.String()
	if loc.Kind == KindFile {
		if _, err := os.Stat(filepath.Join(path, "kopia.repository.f")); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("%w at %s", ErrNotFound, path)
			}
			return nil, fmt.Errorf("open repository %s: %w", path, err)
		}
		if !opts.ReadOnly {
			if err := unix.Access(path, unix.W_OK); err != nil {
				return nil, fmt.Errorf("%w: %s: %v", ErrNotWritable, path, err)
			}
		}
	}
	pw, _, err := resolvePassword(opts.Password, loc, false)
	if err != nil {
		return nil, err
	}
	return open(withKopiaLogs(ctx, opts.logger()), opts, loc, pw)
}

func open(ctx context.Context, opts Options, loc Location, pw secret.Value) (*Repository, error) {
	path := loc.String()
	hostname := opts.Hostname
	if hostname == "" {
		hostname, _ = os.Hostname()
	}
	dir := stateDir(opts.StateDir, loc.stateKey())
	view := ""
	if loc.pointInTime() {
		var err error
		if dir, err = viewStateDir(dir); err != nil {
			return nil, err
		}
		view = dir
	}
	config := filepath.Join(dir, "repository.config")
	if err := connectOnce(ctx, dir, config, loc, hostname, pw); err != nil {
		os.RemoveAll(view)
		return nil, err
	}
	r, err := openConfig(ctx, opts, path, config, pw)
	if err != nil {
		os.RemoveAll(view)
		return nil, err
	}
	r.loc, r.path, r.hostname, r.viewState = loc, path, hostname, view
	return r, nil
}

// openConfig opens a connection config, past a damaged index when opts
// are read-only.
func openConfig(ctx context.Context, opts Options, path, config string, pw secret.Value) (*Repository, error) {
	log := opts.logger()
	kdfHeap()
	rep, err := repo.Open(ctx, config, pw.Reveal(), &repo.Options{
		// kopia's default is os.Exit(1); a daemon must survive and report.
		OnFatalError: func(err error) { log.Error("repository fatal error", "err", err) },
		// kopia's diagnostic log of every content written and looked up,
		// gzipped into _log blobs: a tenth of a backup's CPU on many
		// small files (profiled on 200,000 files), read by no tool of
		// ours. Lifeboat's own logs say what happened.
		DisableRepositoryLog: true,
	})
	if err != nil {
		err = classifyOpenError(path, err)
		if !opts.ReadOnly || !errors.Is(err, ErrDamaged) {
			return nil, err
		}
		r, perr := openPermissive(ctx, config, pw, log, badIndexBlob(err))
		if perr != nil {
			return nil, errors.Join(err, perr)
		}
		return r, nil
	}
	return &Repository{rep: rep, log: log}, nil
}

// connectOnce writes the kopia connection config the first time a
// repository is used from this machine. A lock file serialises first uses:
// two processes starting at once must not race on the config file.
func connectOnce(ctx context.Context, dir, config string, loc Location, hostname string, pw secret.Value) error {
	path := loc.String()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create repository state dir: %w", err)
	}
	unlock, err := lockFile(filepath.Join(dir, "connect.lock"))
	if err != nil {
		return err
	}
	defer unlock()
	if _, err := os.Stat(config); err == nil {
		return nil
	}
	st, err := loc.storage(ctx, false)
	if err != nil {
		return fmt.Errorf("open repository: %w", err)
	}
	defer st.Close(ctx)
	cache := content.CachingOptions{CacheDirectory: filepath.Join(dir, "cache")}
	if loc.Kind == KindS3 {
		// Remote data is worth caching, within bounds.
		cache.ContentCacheSizeBytes = 2 << 30
	}
	copts := &repo.ConnectOptions{
		// A point-in-time view's storage refuses writes; kopia must not try.
		ClientOptions: repo.ClientOptions{Hostname: hostname, Username: username, ReadOnly: loc.pointInTime()},
		// No data cache: the repository is a local directory, as fast to
		// read as a cache of it, and filling one cost a quarter of a
		// restore's time. Metadata (indexes, directories) is still cached.
		CachingOptions: cache,
	}
	kdfHeap()
	err = repo.Connect(ctx, config, st, pw.Reveal(), copts)
	if err != nil {
		err = classifyOpenError(path, err)
		if errors.Is(err, ErrDamaged) {
			// kopia verifies a new connection by opening the repository,
			// and removes the config when that fails. A damaged index is
			// no reason to refuse the connection, which a read-only open
			// and Repair both need: connect permissively, then write the
			// ordinary config.
			copts.ReadOnly, copts.PermissiveCacheLoading = true, true
			kdfHeap()
			if perr := repo.Connect(ctx, config, st, pw.Reveal(), copts); perr == nil {
				return rewriteConfig(config, config, false)
			}
		}
		os.Remove(config)
		return err
	}
	return nil
}

// rewriteConfig writes the connection config from to path, permissive
// (read-only, skipping unreadable index blobs) or not.
func rewriteConfig(from, path string, permissive bool) error {
	lc, err := repo.LoadConfigFromFile(from)
	if err != nil {
		return fmt.Errorf("read connection config: %w", err)
	}
	// LoadConfigFromFile made the cache directory absolute: a config
	// written elsewhere shares the connection's cache.
	lc.ReadOnly, lc.PermissiveCacheLoading = permissive, permissive
	b, err := json.Marshal(lc)
	if err == nil {
		err = os.WriteFile(path+".tmp", b, 0o600)
	}
	if err == nil {
		err = os.Rename(path+".tmp", path)
	}
	if err != nil {
		return fmt.Errorf("write connection config %s: %w", path, err)
	}
	return nil
}

func classifyOpenError(path string, err error) error {
	switch {
	case errors.Is(err, repo.ErrInvalidPassword):
		return fmt.Errorf("%w for %s", ErrWrongPassword, path)
	case errors.Is(err, repo.ErrRepositoryNotInitialized), errors.Is(err, blob.ErrBlobNotFound):
		return fmt.Errorf("%w at %s", ErrNotFound, path)
	case badIndexBlob(err) != "":
		return fmt.Errorf("%w: %s: index blob %s unreadable: %v", ErrDamaged, path, badIndexBlob(err), err)
	}
	return fmt.Errorf("open repository %s: %w", path, err)
}

func lockFile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock %s: %w", path, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { unix.Flock(int(f.Fd()), unix.LOCK_UN); f.Close() }, nil
}

// Path is the repository's location.
func (r *Repository) Path() string { return r.path }

// Close releases the repository.
func (r *Repository) Close(ctx context.Context) error {
	err := r.rep.Close(ctx)
	if r.viewState != "" {
		os.RemoveAll(r.viewState)
	}
	if err != nil {
		return fmt.Errorf("close repository: %w", err)
	}
	return nil
}

func (o Options) logger() *slog.Logger {
	if o.Logger != nil {
		return o.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// withKopiaLogs routes kopia's own logs into slog at debug level, and only
// when debug is on: formatting them costs time on the data path.
func withKopiaLogs(ctx context.Context, log *slog.Logger) context.Context {
	if !log.Enabled(ctx, slog.LevelDebug) {
		return ctx
	}
	return logging.WithLogger(ctx, logging.ToWriter(slogWriter{log}))
}

type slogWriter struct{ log *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	w.log.Debug("kopia", "msg", string(trimNewline(p)))
	return len(p), nil
}

func trimNewline(p []byte) []byte {
	for len(p) > 0 && (p[len(p)-1] == '\n' || p[len(p)-1] == '\r') {
		p = p[:len(p)-1]
	}
	return p
}

var _ io.Writer = slogWriter{}

// Package restore brings restore points back: a tree into a directory, or a
// volume into Docker. It never overwrites data unless asked, writes files
// atomically, re-applies what the repository format does not keep (hard
// links, xattrs, ACLs, device nodes) and flushes everything before it
// reports success.
package restore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/lifeboat-backup/lifeboat/internal/engine"
	"github.com/lifeboat-backup/lifeboat/internal/failpoint"
	"github.com/lifeboat-backup/lifeboat/internal/fsmeta"
	"github.com/lifeboat-backup/lifeboat/internal/layout"
	"github.com/lifeboat-backup/lifeboat/internal/progress"
	"github.com/lifeboat-backup/lifeboat/internal/repository"
	"github.com/lifeboat-backup/lifeboat/internal/restore/txn"
)

// ErrNotEmpty means the target holds data and --force was not given.
var ErrNotEmpty = errors.New("target is not empty")

// Result says what a restore did. It is what `restore --json` prints.
type Result struct {
	ID       string   `json:"id"`
	Unit     string   `json:"unit"`
	Target   string   `json:"target,omitempty"`
	Volume   string   `json:"volume,omitempty"`
	Files    int64    `json:"files"`
	Dirs     int64    `json:"dirs"`
	Bytes    int64    `json:"bytes"`
	Links    int      `json:"hard_links"`
	Xattrs   int      `json:"xattrs"`
	Specials int      `json:"special_files"`
	NotKept  []string `json:"not_kept,omitempty"`
}

// Options of a restore.
type Options struct {
	Ref       string // ID, prefix, UNIT@latest, UNIT@TIME
	Volume    string // only this volume
	Path      string // only this path of the restore point
	Target    string // a directory: extract instead of touching Docker
	As        string // restore the volume (or a copy of the unit) under this name
	Container string // only this container
	ImageOnly bool   // only load the point's images
	// Ports changes the host ports the recreated containers publish, so
	// that a copy can run beside the original holding them.
	Ports     engine.PortPolicy
	Force     bool
	WithUsers bool // with --dump: load the source's users and grants too, over the server's own
	// ComposeDir receives a project's Compose files instead of the paths
	// they had; a copy (As) writes them only there.
	ComposeDir string
	// JournalDir is the restore journal (STATE_DIR/restores): every
	// restore that changes something records its steps there, so a
	// killed one is rolled back or finished by the next command.
	JournalDir string
	Log        *slog.Logger
	Progress   *progress.Counters

	// HelperDir journals the helper containers of a remote engine, and
	// StageDir holds the files a remote restore sends (remote.go).
	HelperDir, StageDir string
}

// ToDirectory extracts a restore point, one volume of it (its files directly
// in the target) or one path of it into a directory.
func ToDirectory(ctx context.Context, repo *repository.Repository, opts Options) (Result, error) {
	point, m, err := load(ctx, repo, opts.Ref)
	if err != nil {
		return Result{}, err
	}
	res := Result{ID: point.ID, Unit: point.Unit, Target: opts.Target}
	sub, metas, err := selectPart(ctx, repo, point.ID, m, opts)
	if err != nil {
		return res, err
	}
	if err := checkTarget(opts.Target, opts.Force); err != nil {
		return res, err
	}
	label := "directory " + opts.Target
	tx, err := begin(ctx, opts, txn.Entry{Unit: point.Unit, What: label, SwapCommits: true})
	if err != nil {
		return res, err
	}
	err = func() error {
		p, err := place(tx, opts.Target, label)
		if err != nil {
			return err
		}
		if err := extract(ctx, repo, point.ID, sub, p.into, metas, opts.Progress, &res); err != nil {
			return err
		}
		return p.swapIn()
	}()
	return res, conclude(ctx, tx, nil, opts.Log, err)
}

func load(ctx context.Context, repo *repository.Repository, ref string) (repository.Point, *layout.Manifest, error) {
	point, err := repo.Resolve(ctx, ref)
	if err != nil {
		return point, nil, err
	}
	b, err := repo.ReadFile(ctx, point.ID, layout.ManifestPath)
	if err != nil {
		return point, nil, err
	}
	m, err := layout.ParseManifest(b)
	return point, m, err
}

// metaSpec says which sidecar to apply where: Sub, when set, is the path
// inside the sidecar's tree that was restored alone (AsFile when that is a
// single file).
type metaSpec struct {
	Meta   string
	Sub    string
	AsFile bool
}

func whole(meta string) metaSpec { return metaSpec{Meta: meta} }

// dataItems are all the trees of files a point holds, each with a sidecar.
func dataItems(m *layout.Manifest) []layout.Data {
	var out []layout.Data
	for _, v := range m.Volumes {
		out = append(out, v.Data)
	}
	for _, b := range m.Binds {
		out = append(out, b.Data)
	}
	for _, c := range m.Containers {
		if c.Layer != nil {
			out = append(out, *c.Layer)
		}
	}
	return out
}

// selectPart maps the options to a path inside the restore point and the
// sidecars to apply, keyed by where their tree lands relative to the target.
func selectPart(ctx context.Context, repo *repository.Repository, id string, m *layout.Manifest, opts Options) (string, map[string]metaSpec, error) {
	metas := map[string]metaSpec{}
	switch {
	case opts.Volume != "" && opts.Path != "":
		return "", nil, errors.New("give --volume or --path, not both")
	case opts.Volume != "":
		v, err := m.FindVolume(opts.Volume)
		if err != nil {
			return "", nil, err
		}
		metas["."] = whole(v.Meta)
		return v.Path, metas, nil
	case opts.Path != "":
		p := path.Clean("/" + opts.Path)[1:]
		for _, d := range dataItems(m) {
			switch {
			case p == d.Path:
				metas["."] = whole(d.Meta)
			case p == "" || strings.HasPrefix(d.Path, p+"/"):
				metas[strings.TrimPrefix(strings.TrimPrefix(d.Path, p), "/")] = whole(d.Meta)
			case strings.HasPrefix(p, d.Path+"/"):
				file, err := repo.IsFile(ctx, id, p)
				if err != nil {
					return "", nil, err
				}
				metas["."] = metaSpec{Meta: d.Meta, Sub: strings.TrimPrefix(p, d.Path+"/"), AsFile: file}
			}
		}
		return p, metas, nil
	}
	for _, d := range dataItems(m) {
		metas[d.Path] = whole(d.Meta)
	}
	return "", metas, nil
}

// checkTarget makes sure restoring into dir overwrites nothing unless
// force: it must not exist or be an empty directory. With force a
// directory's contents are replaced, staged beside it and swapped in.
func checkTarget(dir string, force bool) error {
	if dir == "" {
		return errors.New("no target directory")
	}
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("target %s: %w", dir, err)
	case len(entries) > 0 && !force:
		return fmt.Errorf("%w: %s holds %d entries: choose an empty or new directory (or --force to replace its contents)", ErrNotEmpty, dir, len(entries))
	}
	return nil
}

func extract(ctx context.Context, repo *repository.Repository, id, sub, target string, metas map[string]metaSpec, c *progress.Counters, res *Result) error {
	return extractInto(ctx, repo, repository.ExtractOptions{ID: id, Path: sub, Target: target, Progress: c}, metas, res)
}

func extractInto(ctx context.Context, repo *repository.Repository, eo repository.ExtractOptions, metas map[string]metaSpec, res *Result) error {
	id, target := eo.ID, eo.Target
	st, err := repo.Extract(ctx, eo)
	if err != nil {
		return err
	}
	failpoint.Hit("restore-extracted")
	res.Files, res.Dirs, res.Bytes = st.Files, st.Dirs, st.Bytes
	for rel, spec := range metas {
		if err := applyMeta(ctx, repo, id, spec, target, rel, res); err != nil {
			return err
		}
	}
	return syncTree(target)
}

func applyMeta(ctx context.Context, repo *repository.Repository, id string, spec metaSpec, target, rel string, res *Result) error {
	b, err := repo.ReadFile(ctx, id, spec.Meta)
	if err != nil {
		return err
	}
	sc, err := fsmeta.Unmarshal(b)
	if err != nil {
		return fmt.Errorf("read %s: %w", spec.Meta, err)
	}
	if spec.Sub != "" {
		sc = sc.Sub(spec.Sub, spec.AsFile)
	}
	if rel == "" {
		rel = "."
	}
	// Relative to the target: a symlink a container planted on the way
	// to rel is refused, not followed.
	ar, err := fsmeta.ApplyAt(ctx, target, rel, sc)
	if err != nil {
		return fmt.Errorf("re-apply links, xattrs and special files: %w", err)
	}
	res.Links += ar.Links
	res.Xattrs += ar.Xattrs
	res.Specials += ar.Specials
	for _, nk := range append(sc.NotKept, ar.NotKept...) {
		res.NotKept = append(res.NotKept, path.Join(rel, string(nk.Path))+": "+nk.Reason)
	}
	return nil
}

// syncTree flushes the filesystem holding dir: one syncfs instead of an
// fsync per file, before the restore is reported done.
func syncTree(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("flush %s: %w", dir, err)
	}
	defer f.Close()
	if err := unix.Syncfs(int(f.Fd())); err != nil {
		return fmt.Errorf("flush %s: %w", dir, err)
	}
	return nil
}

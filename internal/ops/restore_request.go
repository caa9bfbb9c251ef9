package ops

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/lifeboat-backup/lifeboat/internal/engine"
)

// RestoreKind is what a validated restore does.
type RestoreKind string

// The kinds of restore.
const (
	IntoUnit      RestoreKind = "unit"      // recreate the unit (or one container) on the engine
	IntoVolume    RestoreKind = "volume"    // one volume into a Docker volume
	IntoDirectory RestoreKind = "directory" // files into a host directory
	LoadDump      RestoreKind = "dump"      // a container's database dumps into a running container
	ImagesOnly    RestoreKind = "images"    // only the point's images
)

// RestoreRequest is a restore as every front end states it: the CLI's
// flags, the API's JSON, the web UI's form.
type RestoreRequest struct {
	Point     string `json:"point"` // an ID, a unique prefix, UNIT@latest or UNIT@TIME
	Container string `json:"container,omitempty"`
	Volume    string `json:"volume,omitempty"`
	Path      string `json:"path,omitempty"`
	Target    string `json:"target,omitempty"` // a host directory: extract instead of touching Docker
	As        string `json:"as,omitempty"`
	// Ports changes the host ports recreated containers publish: "none"
	// or "shift=N" (N added to each), so a copy can run beside the
	// original that holds them.
	Ports     string `json:"ports,omitempty"`
	Force     bool   `json:"force,omitempty"`
	DryRun    bool   `json:"dry_run,omitempty"`
	ImageOnly bool   `json:"image_only,omitempty"`
	Dump      bool   `json:"dump,omitempty"`       // load the dumps of container into a running container
	Into      string `json:"into,omitempty"`       // with dump: the running container to load into
	WithUsers bool   `json:"with_users,omitempty"` // with dump: the source's users and grants too
	// FromHost picks another host's points for UNIT@latest or UNIT@TIME,
	// which otherwise mean this host's (HOST:UNIT@latest says the same).
	FromHost string `json:"from_host,omitempty"`
	// ComposeDir is where a project's Compose files are written instead of
	// where they were (a host directory, validated as target is).
	ComposeDir string `json:"compose_dir,omitempty"`
	// NoWait refuses when another job holds a unit the restore writes.
	NoWait bool `json:"-"`
}

// Validate checks that the options go together, as env allows them, and
// says what kind of restore they ask for. It narrows the request as the
// restore needs it: container with target extracts only containers/NAME.
// A relative target is made absolute against the working directory, except
// when env is confined (a daemon's working directory means nothing to its
// client): then it must be absolute and under env's target roots.
func (r *RestoreRequest) Validate(env *Env) (RestoreKind, error) {
	if strings.TrimSpace(r.Point) == "" {
		return "", fmt.Errorf("%w: give the restore point (an ID, UNIT@latest or UNIT@TIME)", ErrInvalid)
	}
	host := r.FromHost
	if host == "" && env != nil && env.Host != "" && strings.Contains(r.Point, "@") && !strings.Contains(strings.SplitN(r.Point, "@", 2)[0], ":") {
		// UNIT@latest is this host's newest point: with many engines,
		// this engine's.
		host = env.Host
	}
	p, err := withHost(r.Point, host)
	if err != nil {
		return "", err
	}
	r.Point = p
	if r.Target == "" && r.Path != "" {
		return "", fmt.Errorf("%w: path needs target DIR: a path is extracted into a directory", ErrInvalid)
	}
	if (r.Into != "" || r.WithUsers) && !r.Dump {
		return "", fmt.Errorf("%w: into and with-users go with dump", ErrInvalid)
	}
	if r.Dump {
		return r.validateDump()
	}
	if r.Target != "" && r.As != "" {
		return "", fmt.Errorf("%w: as names a Docker volume or project; with target the files go to the directory", ErrInvalid)
	}
	if r.Volume != "" && r.Container != "" {
		return "", fmt.Errorf("%w: give volume or container, not both", ErrInvalid)
	}
	if r.ImageOnly && (r.Target != "" || r.Volume != "") {
		return "", fmt.Errorf("%w: image-only loads images into the engine: it takes no target or volume", ErrInvalid)
	}
	if r.Target != "" && r.Container != "" {
		// Validate may run twice on one request (a front end first, then
		// the operation): the narrowing it made is no conflict.
		if r.Path != "" && r.Path != "containers/"+r.Container {
			return "", fmt.Errorf("%w: give container or path, not both", ErrInvalid)
		}
		r.Path = "containers/" + r.Container
	}
	if r.ComposeDir != "" {
		if r.Target != "" || r.Volume != "" || r.ImageOnly || r.Container != "" {
			return "", fmt.Errorf("%w: compose-dir goes with a restore of a whole project into Docker: it takes no target, volume, container or image-only", ErrInvalid)
		}
		d, err := checkTarget(env, r.ComposeDir)
		if err != nil {
			return "", fmt.Errorf("compose-dir: %w", err)
		}
		r.ComposeDir = d
	}
	if r.Ports != "" {
		if r.Target != "" || r.Volume != "" || r.ImageOnly {
			return "", fmt.Errorf("%w: ports goes with a restore of containers into Docker: it takes no target, volume or image-only", ErrInvalid)
		}
		if _, err := engine.ParsePortPolicy(r.Ports); err != nil {
			return "", fmt.Errorf("%w: %v", ErrInvalid, err)
		}
	}
	switch {
	case r.ImageOnly:
		return ImagesOnly, nil
	case r.Target != "":
		t, err := checkTarget(env, r.Target)
		if err != nil {
			return "", err
		}
		r.Target = t
		return IntoDirectory, nil
	case r.Volume != "":
		return IntoVolume, nil
	}
	return IntoUnit, nil
}

func (r *RestoreRequest) validateDump() (RestoreKind, error) {
	if r.Container == "" {
		return "", fmt.Errorf("%w: dump needs container NAME: the container whose dumps to load", ErrInvalid)
	}
	if r.Target != "" || r.Volume != "" || r.As != "" || r.ImageOnly || r.ComposeDir != "" || r.Ports != "" {
		return "", fmt.Errorf("%w: dump loads into a running container: it takes no target, volume, as, ports or image-only (extract dumps as files with path dumps/NAME and target DIR)", ErrInvalid)
	}
	if r.DryRun {
		return "", fmt.Errorf("%w: dump has no dry run: it refuses a database that holds data unless forced", ErrInvalid)
	}
	return LoadDump, nil
}

// checkTarget makes the target absolute and, when confined, keeps it
// under a root. Symbolic links in the part that exists are followed
// first, so a link inside a root cannot lead out of it.
func checkTarget(env *Env, target string) (string, error) {
	if !env.Confined {
		abs, err := filepath.Abs(target)
		if err != nil {
			return "", fmt.Errorf("target %s: %w", target, err)
		}
		return abs, nil
	}
	if !filepath.IsAbs(target) {
		return "", fmt.Errorf("%w: target %q is relative: give an absolute directory under one of restore.target_roots", ErrInvalid, target)
	}
	if len(env.TargetRoots) == 0 {
		return "", fmt.Errorf("%w: this daemon restores into Docker only: set restore.target_roots in its config file to allow host directories", ErrInvalid)
	}
	clean := filepath.Clean(target)
	real := resolveExisting(clean)
	for _, root := range env.TargetRoots {
		root = filepath.Clean(root)
		if within(clean, root) && within(real, resolveExisting(root)) {
			return clean, nil
		}
	}
	return "", fmt.Errorf("%w: target %s is outside restore.target_roots (%s)", ErrInvalid, target, strings.Join(env.TargetRoots, ", "))
}

// within reports whether p is root or below it.
func within(p, root string) bool {
	rel, err := filepath.Rel(root, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// resolveExisting follows symbolic links in the longest part of p that
// exists and appends the rest unchanged.
func resolveExisting(p string) string {
	rest := ""
	for cur := p; ; cur = filepath.Dir(cur) {
		if real, err := filepath.EvalSymlinks(cur); err == nil {
			return filepath.Join(real, rest)
		} else if !errors.Is(err, os.ErrNotExist) {
			return p
		}
		if cur == filepath.Dir(cur) {
			return p
		}
		rest = filepath.Join(filepath.Base(cur), rest)
	}
}

// withHost names the host of a UNIT@… reference: HOST:UNIT@…. It may run
// twice on one request.
func withHost(point, host string) (string, error) {
	host = strings.TrimSpace(host)
	switch {
	case host == "" || strings.HasPrefix(point, host+":"):
		return point, nil
	case !strings.Contains(point, "@"):
		return "", fmt.Errorf("%w: from-host goes with UNIT@latest or UNIT@TIME: an ID names one point of one host already", ErrInvalid)
	case strings.Contains(strings.SplitN(point, "@", 2)[0], ":"):
		return "", fmt.Errorf("%w: %s names its host already: drop from-host", ErrInvalid, point)
	case strings.ContainsAny(host, ":@/ "):
		return "", fmt.Errorf("%w: from-host %q is not a host name", ErrInvalid, host)
	}
	return host + ":" + point, nil
}

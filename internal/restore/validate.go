package restore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ErrInvalid marks a restore request that cannot be carried out as stated:
// options that do not go together, or a target outside what is allowed.
var ErrInvalid = errors.New("invalid restore request")

// Kind is what a validated restore does; the front ends dispatch on it.
type Kind int

// The kinds of restore.
const (
	IntoUnit      Kind = iota // recreate the unit (or one container) on the engine
	IntoVolume                // one volume into a Docker volume
	IntoDirectory             // files into a host directory
	LoadDump                  // a container's database dumps into a running container
	ImagesOnly                // only the point's images
)

// Request is a restore as a front end states it: the CLI's flags or the
// API's JSON. Validate checks it the same way for both.
type Request struct {
	Options
	Dump bool   // load the dumps of Container into a running container
	Into string // with Dump: the running container to load into
	// TargetRoots, when Confined, are the directories under which Target
	// may lie. The CLI runs as the user who typed it and is not confined;
	// the API is, and with no roots it restores into Docker only.
	Confined    bool
	TargetRoots []string
}

// Validate checks that the options go together and says what kind of
// restore they ask for. It narrows the request as the restore needs it:
// Container with Target extracts only containers/NAME. A relative Target is
// resolved against the working directory when not Confined and refused
// when Confined (a daemon's working directory means nothing to its client).
func (r *Request) Validate() (Kind, error) {
	o := &r.Options
	if strings.TrimSpace(o.Ref) == "" {
		return 0, fmt.Errorf("%w: give the restore point (an ID, UNIT@latest or UNIT@TIME)", ErrInvalid)
	}
	if o.Target == "" && o.Path != "" {
		return 0, fmt.Errorf("%w: path needs target DIR: a path is extracted into a directory", ErrInvalid)
	}
	if (r.Into != "" || o.WithUsers) && !r.Dump {
		return 0, fmt.Errorf("%w: into and with-users go with dump", ErrInvalid)
	}
	if r.Dump {
		if o.Container == "" {
			return 0, fmt.Errorf("%w: dump needs container NAME: the container whose dumps to load", ErrInvalid)
		}
		if o.Target != "" || o.Volume != "" || o.As != "" || o.ImageOnly {
			return 0, fmt.Errorf("%w: dump loads into a running container: it takes no target, volume, as or image-only (extract dumps as files with path dumps/NAME and target DIR)", ErrInvalid)
		}
		return LoadDump, nil
	}
	if o.Target != "" && o.As != "" {
		return 0, fmt.Errorf("%w: as names a Docker volume or project; with target the files go to the directory", ErrInvalid)
	}
	if o.Volume != "" && o.Container != "" {
		return 0, fmt.Errorf("%w: give volume or container, not both", ErrInvalid)
	}
	if o.ImageOnly && (o.Target != "" || o.Volume != "") {
		return 0, fmt.Errorf("%w: image-only loads images into the engine: it takes no target or volume", ErrInvalid)
	}
	if o.Target != "" && o.Container != "" {
		if o.Path != "" {
			return 0, fmt.Errorf("%w: give container or path, not both", ErrInvalid)
		}
		o.Path = "containers/" + o.Container
	}
	switch {
	case o.ImageOnly:
		return ImagesOnly, nil
	case o.Target != "":
		t, err := r.checkTarget(o.Target)
		if err != nil {
			return 0, err
		}
		o.Target = t
		return IntoDirectory, nil
	case o.Volume != "":
		return IntoVolume, nil
	}
	return IntoUnit, nil
}

// checkTarget makes the target absolute and, when confined, keeps it
// under a root. Symbolic links in the part that exists are followed
// first, so a link inside a root cannot lead out of it.
func (r *Request) checkTarget(target string) (string, error) {
	if !r.Confined {
		abs, err := filepath.Abs(target)
		if err != nil {
			return "", fmt.Errorf("target %s: %w", target, err)
		}
		return abs, nil
	}
	if !filepath.IsAbs(target) {
		return "", fmt.Errorf("%w: target %q is relative: give an absolute directory under one of restore.target_roots", ErrInvalid, target)
	}
	if len(r.TargetRoots) == 0 {
		return "", fmt.Errorf("%w: this daemon restores into Docker only: set restore.target_roots in its config file to allow host directories", ErrInvalid)
	}
	clean := filepath.Clean(target)
	real := resolveExisting(clean)
	for _, root := range r.TargetRoots {
		root = filepath.Clean(root)
		if within(clean, root) && within(real, resolveExisting(root)) {
			return clean, nil
		}
	}
	return "", fmt.Errorf("%w: target %s is outside restore.target_roots (%s)", ErrInvalid, target, strings.Join(r.TargetRoots, ", "))
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

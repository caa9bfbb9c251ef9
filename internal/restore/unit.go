package restore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/lifeboat-backup/lifeboat/internal/engine"
	"github.com/lifeboat-backup/lifeboat/internal/failpoint"
	"github.com/lifeboat-backup/lifeboat/internal/helper"
	"github.com/lifeboat-backup/lifeboat/internal/layout"
	"github.com/lifeboat-backup/lifeboat/internal/repository"
	"github.com/lifeboat-backup/lifeboat/internal/restore/txn"
)

// ErrConflict means the target engine holds something the restore would
// replace, and --force (or --as) was not given.
var ErrConflict = errors.New("restore refused")

// UnitResult says what a unit restore created.
type UnitResult struct {
	ID         string   `json:"id"`
	Unit       string   `json:"unit"`
	Containers []string `json:"containers"`
	Volumes    []string `json:"volumes"`
	Binds      []string `json:"binds,omitempty"`
	Networks   []string `json:"networks,omitempty"`
	Images     []string `json:"images_loaded,omitempty"`
	NotKept    []string `json:"not_kept,omitempty"`
	// ComposeFiles are the project's Compose files written (those found
	// identical in place are not listed).
	ComposeFiles []string `json:"compose_files,omitempty"`
}

// unitRestore is one restore of a container or project unit.
type unitRestore struct {
	repo    *repository.Repository
	eng     *engine.Client
	opts    Options
	point   repository.Point
	m       *layout.Manifest
	rename  func(kind, old string) string
	res     UnitResult
	tx      *txn.Tx
	specs   map[string]engine.Spec
	load    []layout.Image  // images to load from the point before creating containers
	pull    []string        // timeline images to pull from their registry
	retag   [][2]string     // pulled image → the reference containers were made from
	fromTL  map[string]bool // containers created from their timeline image
	box     *sandboxPlan    // set for a drill's sandbox (see NewSandbox)
	compose []composeWrite  // the project's Compose files (planCompose)
	reuse   map[string]bool // bind sources that equal the point's: kept as they are
}

// ToUnit recreates a unit on the engine: networks, volumes, bind mounts and
// containers with their configuration and writable layers, started in
// dependency order. Nothing existing is replaced without opts.Force; then
// replaced containers and data are kept aside until the new containers
// run, and put back if the restore fails or is killed.
func ToUnit(ctx context.Context, repo *repository.Repository, eng *engine.Client, opts Options) (UnitResult, error) {
	point, m, err := load(ctx, repo, opts.Ref)
	if err != nil {
		return UnitResult{}, err
	}
	if len(m.Containers) == 0 && !opts.ImageOnly {
		return UnitResult{}, fmt.Errorf("%s holds no containers: restore its volume with --volume NAME", point.Unit)
	}
	u := &unitRestore{repo: repo, eng: eng, opts: opts, point: point, m: m, rename: renamer(m, opts.As)}
	u.res = UnitResult{ID: point.ID, Unit: point.Unit}
	if opts.ImageOnly {
		return u.res, u.imagesOnly(ctx)
	}
	cs, err := u.selected()
	if err != nil {
		return u.res, err
	}
	if err := u.preflight(ctx, cs); err != nil {
		return u.res, err
	}
	u.tx, err = begin(ctx, opts, txn.Entry{Unit: point.Unit, What: u.what(), EngineHost: eng.Host()})
	if err != nil {
		return u.res, err
	}
	err = u.run(ctx, cs)
	if err == nil {
		failpoint.Hit("restore-started")
	}
	return u.res, conclude(ctx, u.tx, eng, opts.Log, err)
}

// what describes the restore in the journal and its messages.
func (u *unitRestore) what() string {
	w := "in place"
	if u.opts.As != "" {
		w = "a copy as " + u.opts.As
	}
	if u.opts.Container != "" {
		w += ", container " + u.opts.Container
	}
	return w
}

// selected is every container, or the one named by --container.
func (u *unitRestore) selected() ([]layout.Container, error) {
	if u.opts.Container == "" {
		return u.m.Containers, nil
	}
	c, err := u.m.FindContainer(u.opts.Container)
	if err != nil {
		return nil, err
	}
	return []layout.Container{*c}, nil
}

// renamer maps names for a copy restored --as NAME beside the original:
// Compose names carry the project as prefix (proj_db_1, proj-db-1,
// proj_data); other names of the unit (a Compose container_name, a
// standalone container's volumes) get NAME_ in front, and a standalone
// container becomes NAME. Containers outside the unit that it refers to
// (links, volumes-from) keep their names. A copy must never take a name
// of the original: it would replace the original's containers.
func renamer(m *layout.Manifest, as string) func(kind, old string) string {
	if as == "" {
		return func(_, old string) string { return old }
	}
	ours := map[string]bool{}
	for _, c := range m.Containers {
		ours[c.Name] = true
	}
	return func(kind, old string) string {
		switch {
		case kind == "project":
			return as
		case kind == "container" && !ours[old]:
			return old
		case m.Project != "" && (strings.HasPrefix(old, m.Project+"_") || strings.HasPrefix(old, m.Project+"-")):
			return as + old[len(m.Project):]
		case m.Project == "" && kind == "container":
			return as
		}
		return as + "_" + old
	}
}

func (u *unitRestore) run(ctx context.Context, cs []layout.Container) error {
	if err := u.loadImages(ctx, u.load); err != nil {
		return err
	}
	if err := u.pullImages(ctx); err != nil {
		return err
	}
	if err := u.setAsideOld(ctx, cs); err != nil {
		return err
	}
	if u.opts.Container == "" {
		if err := u.networks(ctx); err != nil {
			return err
		}
		if err := u.volumes(ctx); err != nil {
			return err
		}
		if err := u.binds(ctx); err != nil {
			return err
		}
		if err := u.composeFiles(ctx); err != nil {
			return err
		}
	}
	var started []string
	for _, c := range cs {
		id, err := u.container(ctx, c)
		if err != nil {
			return err
		}
		if c.Running {
			started = append(started, id)
		}
	}
	for _, id := range started {
		if err := u.eng.Start(ctx, id); err != nil {
			return err
		}
		if err := u.eng.WaitHealthy(ctx, id, 2*time.Minute); err != nil {
			return err
		}
	}
	return nil
}

// setAsideOld renames and stops containers that --force replaces, so their
// names are free and their volumes still; they come back if the restore
// fails, and are removed once it is committed.
func (u *unitRestore) setAsideOld(ctx context.Context, cs []layout.Container) error {
	stamp := time.Now().UTC().Format("20060102T150405Z")
	for _, c := range cs {
		name := u.rename("container", c.Name)
		have, err := u.eng.Container(ctx, name)
		if errors.Is(err, engine.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		tmp := name + "-lifeboat-old-" + stamp
		if _, err := u.tx.Add(txn.Step{Kind: txn.Aside, ID: have.ID, Name: name, Tmp: tmp, Running: have.Running(), Label: "container " + name}); err != nil {
			return err
		}
		if err := u.eng.RenameContainer(ctx, have.ID, tmp); err != nil {
			return err
		}
		failpoint.Hit("restore-renamed")
		if err := u.eng.Stop(ctx, have.ID, engine.ContainerStopTimeout); err != nil {
			return err
		}
		failpoint.Hit("restore-stopped")
	}
	return nil
}

func (u *unitRestore) networks(ctx context.Context) error {
	for _, n := range u.m.Networks {
		n.Name = u.rename("network", n.Name)
		if n.Labels != nil && u.opts.As != "" {
			if _, ok := n.Labels["com.docker.compose.project"]; ok {
				n.Labels = cloneMap(n.Labels)
				n.Labels["com.docker.compose.project"] = u.opts.As
			}
		}
		if _, err := u.eng.Network(ctx, n.Name); err == nil {
			continue
		} else if !errors.Is(err, engine.ErrNotFound) {
			return err
		}
		i, err := u.tx.Add(txn.Step{Kind: txn.MadeNetwork, Name: n.Name, Label: "network " + n.Name})
		if err != nil {
			return err
		}
		err = u.eng.CreateNetwork(ctx, n)
		if errors.Is(err, engine.ErrExists) {
			// Created by someone else in between: not ours to remove.
			if err := u.tx.Drop(i); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		failpoint.Hit("restore-network-made")
		u.res.Networks = append(u.res.Networks, n.Name)
	}
	return nil
}

func (u *unitRestore) volumes(ctx context.Context) error {
	anon := u.anonymousNames()
	for _, v := range u.m.Volumes {
		if anon[v.Name] {
			continue // made with its container (fillAnonymous)
		}
		name := u.rename("volume", v.Name)
		spec := v.Volume
		spec.Name = name
		if u.opts.As != "" && spec.Labels != nil {
			spec.Labels = cloneMap(spec.Labels)
			if _, ok := spec.Labels["com.docker.compose.project"]; ok {
				spec.Labels["com.docker.compose.project"] = u.opts.As
			}
		}
		dst, found, err := existingVolume(ctx, u.eng, spec, name)
		if err != nil {
			return err
		}
		if !found {
			if dst, err = createVolume(ctx, u.tx, u.eng, spec, name); err != nil {
				return err
			}
		}
		if err := u.fillVolume(ctx, dst, "volume "+name, v.Data); err != nil {
			return fmt.Errorf("volume %s: %w", name, err)
		}
		u.res.Volumes = append(u.res.Volumes, name)
	}
	return nil
}

func (u *unitRestore) binds(ctx context.Context) error {
	for _, b := range u.m.Binds {
		if !u.eng.IsLocal() {
			if err := u.fillRemote(ctx, helper.Spec{Bind: b.Source, What: "bind source " + b.Source}, b.Data); err != nil {
				return fmt.Errorf("bind source %s: %w", b.Source, err)
			}
			u.res.Binds = append(u.res.Binds, b.Source)
			continue
		}
		if err := u.eng.CheckHostPath(ctx, b.Source); err != nil {
			return fmt.Errorf("restore a bind source: %w", err)
		}
		// A copy beside the original shares host paths with it: writing
		// into a bind source the original mounts would touch the original.
		if _, err := os.Lstat(b.Source); err == nil && u.opts.As != "" {
			u.res.NotKept = append(u.res.NotKept, "bind source "+b.Source+" exists: the copy mounts it as it is, not the restore point's contents (extract those with --path "+b.Path+" --target DIR)")
			continue
		}
		if u.reuse[b.Source] {
			continue
		}
		if err := u.fill(ctx, b.Source, "bind source "+b.Source, b.Data); err != nil {
			return fmt.Errorf("bind source %s: %w", b.Source, err)
		}
		u.res.Binds = append(u.res.Binds, b.Source)
	}
	return nil
}

// fill restores d into dir: created when missing, directly when empty,
// else (forced) by swapping in a complete copy; what it replaces stays
// beside it until the restore is committed.
func (u *unitRestore) fill(ctx context.Context, dir, label string, d layout.Data) error {
	// Written inside lifeboat's own container, the data would vanish with it.
	if err := u.eng.CheckHostPath(ctx, dir); err != nil {
		return fmt.Errorf("restore %s: %w", label, err)
	}
	p, err := place(u.tx, dir, label)
	if err != nil {
		return err
	}
	var r Result
	err = extract(ctx, u.repo, u.point.ID, d.Path, p.into, map[string]metaSpec{".": whole(d.Meta)}, u.opts.Progress, &r)
	u.res.NotKept = append(u.res.NotKept, prefixed(d.Path, r.NotKept)...)
	if err != nil {
		return err
	}
	return p.swapIn()
}

func (u *unitRestore) container(ctx context.Context, c layout.Container) (string, error) {
	spec := u.specs[c.Name]
	if u.fromTL[c.Name] {
		spec.Image = engine.ImageRef{Ref: c.TimelinePushed, ID: c.Timeline.ID}
	}
	name := u.rename("container", c.Name)
	i, err := u.tx.Add(txn.Step{Kind: txn.MadeContainer, Name: name, Label: "container " + name})
	if err != nil {
		return "", err
	}
	copts, err := u.createOptions(name, spec)
	if err != nil {
		return "", err
	}
	copts.FreshAnonymous = u.freshAnonymous()
	id, upper, err := u.eng.Create(ctx, spec, copts)
	if err != nil {
		return "", err
	}
	if err := u.tx.Set(i, func(s *txn.Step) { s.ID = id }); err != nil {
		return id, err
	}
	failpoint.Hit("restore-container-made")
	u.res.Containers = append(u.res.Containers, name)
	if copts.FreshAnonymous {
		if err := u.fillAnonymous(ctx, i, id, spec); err != nil {
			return id, err
		}
	}
	if c.Layer != nil && !u.eng.IsLocal() {
		return id, u.remoteLayer(ctx, id, name, c.Layer)
	}
	if c.Layer != nil {
		if upper == "" {
			return id, fmt.Errorf("container %s: this engine's storage driver has no overlay2 upper dir to restore the writable layer into", name)
		}
		var r Result
		eo := repository.ExtractOptions{ID: u.point.ID, Path: c.Layer.Path, Target: upper, Progress: u.opts.Progress, MergeDirs: true}
		if err := extractInto(ctx, u.repo, eo, map[string]metaSpec{".": whole(c.Layer.Meta)}, &r); err != nil {
			return id, fmt.Errorf("writable layer of %s: %w", name, err)
		}
		u.res.NotKept = append(u.res.NotKept, prefixed(c.Layer.Path, r.NotKept)...)
	}
	return id, nil
}

func prefixed(p string, list []string) []string {
	out := make([]string, 0, len(list))
	for _, s := range list {
		out = append(out, p+"/"+s)
	}
	return out
}

func cloneMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

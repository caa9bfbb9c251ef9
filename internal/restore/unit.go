package restore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/lifeboat-backup/lifeboat/internal/engine"
	"github.com/lifeboat-backup/lifeboat/internal/layout"
	"github.com/lifeboat-backup/lifeboat/internal/registry"
	"github.com/lifeboat-backup/lifeboat/internal/repository"
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
}

// unitRestore is one restore of a container or project unit.
type unitRestore struct {
	repo   *repository.Repository
	eng    *engine.Client
	opts   Options
	point  repository.Point
	m      *layout.Manifest
	rename func(kind, old string) string
	res    UnitResult
	old    []oldContainer // replaced with --force, kept until the new ones run
	specs  map[string]engine.Spec
	load   []layout.Image  // images to load from the point before creating containers
	pull   []string        // timeline images to pull from their registry
	retag  [][2]string     // pulled image → the reference containers were made from
	fromTL map[string]bool // containers created from their timeline image
}

type oldContainer struct{ id, name, tmpName string }

// ToUnit recreates a unit on the engine: networks, volumes, bind mounts and
// containers with their configuration and writable layers, started in
// dependency order. Nothing existing is replaced without opts.Force; then
// replaced containers are kept, renamed, until the new ones run.
func ToUnit(ctx context.Context, repo *repository.Repository, eng *engine.Client, opts Options) (UnitResult, error) {
	point, m, err := load(ctx, repo, opts.Ref)
	if err != nil {
		return UnitResult{}, err
	}
	if len(m.Containers) == 0 && !opts.ImageOnly {
		return UnitResult{}, fmt.Errorf("%s holds no containers: restore its volume with --volume NAME", point.Unit)
	}
	if !eng.IsLocal() {
		return UnitResult{}, fmt.Errorf("the engine at %s is remote; restoring containers through the Engine API is not supported yet: run lifeboat on that host", eng.Host())
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
	if err := u.run(ctx, cs); err != nil {
		return u.res, errors.Join(err, u.rollback(context.WithoutCancel(ctx)))
	}
	return u.res, u.dropOld(ctx)
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
// proj_data); a standalone container's volumes get NAME_ in front.
func renamer(m *layout.Manifest, as string) func(kind, old string) string {
	if as == "" {
		return func(_, old string) string { return old }
	}
	return func(kind, old string) string {
		switch {
		case kind == "project":
			return as
		case m.Project != "" && (strings.HasPrefix(old, m.Project+"_") || strings.HasPrefix(old, m.Project+"-")):
			return as + old[len(m.Project):]
		case m.Project == "" && kind == "container":
			return as
		case kind == "volume" || kind == "network":
			return as + "_" + old
		}
		return old
	}
}

// preflight lists everything the restore would have to replace or cannot
// do, and refuses unless forced: restore never guesses.
func (u *unitRestore) preflight(ctx context.Context, cs []layout.Container) error {
	problems, err := u.problems(ctx, cs)
	if err != nil {
		return err
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s", ErrConflict, strings.Join(problems, "; "))
	}
	return nil
}

// problems is what stands in the way of the restore (nothing for a
// restore that may go ahead); it also plans the images to load or pull.
func (u *unitRestore) problems(ctx context.Context, cs []layout.Container) ([]string, error) {
	var problems []string
	if err := u.loadSpecs(ctx, cs); err != nil {
		return nil, err
	}
	taken, err := u.eng.PublishedPorts(ctx)
	if err != nil {
		return nil, err
	}
	queued := map[string]bool{}
	u.fromTL = map[string]bool{}
	for _, c := range cs {
		problems = append(problems, hostProblems(u.specs[c.Name], c.Name, taken, u.rename("container", c.Name), u.opts.Force)...)
		if c.Timeline != nil && c.TimelinePushed != "" {
			// Pushed timeline images restore by pull + run, the classic way.
			u.fromTL[c.Name] = true
			if ok, err := u.eng.HasImage(ctx, c.Timeline.ID); err != nil {
				return nil, err
			} else if !ok {
				u.pull = append(u.pull, c.TimelinePushed)
			}
		} else if ok, err := u.eng.HasImage(ctx, imageRefOrID(c.Image)); err != nil {
			return nil, err
		} else if !ok {
			switch img := u.savedImage(c.Image.ID); {
			case img != nil && !queued[img.ID]:
				queued[img.ID] = true
				u.load = append(u.load, *img)
			case img != nil:
			case u.pushedImage(c.Image.ID) != "":
				if ref := u.pushedImage(c.Image.ID); !queued[ref] {
					queued[ref] = true
					u.pull = append(u.pull, ref)
					u.retag = append(u.retag, [2]string{ref, c.Image.Ref})
				}
			default:
				problems = append(problems, fmt.Sprintf("image %s of container %s is not on this engine and not in the restore point: load or pull it first (back up with --images save to keep it)", c.Image, c.Name))
			}
		}
		name := u.rename("container", c.Name)
		if _, err := u.eng.Container(ctx, name); err == nil && !u.opts.Force {
			problems = append(problems, fmt.Sprintf("container %s exists (--force replaces it, --as NAME restores a copy beside it)", name))
		} else if err != nil && !errors.Is(err, engine.ErrNotFound) {
			return nil, err
		}
	}
	if u.opts.Container == "" {
		for _, v := range u.m.Volumes {
			name := u.rename("volume", v.Name)
			if have, err := u.eng.Volume(ctx, name); err == nil && !u.opts.Force {
				if empty, _ := isEmptyDir(have.Mountpoint); !empty {
					problems = append(problems, fmt.Sprintf("volume %s exists and holds data (--force replaces its contents, --as NAME restores a copy)", name))
				}
			}
		}
		for _, b := range u.m.Binds {
			if u.opts.As != "" {
				continue // a copy mounts an existing bind source as it is (see binds)
			}
			if empty, err := isEmptyDir(b.Source); err == nil && !empty && !u.opts.Force {
				problems = append(problems, fmt.Sprintf("bind source %s exists on this host and is not empty (--force replaces its contents)", b.Source))
			}
		}
	}
	return problems, nil
}

func (u *unitRestore) loadSpecs(ctx context.Context, cs []layout.Container) error {
	u.specs = map[string]engine.Spec{}
	for _, c := range cs {
		b, err := u.repo.ReadFile(ctx, u.point.ID, layout.ContainerPath(c.Name)+"/"+layout.ConfigFile)
		if err != nil {
			return err
		}
		var spec engine.Spec
		if err := json.Unmarshal(b, &spec); err != nil {
			return fmt.Errorf("read configuration of %s: %w", c.Name, err)
		}
		u.specs[c.Name] = spec
	}
	return nil
}

// hostProblems lists what this host lacks for a container: devices it
// maps, host ports another container already publishes. Ports held by the
// container being replaced (--force) are not in the way.
func hostProblems(spec engine.Spec, name string, taken map[string]string, newName string, force bool) []string {
	var hc struct {
		PortBindings map[string][]struct{ HostIP, HostPort string }
		Devices      []struct{ PathOnHost string }
	}
	if err := json.Unmarshal(spec.HostConfig, &hc); err != nil {
		return []string{fmt.Sprintf("container %s: unreadable host configuration: %v", name, err)}
	}
	var out []string
	for _, d := range hc.Devices {
		if _, err := os.Stat(d.PathOnHost); err != nil {
			out = append(out, fmt.Sprintf("device %s of container %s is missing on this host", d.PathOnHost, name))
		}
	}
	for port, binds := range hc.PortBindings {
		proto := "tcp"
		if _, p, ok := strings.Cut(port, "/"); ok {
			proto = p
		}
		for _, b := range binds {
			if b.HostPort == "" {
				continue // an ephemeral port: the engine picks a free one
			}
			for _, key := range []string{b.HostIP + ":" + b.HostPort + "/" + proto, ":" + b.HostPort + "/" + proto} {
				if holder, ok := taken[key]; ok && !(force && holder == newName) {
					out = append(out, fmt.Sprintf("host port %s of container %s is taken by %s", strings.TrimPrefix(key, ":"), name, holder))
					break
				}
			}
		}
	}
	sort.Strings(out)
	return out
}

func imageRefOrID(r engine.ImageRef) string {
	if r.ID != "" {
		return r.ID
	}
	return r.Ref
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
// fails.
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
		old := oldContainer{id: have.ID, name: name, tmpName: name + "-lifeboat-old-" + stamp}
		if err := u.eng.RenameContainer(ctx, have.ID, old.tmpName); err != nil {
			return err
		}
		u.old = append(u.old, old)
		if err := u.eng.Stop(ctx, have.ID, engine.ContainerStopTimeout); err != nil {
			return err
		}
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
		err := u.eng.CreateNetwork(ctx, n)
		if errors.Is(err, engine.ErrExists) {
			continue
		}
		if err != nil {
			return err
		}
		u.res.Networks = append(u.res.Networks, n.Name)
	}
	return nil
}

func (u *unitRestore) volumes(ctx context.Context) error {
	for _, v := range u.m.Volumes {
		name := u.rename("volume", v.Name)
		spec := v.Volume
		spec.Name = name
		if u.opts.As != "" && spec.Labels != nil {
			spec.Labels = cloneMap(spec.Labels)
			if _, ok := spec.Labels["com.docker.compose.project"]; ok {
				spec.Labels["com.docker.compose.project"] = u.opts.As
			}
		}
		dst, _, err := targetVolume(ctx, u.eng, spec, name)
		if err != nil {
			return err
		}
		if err := u.fill(ctx, dst.Mountpoint, v.Data); err != nil {
			return fmt.Errorf("volume %s: %w", name, err)
		}
		u.res.Volumes = append(u.res.Volumes, name)
	}
	return nil
}

func (u *unitRestore) binds(ctx context.Context) error {
	for _, b := range u.m.Binds {
		// A copy beside the original shares host paths with it: replacing a
		// live bind source under the original would be the worst guess.
		if empty, err := isEmptyDir(b.Source); err == nil && !empty && u.opts.As != "" {
			u.res.NotKept = append(u.res.NotKept, "bind source "+b.Source+" exists: the copy mounts it as it is, not the restore point's contents (extract those with --path "+b.Path+" --target DIR)")
			continue
		}
		if err := os.MkdirAll(b.Source, 0o755); err != nil {
			return fmt.Errorf("bind source %s: %w", b.Source, err)
		}
		if err := u.fill(ctx, b.Source, b.Data); err != nil {
			return fmt.Errorf("bind source %s: %w", b.Source, err)
		}
		u.res.Binds = append(u.res.Binds, b.Source)
	}
	return nil
}

// fill restores d into dir: directly when dir is empty, else (forced) by
// swapping in a complete copy.
func (u *unitRestore) fill(ctx context.Context, dir string, d layout.Data) error {
	var r Result
	metas := map[string]metaSpec{".": whole(d.Meta)}
	empty, err := isEmptyDir(dir)
	if err != nil {
		return err
	}
	if empty {
		err = extract(ctx, u.repo, u.point.ID, d.Path, dir, metas, u.opts.Progress, &r)
	} else {
		err = replaceContents(ctx, dir, func(stage string) error {
			return extract(ctx, u.repo, u.point.ID, d.Path, stage, metas, u.opts.Progress, &r)
		})
	}
	u.res.NotKept = append(u.res.NotKept, prefixed(d.Path, r.NotKept)...)
	return err
}

func (u *unitRestore) container(ctx context.Context, c layout.Container) (string, error) {
	spec := u.specs[c.Name]
	if u.fromTL[c.Name] {
		spec.Image = engine.ImageRef{Ref: c.TimelinePushed, ID: c.Timeline.ID}
	}
	name := u.rename("container", c.Name)
	id, upper, err := u.eng.Create(ctx, spec, engine.CreateOptions{Name: name, Rename: u.rename})
	if err != nil {
		return "", err
	}
	u.res.Containers = append(u.res.Containers, name)
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

// pullImages pulls what the point pushed and the engine lacks, and gives
// pulled images the references their containers were made from.
func (u *unitRestore) pullImages(ctx context.Context) error {
	for _, ref := range u.pull {
		host, _, _, err := registry.Split(ref)
		if err != nil {
			return err
		}
		cred, err := registry.CredentialsFor(host)
		if err != nil {
			return err
		}
		if err := u.eng.Pull(ctx, ref, cred.EngineAuth(host)); err != nil {
			return err
		}
		u.res.Images = append(u.res.Images, ref)
	}
	for _, rt := range u.retag {
		if rt[1] != "" && !strings.HasPrefix(rt[1], "sha256:") {
			if err := u.eng.Tag(ctx, rt[0], rt[1]); err != nil {
				return err
			}
		}
	}
	return nil
}

// pushedImage is where the point pushed image id, or "".
func (u *unitRestore) pushedImage(id string) string {
	for _, img := range u.m.Images {
		if img.ID == id && img.Pushed != "" {
			return img.Pushed
		}
	}
	return ""
}

// savedImage is the point's archive of image id, or nil.
func (u *unitRestore) savedImage(id string) *layout.Image {
	for i := range u.m.Images {
		if img := &u.m.Images[i]; img.ID == id && img.Saved {
			return img
		}
	}
	return nil
}

// loadImages streams archives from the repository into the engine,
// without a copy on the local disk.
func (u *unitRestore) loadImages(ctx context.Context, imgs []layout.Image) error {
	for _, img := range imgs {
		rd, err := u.repo.OpenFile(ctx, u.point.ID, img.Path)
		if err != nil {
			return err
		}
		err = u.eng.LoadImage(ctx, rd)
		rd.Close()
		if err != nil {
			return fmt.Errorf("image %s: %w", img.ImageRef, err)
		}
		u.res.Images = append(u.res.Images, img.ImageRef.String())
	}
	return nil
}

// imagesOnly loads every image the point holds and pulls every image it
// pushed, tags included.
func (u *unitRestore) imagesOnly(ctx context.Context) error {
	var imgs []layout.Image
	for _, img := range u.m.Images {
		switch {
		case img.Saved:
			imgs = append(imgs, img)
		case img.Pushed != "":
			u.pull = append(u.pull, img.Pushed)
			u.retag = append(u.retag, [2]string{img.Pushed, img.Ref})
		}
	}
	for _, c := range u.m.Containers {
		if c.TimelinePushed != "" {
			u.pull = append(u.pull, c.TimelinePushed)
		}
	}
	if len(imgs) == 0 && len(u.pull) == 0 {
		return fmt.Errorf("restore point %s holds no images (back up with --images save or push to keep them)", u.point.ID)
	}
	if err := u.loadImages(ctx, imgs); err != nil {
		return err
	}
	return u.pullImages(ctx)
}

// rollback removes what a failed restore created and brings replaced
// containers back under their names.
func (u *unitRestore) rollback(ctx context.Context) error {
	var errs []error
	for _, name := range u.res.Containers {
		if c, err := u.eng.Container(ctx, name); err == nil {
			errs = append(errs, u.eng.RemoveContainer(ctx, c.ID, true))
		}
	}
	for _, o := range u.old {
		errs = append(errs, u.eng.RenameContainer(ctx, o.id, o.name), u.eng.Start(ctx, o.id))
	}
	return errors.Join(errs...)
}

func (u *unitRestore) dropOld(ctx context.Context) error {
	var errs []error
	for _, o := range u.old {
		errs = append(errs, u.eng.RemoveContainer(ctx, o.id, true))
	}
	return errors.Join(errs...)
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

package backup

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/lifeboat-backup/lifeboat/internal/btrfs"
	"github.com/lifeboat-backup/lifeboat/internal/consistency"
	"github.com/lifeboat-backup/lifeboat/internal/engine"
	"github.com/lifeboat-backup/lifeboat/internal/layout"
	"github.com/lifeboat-backup/lifeboat/internal/policy"
	"github.com/lifeboat-backup/lifeboat/internal/registry"
)

// plan is what one unit's restore point will hold.
type plan struct {
	unit       Unit
	project    string
	containers []engine.Container // in start order
	specs      map[string]engine.Spec
	volumes    []engine.Volume
	volDirs    map[string]string // volume name → where its files are read (engine.Volume.DataDir)
	binds      []string          // host paths, each once
	networks   []engine.NetworkSpec
	policy     policy.Policy
	mode       string // the consistency recorded: decision's String
	decision   decision
	pre, post  []consistency.Hook
	images     []layout.Image
	created    map[string]time.Time       // image ID → build time, for the archive's mtime
	saveAs     map[string]string          // image ID → what to `docker save`
	commit     bool                       // make timeline images
	push       bool                       // and push them
	timeline   map[string]engine.ImageRef // container → its committed image
	pushed     map[string]string          // container → its timeline image in the registry
	dumps      []plannedDump
	dumpTime   time.Time
	// remote: the engine's host is not this one, and its data moves
	// through the Engine API (remote.go); its paths are the engine's.
	remote bool
}

// readOnly reports whether the capture changes nothing outside the
// repository before its point is saved, so that it may run while the
// unit's lease settles: no hooks, no dumps (an exec), no freeze, pause
// or stop, no timeline image committed or pushed, no helper container.
func (p *plan) readOnly() bool {
	return len(p.pre) == 0 && len(p.post) == 0 && !p.decision.dump && p.decision.files == ModeNone &&
		!p.commit && !p.push && !p.remote
}

type plannedDump struct {
	container engine.Container
	layout.Dump
	cmds []consistency.Command
}

// planDumps prepares the dumps of every running database container of the
// unit, for the dump mode.
func (p *plan) planDumps(ctx context.Context, eng *engine.Client) error {
	p.dumpTime = time.Now()
	for _, ct := range p.containers {
		profile, why := consistency.Detect(ct.Image, ct.Labels)
		if profile == "" || !ct.Running() {
			continue
		}
		if ct.State == "paused" {
			return fmt.Errorf("container %s is paused: a dump needs it running", ct.Name)
		}
		cmds, err := consistency.Plan(ctx, eng, profile, ct)
		if err != nil {
			return err
		}
		d := plannedDump{container: ct, cmds: cmds, Dump: layout.Dump{Container: ct.Name, Profile: profile, Reason: why}}
		for _, c := range cmds {
			d.Files = append(d.Files, c.File)
			if c.Source != "" {
				if d.Sources == nil {
					d.Sources = map[string]string{}
				}
				d.Sources[c.File] = c.Source
			}
		}
		p.dumps = append(p.dumps, d)
	}
	if len(p.dumps) == 0 {
		return fmt.Errorf("%s: no running database recognised for --consistency dump (label a container %s=postgres|mariadb|redis|mongodb, or %s=/path/to/db for SQLite)", p.unit, consistency.LabelDump, consistency.LabelSQLite)
	}
	return nil
}

// planUnit gathers a container or project unit from the engine and decides
// how to capture it.
func planUnit(ctx context.Context, eng *engine.Client, u Unit, flagMode string, defaults policy.Defaults) (*plan, error) {
	if u.Kind == "volume" {
		return planVolume(ctx, eng, u, flagMode, defaults)
	}
	all, err := eng.Containers(ctx)
	if err != nil {
		return nil, err
	}
	p := &plan{unit: u, specs: map[string]engine.Spec{}, remote: !eng.IsLocal()}
	for _, c := range all {
		switch {
		case u.Kind == "project" && c.Project == u.Name:
			p.containers = append(p.containers, c)
		case u.Kind == "container" && (c.Name == u.Name || c.ID == u.Name || strings.HasPrefix(c.ID, u.Name) && len(u.Name) >= 12):
			p.containers = append(p.containers, c)
		}
	}
	if len(p.containers) == 0 {
		return nil, fmt.Errorf("%s %w: see `lifeboat ls`", u, engine.ErrNotFound)
	}
	if u.Kind == "project" {
		p.project = u.Name
	}
	p.containers = startOrder(p.containers)
	members := make([]policy.Labelled, 0, len(p.containers))
	for _, c := range p.containers {
		members = append(members, policy.Labelled{Name: c.Name, Labels: c.Labels})
	}
	if p.policy, err = policy.Resolve(members, defaults); err != nil {
		return nil, err
	}
	if err := p.gather(ctx, eng); err != nil {
		return nil, err
	}
	p.decision, err = decide(flagMode, p.policy.Consistency, p.policy.Sources[policy.LabelConsistency], p.containers, p.snapshotBlocked)
	if err != nil {
		return nil, err
	}
	p.mode = p.decision.String()
	hookMembers := make([]consistency.Member, 0, len(p.containers))
	for _, c := range p.containers {
		hookMembers = append(hookMembers, consistency.Member{Name: c.Name, ID: c.ID, Service: c.Service, Labels: c.Labels})
	}
	p.pre, p.post, err = consistency.Hooks(hookMembers)
	return p, err
}

// dataPaths are the host directories a capture reads: volumes, bind
// sources and writable layers.
func (p *plan) dataPaths() []string {
	var out []string
	for _, v := range p.volumes {
		out = append(out, p.volDirs[v.Name])
	}
	out = append(out, p.binds...)
	for _, c := range p.containers {
		if dir := p.specs[c.Name].WritableLayer; dir != "" {
			out = append(out, dir)
		}
	}
	return out
}

// snapshotBlocked says why the unit's data cannot be snapshotted, "" when
// it can: every directory must be on btrfs, or the point would mix one
// instant with later ones.
func (p *plan) snapshotBlocked() string {
	if p.remote {
		return "the engine is remote, and its btrfs is out of reach of the Engine API"
	}
	return storageBlocked(p.dataPaths())
}

func storageBlocked(paths []string) string {
	if len(paths) == 0 {
		return "the unit has no data directories"
	}
	for _, d := range paths {
		ok, err := btrfs.IsBtrfs(d)
		if err != nil {
			return err.Error()
		}
		if !ok {
			return d + " is not on btrfs"
		}
	}
	return ""
}

// planImages decides, per distinct image, whether the restore point keeps
// it: always with save; for an image no registry has (no repo digests:
// built here) unless the policy says none, since nothing else could bring
// it back.
func (p *plan) planImages(ctx context.Context, eng *engine.Client, flag string) error {
	mode := p.policy.Images
	if flag != "" {
		mode = flag
	}
	p.commit = strings.Contains(mode, "commit")
	p.push = strings.Contains(mode, "push")
	save := strings.Contains(mode, "save")
	seen := map[string]bool{}
	p.created, p.saveAs = map[string]time.Time{}, map[string]string{}
	for _, ct := range p.containers {
		ref := p.specs[ct.Name].Image
		if ref.ID == "" || seen[ref.ID] {
			continue
		}
		seen[ref.ID] = true
		img := layout.Image{ImageRef: ref}
		switch {
		case mode == "none":
			img.Reason = "images=none"
		case save:
			img.Saved, img.Reason = true, "images=save"
		case strings.Contains(mode, "push"):
			img.Reason = "images=push" // the registry brings it back
		case len(ref.RepoDigests) == 0:
			img.Saved, img.Reason = true, "in no registry: kept so the unit can come back anywhere"
		default:
			img.Reason = "images=ref: pull " + ref.RepoDigests[0]
		}
		if img.Saved {
			t, err := eng.ImageCreated(ctx, ref.ID)
			if err != nil {
				return err
			}
			img.Path, p.created[ref.ID] = layout.ImagePath(ref.ID), t
			// By reference, so the archive carries the tag; by ID when the
			// tag has moved to another image since the container was made.
			p.saveAs[ref.ID] = ref.ID
			if now, err := eng.Image(ctx, ref.Ref); err == nil && now.ID == ref.ID && ref.Ref != "" {
				p.saveAs[ref.ID] = ref.Ref
			}
		}
		p.images = append(p.images, img)
	}
	return nil
}

// commitTimeline commits every container to lifeboat/<unit>/<container>:<UTC
// time>, the timeline image of this point; with save, the point keeps it.
// The engine pauses each container for its commit. On failure the images
// made so far are untagged again.
func (p *plan) commitTimeline(ctx context.Context, eng *engine.Client, save bool, registry string, now time.Time) (err error) {
	if p.push && registry == "" {
		return errors.New("--images commit,push needs --registry HOST:PORT (or LIFEBOAT_REGISTRY)")
	}
	p.timeline, p.pushed = map[string]engine.ImageRef{}, map[string]string{}
	defer func() {
		if err != nil {
			p.untagTimeline(context.WithoutCancel(ctx), eng)
		}
	}()
	stamp := now.UTC().Format("20060102T150405Z")
	for _, ct := range p.containers {
		ref, err := eng.Commit(ctx, ct.ID, timelineRepo(p.unit.Name, ct.Name)+":"+stamp)
		if err != nil {
			return err
		}
		p.timeline[ct.Name] = ref
		if p.push {
			if p.pushed[ct.Name], err = push(ctx, eng, registry, ref); err != nil {
				return err
			}
		}
		if !save {
			continue
		}
		t, err := eng.ImageCreated(ctx, ref.ID)
		if err != nil {
			return err
		}
		p.images = append(p.images, layout.Image{ImageRef: ref, Saved: true, Path: layout.ImagePath(ref.ID), Reason: "timeline image of " + ct.Name})
		p.created[ref.ID], p.saveAs[ref.ID] = t, ref.Ref
	}
	return nil
}

// push tags a timeline image for the registry and pushes it; credentials
// come from the environment or Docker's config, never from the point.
func push(ctx context.Context, eng *engine.Client, host string, ref engine.ImageRef) (string, error) {
	target := host + "/" + ref.Ref
	if err := eng.Tag(ctx, ref.ID, target); err != nil {
		return "", err
	}
	cred, err := registry.CredentialsFor(host)
	if err != nil {
		return "", err
	}
	if _, err := eng.Push(ctx, target, cred.EngineAuth(host)); err != nil {
		_ = eng.Untag(context.WithoutCancel(ctx), target)
		return "", err
	}
	return target, nil
}

// pushImages pushes each of the unit's images to the registry under its
// own repository path and tag, and records where.
func (p *plan) pushImages(ctx context.Context, eng *engine.Client, host string) error {
	if host == "" {
		return errors.New("--images push needs --registry HOST:PORT (or LIFEBOAT_REGISTRY)")
	}
	for i := range p.images {
		img := &p.images[i]
		name := img.Ref
		if name == "" || strings.HasPrefix(name, "sha256:") {
			name = "lifeboat/images:" + strings.TrimPrefix(img.ID, "sha256:")[:12]
		} else if !strings.Contains(name[strings.LastIndex(name, "/")+1:], ":") {
			name += ":latest"
		}
		ref, err := push(ctx, eng, host, engine.ImageRef{Ref: name, ID: img.ID})
		if err != nil {
			return err
		}
		img.Pushed = ref
		if img.Reason == "" || strings.HasPrefix(img.Reason, "images=ref") {
			img.Reason = "images=push"
		}
	}
	return nil
}

// untagTimeline takes back the timeline images of a backup that failed,
// locally and in the registry.
func (p *plan) untagTimeline(ctx context.Context, eng *engine.Client) {
	for _, ref := range p.timeline {
		_ = eng.Untag(ctx, ref.Ref)
	}
	for _, ref := range p.pushed {
		_ = eng.Untag(ctx, ref)
		if host, _, _, err := registry.Split(ref); err == nil {
			if cred, err := registry.CredentialsFor(host); err == nil {
				_ = registry.DeleteTag(ctx, ref, cred)
			}
		}
	}
}

// timelineRepo is a valid image repository name for a unit's container:
// lower case, other characters as "-".
func timelineRepo(unit, container string) string {
	clean := func(s string) string {
		b := []byte(strings.ToLower(s))
		for i, c := range b {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
				b[i] = '-'
			}
		}
		return strings.Trim(string(b), ".-_")
	}
	return "lifeboat/" + clean(unit) + "/" + clean(container)
}

// planVolume plans a volume unit: the volume alone, read as it is.
func planVolume(ctx context.Context, eng *engine.Client, u Unit, flagMode string, defaults policy.Defaults) (*plan, error) {
	if flagMode != "" && flagMode != ModeAuto && flagMode != ModeNone {
		return nil, fmt.Errorf("%s: a volume unit is read as it is (consistency none); for %s, back up the container or project that uses it", u, flagMode)
	}
	v, err := eng.Volume(ctx, u.Name)
	if err != nil {
		return nil, err
	}
	pol, err := policy.Resolve([]policy.Labelled{{Name: v.Name, Labels: v.Labels}}, defaults)
	if err != nil {
		return nil, err
	}
	p := &plan{unit: u, policy: pol, mode: ModeNone, decision: decision{files: ModeNone}, specs: map[string]engine.Spec{}, remote: !eng.IsLocal()}
	return p, p.addVolume(p.hostCheck(ctx, eng), v)
}

// addVolume adds a volume and where its files are: for a bind-type local
// volume its device directory, which holds them also while no container
// mounts it (as in stop mode); an unmounted mount of another kind is an
// error rather than an empty point.
func (p *plan) addVolume(check func(string) error, v engine.Volume) error {
	// A remote engine's path is only a name here: its helper mounts the
	// volume by name, mounted or not.
	dir, err := v.Mountpoint, error(nil)
	if !p.remote {
		dir, err = v.DataDir()
	}
	if err != nil {
		return err
	}
	if err := visible(check, fmt.Sprintf("volume %q", v.Name), dir); err != nil {
		return err
	}
	if _, err := os.Stat(dir); !p.remote && err != nil {
		return fmt.Errorf("volume %q: read its data at %s: %w (lifeboat reads volumes as root on the Docker host)", v.Name, dir, err)
	}
	if p.volDirs == nil {
		p.volDirs = map[string]string{}
	}
	p.volumes = append(p.volumes, v)
	p.volDirs[v.Name] = dir
	return nil
}

func (p *plan) gather(ctx context.Context, eng *engine.Client) error {
	seenVol, seenBind, seenNet := map[string]bool{}, map[string]bool{}, map[string]bool{}
	check := p.hostCheck(ctx, eng)
	for _, c := range p.containers {
		spec, err := eng.Inspect(ctx, c.ID)
		if err != nil {
			return err
		}
		p.specs[c.Name] = spec
		if err := visible(check, "the writable layer of "+c.Name, spec.WritableLayer); err != nil {
			return err
		}
		for _, m := range c.Mounts {
			switch {
			case m.Type == "volume" && !seenVol[m.Name]:
				seenVol[m.Name] = true
				v, err := eng.Volume(ctx, m.Name)
				if err != nil {
					return err
				}
				if err := p.addVolume(check, v); err != nil {
					return err
				}
			case m.Type == "bind" && !seenBind[m.Source]:
				seenBind[m.Source] = true
				if err := visible(check, "bind mount "+m.Source+" of "+c.Name, m.Source); err != nil {
					return err
				}
				p.binds = append(p.binds, m.Source)
			}
		}
		for name := range spec.Networks {
			if seenNet[name] || engine.BuiltinNetwork(name) {
				continue
			}
			seenNet[name] = true
			n, err := eng.Network(ctx, name)
			if err != nil {
				return err
			}
			p.networks = append(p.networks, n)
		}
	}
	sort.Slice(p.volumes, func(i, j int) bool { return p.volumes[i].Name < p.volumes[j].Name })
	sort.Strings(p.binds)
	sort.Slice(p.networks, func(i, j int) bool { return p.networks[i].Name < p.networks[j].Name })
	return nil
}

// hostCheck checks that a host path of the engine is visible here; nil
// for a remote engine, whose paths are read through the Engine API.
func (p *plan) hostCheck(ctx context.Context, eng *engine.Client) func(string) error {
	if p.remote {
		return nil
	}
	return func(path string) error { return eng.CheckHostPath(ctx, path) }
}

// startOrder sorts containers so that each comes after the services it
// depends on (Compose v2's depends_on label), then by name.
func startOrder(cs []engine.Container) []engine.Container {
	sort.Slice(cs, func(i, j int) bool { return cs[i].Name < cs[j].Name })
	byService := map[string][]int{}
	for i, c := range cs {
		if c.Service != "" {
			byService[c.Service] = append(byService[c.Service], i)
		}
	}
	state := make([]int, len(cs)) // 0 new, 1 visiting, 2 done
	var out []engine.Container
	var visit func(i int)
	visit = func(i int) {
		if state[i] != 0 {
			return // done, or a cycle: the sort order breaks it
		}
		state[i] = 1
		for _, dep := range cs[i].DependsOn {
			for _, j := range byService[dep] {
				visit(j)
			}
		}
		state[i] = 2
		out = append(out, cs[i])
	}
	for i := range cs {
		visit(i)
	}
	return out
}

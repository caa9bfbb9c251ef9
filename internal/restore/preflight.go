package restore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/lifeboat-backup/lifeboat/internal/engine"
	"github.com/lifeboat-backup/lifeboat/internal/layout"
)

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
	if u.opts.As != "" && (u.opts.As == u.m.Project || u.m.Project == "" && len(u.m.Containers) == 1 && u.opts.As == u.m.Containers[0].Name) {
		problems = append(problems, fmt.Sprintf("--as %s is the original's own name: a copy needs another", u.opts.As))
	}
	taken, err := u.eng.PublishedPorts(ctx)
	if err != nil {
		return nil, err
	}
	u.fromTL = map[string]bool{}
	replaced := map[string]bool{} // IDs of the containers --force sets aside
	queued := map[string]bool{}
	for _, c := range cs {
		for _, p := range hostProblems(u.specs[c.Name], c.Name, taken, u.rename("container", c.Name), u.opts.Force, u.opts.Ports) {
			if u.opts.As != "" && strings.HasPrefix(p, "host port") && u.opts.Ports.IsZero() {
				p += " (a copy cannot publish the original's host ports: --ports shift=N or --ports none, stop the holder, or restore the copy on another engine)"
			}
			problems = append(problems, p)
		}
		p, err := u.planImage(ctx, c, queued)
		if err != nil {
			return nil, err
		}
		problems = append(problems, p...)
		name := u.rename("container", c.Name)
		have, err := u.eng.Container(ctx, name)
		switch {
		case errors.Is(err, engine.ErrNotFound):
		case err != nil:
			return nil, err
		case u.opts.As != "" && u.isOriginal(have):
			problems = append(problems, fmt.Sprintf("container %s belongs to the original %s: a copy never replaces it (choose another --as name)", name, u.point.Unit))
		case !u.opts.Force:
			problems = append(problems, fmt.Sprintf("container %s exists (--force replaces it, --as NAME restores a copy beside it)", name))
		default:
			replaced[have.ID] = true
		}
	}
	if u.opts.Container == "" {
		p, err := u.dataProblems(ctx, replaced)
		if err != nil {
			return nil, err
		}
		problems = append(problems, p...)
		problems = append(problems, u.planCompose()...)
	}
	return problems, nil
}

// isOriginal reports whether c is one of the original unit's containers.
func (u *unitRestore) isOriginal(c engine.Container) bool {
	if u.m.Project != "" && c.Project == u.m.Project {
		return true
	}
	for _, o := range u.m.Containers {
		if o.Name == c.Name {
			return true
		}
	}
	return false
}

// planImage queues the image c needs for loading or pulling, or says why
// it cannot be had.
func (u *unitRestore) planImage(ctx context.Context, c layout.Container, queued map[string]bool) ([]string, error) {
	if c.Timeline != nil && c.TimelinePushed != "" {
		// Pushed timeline images restore by pull + run, the classic way.
		u.fromTL[c.Name] = true
		if ok, err := u.eng.HasImage(ctx, c.Timeline.ID); err != nil {
			return nil, err
		} else if !ok {
			u.pull = append(u.pull, c.TimelinePushed)
		}
		return nil, nil
	}
	if ok, err := u.eng.HasImage(ctx, imageRefOrID(c.Image)); err != nil || ok {
		return nil, err
	}
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
		return []string{fmt.Sprintf("image %s of container %s is not on this engine and not in the restore point: load or pull it first (back up with --images save to keep it)", c.Image, c.Name)}, nil
	}
	return nil, nil
}

// dataProblems is what stands in the way of restoring the unit's volumes
// and bind sources. Replaced holds the containers --force sets aside; any
// other container using a volume or bind source is outside the restore: a
// running one is never written under, and with --force none has its data
// swapped away.
func (u *unitRestore) dataProblems(ctx context.Context, replaced map[string]bool) ([]string, error) {
	var problems []string
	anon := u.anonymousNames()
	for _, v := range u.m.Volumes {
		if anon[v.Name] {
			continue // made anew with its container
		}
		name := u.rename("volume", v.Name)
		have, err := u.eng.Volume(ctx, name)
		if errors.Is(err, engine.ErrNotFound) {
			if _, _, err := existingVolume(ctx, u.eng, v.Volume, name); err != nil {
				problems = append(problems, err.Error())
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		empty, err := u.volumeEmpty(ctx, have)
		if err != nil {
			return nil, err
		}
		if !empty && !u.opts.Force {
			problems = append(problems, fmt.Sprintf("volume %s exists and holds data (--force replaces its contents, --as NAME restores a copy)", name))
		}
		users, err := u.eng.VolumeUsers(ctx, name)
		if err != nil {
			return nil, err
		}
		for _, c := range users {
			switch {
			case replaced[c.ID]:
			case running(c.State):
				problems = append(problems, fmt.Sprintf("volume %s is in use by running container %s, outside this restore (stop it first, or restore --as NAME)", name, c.Name))
			case !empty:
				problems = append(problems, fmt.Sprintf("volume %s is shared with container %s, outside this restore: its data is not swapped away under it (remove %s, or restore --as NAME)", name, c.Name, c.Name))
			}
		}
	}
	bp, err := u.bindProblems(ctx, replaced)
	return append(problems, bp...), err
}

// bindProblems is dataProblems for bind sources. A copy mounts an
// existing bind source as it is (see binds), so only a restore in place
// writes into one.
func (u *unitRestore) bindProblems(ctx context.Context, replaced map[string]bool) ([]string, error) {
	var problems []string
	var all []engine.Container
	u.reuse = map[string]bool{}
	for _, b := range u.m.Binds {
		if u.opts.As != "" {
			continue
		}
		empty, err := isEmptyDir(b.Source)
		if err != nil {
			continue // missing: created
		}
		if !empty {
			diff, err := sameTree(ctx, u.repo, u.point.ID, b.Path, b.Source)
			if err != nil {
				return nil, fmt.Errorf("compare bind source %s with the restore point: %w", b.Source, err)
			}
			if diff == "" {
				u.reuse[b.Source] = true // nothing is written into it
				continue
			}
			if !u.opts.Force {
				problems = append(problems, fmt.Sprintf("bind source %s exists on this host and differs from the restore point's (%s; --force replaces its contents)", b.Source, diff))
			}
		}
		if all == nil {
			if all, err = u.eng.Containers(ctx); err != nil {
				return nil, err
			}
		}
		for _, c := range all {
			if replaced[c.ID] || !mountsPath(c, b.Source) {
				continue
			}
			if c.Running() || !empty {
				problems = append(problems, fmt.Sprintf("bind source %s is used by container %s, outside this restore (stop or remove it first)", b.Source, c.Name))
			}
		}
	}
	return problems, nil
}

// mountsPath reports whether c bind-mounts dir, a directory inside it or
// one holding it.
func mountsPath(c engine.Container, dir string) bool {
	dir = filepath.Clean(dir)
	for _, m := range c.Mounts {
		if m.Type != "bind" {
			continue
		}
		src := filepath.Clean(m.Source)
		if src == dir || strings.HasPrefix(src, dir+"/") || strings.HasPrefix(dir, src+"/") {
			return true
		}
	}
	return false
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
// maps, host ports another container already publishes (after ports, the
// policy, changed them). Ports held by the container being replaced
// (--force) are not in the way.
func hostProblems(spec engine.Spec, name string, taken map[string]string, newName string, force bool, ports engine.PortPolicy) []string {
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
	if ports.None {
		hc.PortBindings = nil
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
			hp, err := ports.HostPort(b.HostPort)
			if err != nil {
				out = append(out, fmt.Sprintf("container %s, port %s: %v", name, port, err))
				continue
			}
			if p := portTaken(taken, b.HostIP, hp, proto, name, newName, force); p != "" {
				out = append(out, p)
			}
		}
	}
	sort.Strings(out)
	return out
}

// portTaken says which host port of hp (a port or a range) another
// container publishes already, "" when none.
func portTaken(taken map[string]string, ip, hp, proto, name, newName string, force bool) string {
	lo, hi := hp, hp
	if l, h, ok := strings.Cut(hp, "-"); ok {
		lo, hi = l, h
	}
	from, err1 := strconv.Atoi(lo)
	to, err2 := strconv.Atoi(hi)
	if err1 != nil || err2 != nil || to-from > 65535 {
		from, to = 0, -1 // not a port: the engine says what is wrong with it
	}
	for n := from; n <= to; n++ {
		for _, key := range []string{fmt.Sprintf("%s:%d/%s", ip, n, proto), fmt.Sprintf(":%d/%s", n, proto)} {
			if holder, ok := taken[key]; ok && !(force && holder == newName) {
				return fmt.Sprintf("host port %s of container %s is taken by %s", strings.TrimPrefix(key, ":"), name, holder)
			}
		}
	}
	return ""
}

func imageRefOrID(r engine.ImageRef) string {
	if r.ID != "" {
		return r.ID
	}
	return r.Ref
}

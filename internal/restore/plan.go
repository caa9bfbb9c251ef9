package restore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/lifeboat-backup/lifeboat/internal/engine"
	"github.com/lifeboat-backup/lifeboat/internal/layout"
	"github.com/lifeboat-backup/lifeboat/internal/repository"
)

// Plan is what a restore would do, found without doing it: a dry run.
type Plan struct {
	ID      string   `json:"id"`
	Unit    string   `json:"unit"`
	Create  []string `json:"create"`            // what would be created or written
	Replace []string `json:"replace,omitempty"` // what --force would replace
	Refused []string `json:"refused,omitempty"` // why it would be refused
	// Ports says what --ports does to each container's published host
	// ports: "ports of web: 8080→9080/tcp", "ports of web: none published".
	Ports []string `json:"ports,omitempty"`
}

// DryRun plans a restore with the same options as ToDirectory, ToVolume or
// ToUnit, and changes nothing.
func DryRun(ctx context.Context, repo *repository.Repository, eng *engine.Client, opts Options) (Plan, error) {
	point, m, err := load(ctx, repo, opts.Ref)
	if err != nil {
		return Plan{}, err
	}
	p := Plan{ID: point.ID, Unit: point.Unit, Create: []string{}}
	switch {
	case opts.Target != "":
		if _, _, err := selectPart(ctx, repo, point.ID, m, opts); err != nil {
			return p, err
		}
		p.planDirectory(opts)
	case opts.Volume != "":
		err = p.planVolume(ctx, eng, m, opts)
	default:
		if len(m.Containers) == 0 {
			return p, fmt.Errorf("%s holds no containers: restore its volume", point.Unit)
		}
		u := &unitRestore{repo: repo, eng: eng, opts: opts, point: point, m: m, rename: renamer(m, opts.As)}
		err = p.planUnit(ctx, u)
	}
	return p, err
}

func (p *Plan) planDirectory(opts Options) {
	what := "the whole point"
	if opts.Path != "" {
		what = opts.Path
	} else if opts.Volume != "" {
		what = "volume " + opts.Volume
	}
	p.Create = append(p.Create, fmt.Sprintf("files of %s in directory %s", what, opts.Target))
	if err := prepareCheck(opts.Target); err != nil {
		if opts.Force {
			p.Replace = append(p.Replace, "contents of "+opts.Target+" (swapped in once complete)")
		} else {
			p.Refused = append(p.Refused, err.Error())
		}
	}
}

func (p *Plan) planVolume(ctx context.Context, eng *engine.Client, m *layout.Manifest, opts Options) error {
	v, err := m.FindVolume(opts.Volume)
	if err != nil {
		return err
	}
	name := v.Name
	if opts.As != "" {
		name = opts.As
	}
	have, err := eng.Volume(ctx, name)
	switch {
	case errors.Is(err, engine.ErrNotFound):
		p.Create = append(p.Create, "volume "+name)
		return nil
	case err != nil:
		return err
	}
	if err := checkUnused(ctx, eng, name); errors.Is(err, ErrConflict) {
		p.Refused = append(p.Refused, strings.TrimPrefix(err.Error(), ErrConflict.Error()+": "))
	} else if err != nil {
		return err
	}
	if dir, derr := have.DataDir(); derr != nil {
		p.Refused = append(p.Refused, derr.Error())
	} else if empty, _ := isEmptyDir(dir); empty {
		p.Create = append(p.Create, "contents of the empty volume "+name)
	} else if opts.Force {
		p.Replace = append(p.Replace, "contents of volume "+name)
	} else {
		p.Refused = append(p.Refused, fmt.Sprintf("volume %s already holds data: restore as a copy under another name, or replace it", name))
	}
	return nil
}

func (p *Plan) planUnit(ctx context.Context, u *unitRestore) error {
	cs, err := u.selected()
	if err != nil {
		return err
	}
	problems, err := u.problems(ctx, cs)
	if err != nil {
		return err
	}
	p.Refused = append(p.Refused, problems...)
	if u.opts.Container == "" {
		for _, n := range u.m.Networks {
			p.Create = append(p.Create, "network "+u.rename("network", n.Name)+" (if missing)")
		}
		anon := u.anonymousNames()
		for _, v := range u.m.Volumes {
			if anon[v.Name] {
				p.Create = append(p.Create, "anonymous volume (was "+v.Name+"), made with its container")
				continue
			}
			p.Create = append(p.Create, "volume "+u.rename("volume", v.Name))
		}
		for _, b := range u.m.Binds {
			if u.opts.As == "" && !u.reuse[b.Source] {
				p.Create = append(p.Create, "bind source "+b.Source)
			}
		}
	}
	create, replace := u.composePlan()
	p.Create, p.Replace = append(p.Create, create...), append(p.Replace, replace...)
	for _, img := range u.load {
		p.Create = append(p.Create, "image "+img.Ref+" (loaded from the point)")
	}
	for _, ref := range u.pull {
		p.Create = append(p.Create, "image "+ref+" (pulled)")
	}
	for _, c := range cs {
		name := u.rename("container", c.Name)
		p.Ports = append(p.Ports, u.portPlan(name, u.specs[c.Name])...)
		p.Create = append(p.Create, "container "+name)
		if u.opts.Force {
			if _, err := u.eng.Container(ctx, name); err == nil {
				p.Replace = append(p.Replace, "container "+name)
			}
		}
	}
	return nil
}

// portPlan says what the port policy does to a container's published
// ports; nothing without a policy or for a container that publishes none.
// A shift past 65535 is among the refusals (hostProblems), not here.
func (u *unitRestore) portPlan(name string, spec engine.Spec) []string {
	if u.opts.Ports.IsZero() {
		return nil
	}
	changes, err := u.opts.Ports.PortChanges(spec)
	if err != nil || len(changes) == 0 {
		return nil
	}
	if u.opts.Ports.None {
		return []string{"ports of " + name + ": none published"}
	}
	return []string{"ports of " + name + ": " + strings.Join(changes, ", ")}
}

// prepareCheck is prepareTarget's verdict without creating anything.
func prepareCheck(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil // missing: it would be created
	}
	if len(entries) > 0 {
		return fmt.Errorf("directory %s holds %d entries: choose an empty or new one", dir, len(entries))
	}
	return nil
}

package backup

import (
	"context"
	"fmt"
	"slices"

	"github.com/lifeboat-backup/lifeboat/internal/engine"
	"github.com/lifeboat-backup/lifeboat/internal/repository"
)

// RestoreScope is what a restore writes, as far as its locks go: the
// fields of restore.Options that decide it.
type RestoreScope struct {
	Volume    string // --volume
	As        string // --as
	Target    string // --target: a directory, no unit
	ImageOnly bool   // images only, no unit
	Dump      bool   // --dump: load dumps into a running container
	Into      string // --into, with Dump
}

// RestoreLocks names the units whose locks a restore of point holds, so
// that no backup of them interleaves with it: none for a directory or
// images only; else the point's unit, and each unit it writes besides —
// the copy's (project/COPY, container/COPY or volume/COPY), the units whose
// containers mount the volume written, the unit of the container a dump
// is loaded into.
//
// A copy locks the original's unit too: a copy of a project mounts the
// original's bind-mount sources (filling them when empty), so its restore
// writes, and its containers run on, data the original's backup reads.
func RestoreLocks(ctx context.Context, eng *engine.Client, point repository.Point, s RestoreScope) ([]string, error) {
	if s.Target != "" || s.ImageOnly {
		return nil, nil
	}
	units := []string{point.Unit}
	switch {
	case s.Dump:
		if s.Into != "" {
			u, err := containerUnit(ctx, eng, s.Into)
			if err != nil {
				return nil, err
			}
			units = append(units, u)
		}
	case s.Volume != "":
		name := s.Volume
		if s.As != "" {
			name = s.As
		}
		users, err := volumeUsers(ctx, eng, name)
		if err != nil {
			return nil, err
		}
		units = append(append(units, Unit{Kind: "volume", Name: name}.String()), users...)
	case s.As != "":
		units = append(units, Unit{Kind: point.Kind, Name: s.As}.String())
	}
	slices.Sort(units)
	return slices.Compact(units), nil
}

// unitOf is the unit a container belongs to.
func unitOf(c engine.Container) Unit {
	if c.Project != "" {
		return Unit{Kind: "project", Name: c.Project}
	}
	return Unit{Kind: "container", Name: c.Name}
}

// volumeUsers are the units whose containers mount the volume name.
func volumeUsers(ctx context.Context, eng *engine.Client, name string) ([]string, error) {
	cs, err := eng.Containers(ctx)
	if err != nil {
		return nil, fmt.Errorf("find the containers of volume %s: %w", name, err)
	}
	var out []string
	for _, c := range cs {
		for _, m := range c.Mounts {
			if m.Type == "volume" && m.Name == name {
				out = append(out, unitOf(c).String())
				break
			}
		}
	}
	return out, nil
}

// containerUnit is the unit of the container named name (or with that ID).
func containerUnit(ctx context.Context, eng *engine.Client, name string) (string, error) {
	cs, err := eng.Containers(ctx)
	if err != nil {
		return "", fmt.Errorf("find container %s: %w", name, err)
	}
	for _, c := range cs {
		if c.Name == name || c.ID == name {
			return unitOf(c).String(), nil
		}
	}
	return "", fmt.Errorf("container %s %w", name, engine.ErrNotFound)
}

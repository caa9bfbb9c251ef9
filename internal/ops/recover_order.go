package ops

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/lifeboat-backup/lifeboat/internal/engine"
	"github.com/lifeboat-backup/lifeboat/internal/layout"
	"github.com/lifeboat-backup/lifeboat/internal/repository"
)

// recoverUnit is one unit recover brings back, with what it makes on the
// engine and what of other units it needs there first.
type recoverUnit struct {
	point    repository.Point
	volume   string   // a volume unit's volume
	provides []string // "volume:NAME", "network:NAME", "container:NAME"
	uses     []string
	imageIDs []string // of the image archives the point holds
}

// planUnit reads what a point makes and needs from its manifest and its
// containers' recorded configuration; no data is read.
func planUnit(ctx context.Context, repo *repository.Repository, p repository.Point) (recoverUnit, error) {
	u := recoverUnit{point: p}
	b, err := repo.ReadFile(ctx, p.ID, layout.ManifestPath)
	if err != nil {
		return u, fmt.Errorf("read the manifest of %s: %w", p.Unit, err)
	}
	m, err := layout.ParseManifest(b)
	if err != nil {
		return u, err
	}
	for _, img := range m.Images {
		if img.Saved {
			u.imageIDs = append(u.imageIDs, img.ID)
		}
	}
	if p.Kind == "volume" {
		u.volume = strings.TrimPrefix(p.Unit, "volume/")
		u.provides = []string{"volume:" + u.volume}
		return u, nil
	}
	for _, v := range m.Volumes {
		u.provides = append(u.provides, "volume:"+v.Name)
	}
	for _, n := range m.Networks {
		u.provides = append(u.provides, "network:"+n.Name)
	}
	for _, c := range m.Containers {
		u.provides = append(u.provides, "container:"+c.Name)
		b, err := repo.ReadFile(ctx, p.ID, layout.ContainerPath(c.Name)+"/"+layout.ConfigFile)
		if err != nil {
			return u, fmt.Errorf("read the configuration of %s in %s: %w", c.Name, p.Unit, err)
		}
		uses, err := specUses(b)
		if err != nil {
			return u, fmt.Errorf("configuration of %s in %s: %w", c.Name, p.Unit, err)
		}
		u.uses = append(u.uses, uses...)
	}
	return u, nil
}

// specUses lists the volumes, networks and containers a recorded
// container refers to by name.
func specUses(b []byte) ([]string, error) {
	var spec engine.Spec
	if err := json.Unmarshal(b, &spec); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	var hc struct {
		Binds       []string
		Mounts      []struct{ Type, Source string }
		NetworkMode string
		VolumesFrom []string
		Links       []string
	}
	if len(spec.HostConfig) > 0 {
		if err := json.Unmarshal(spec.HostConfig, &hc); err != nil {
			return nil, fmt.Errorf("decode host config: %w", err)
		}
	}
	var out []string
	for n := range spec.Networks {
		out = append(out, "network:"+n)
	}
	for _, b := range hc.Binds {
		if src, _, _ := strings.Cut(b, ":"); src != "" && !strings.HasPrefix(src, "/") {
			out = append(out, "volume:"+src)
		}
	}
	for _, m := range hc.Mounts {
		if m.Type == "volume" && m.Source != "" {
			out = append(out, "volume:"+m.Source)
		}
	}
	if c, ok := strings.CutPrefix(hc.NetworkMode, "container:"); ok {
		out = append(out, "container:"+c)
	} else if hc.NetworkMode != "" && !isBuiltinNetwork(hc.NetworkMode) {
		out = append(out, "network:"+hc.NetworkMode)
	}
	for _, v := range hc.VolumesFrom {
		c, _, _ := strings.Cut(v, ":")
		out = append(out, "container:"+c)
	}
	for _, l := range hc.Links {
		c, _, _ := strings.Cut(strings.TrimPrefix(l, "/"), ":")
		out = append(out, "container:"+c)
	}
	return out, nil
}

func isBuiltinNetwork(n string) bool {
	switch n {
	case "default", "bridge", "host", "none":
		return true
	}
	return false
}

// orderUnits puts units that make a volume, network or container before
// the units that refer to it; volumes alone come first, then by name. A
// volume unit whose volume another unit of the list holds is dropped (and
// named in skipped): that unit restores it with its containers, and two
// restores of one volume would collide. Units in a cycle keep name order
// after the rest.
func orderUnits(units []recoverUnit) (ordered []recoverUnit, skipped map[string]string) {
	skipped = map[string]string{}
	owner := map[string]string{} // what is provided → the unit providing it
	for _, u := range units {
		if u.volume != "" {
			continue
		}
		for _, p := range u.provides {
			owner[p] = u.point.Unit
		}
	}
	var keep []recoverUnit
	for _, u := range units {
		if o, ok := owner["volume:"+u.volume]; u.volume != "" && ok {
			skipped[u.point.Unit] = "restored with " + o
			continue
		}
		if u.volume != "" {
			owner["volume:"+u.volume] = u.point.Unit
		}
		keep = append(keep, u)
	}
	sort.SliceStable(keep, func(i, j int) bool {
		if (keep[i].volume != "") != (keep[j].volume != "") {
			return keep[i].volume != ""
		}
		return keep[i].point.Unit < keep[j].point.Unit
	})
	done := map[string]bool{}
	for len(ordered) < len(keep) {
		progressed := false
		for _, u := range keep {
			if done[u.point.Unit] || !ready(u, owner, done) {
				continue
			}
			ordered, done[u.point.Unit], progressed = append(ordered, u), true, true
		}
		if !progressed {
			for _, u := range keep {
				if !done[u.point.Unit] {
					ordered, done[u.point.Unit] = append(ordered, u), true
				}
			}
		}
	}
	return ordered, skipped
}

// ready says whether every unit u needs is restored already.
func ready(u recoverUnit, owner map[string]string, done map[string]bool) bool {
	for _, need := range u.uses {
		if o, ok := owner[need]; ok && o != u.point.Unit && !done[o] {
			return false
		}
	}
	return true
}

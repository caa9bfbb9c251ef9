package backup

import (
	"context"
	"fmt"
	"sort"

	"github.com/lifeboat-backup/lifeboat/internal/engine"
	"github.com/lifeboat-backup/lifeboat/internal/policy"
)

// UnitInfo is one unit as `lifeboat ls` shows it: what it holds and how
// its policy protects it.
type UnitInfo struct {
	Unit        string        `json:"unit"`
	Kind        string        `json:"kind"`
	Name        string        `json:"name"`
	Containers  []string      `json:"containers,omitempty"`
	Volumes     []string      `json:"volumes,omitempty"`
	Binds       []string      `json:"binds,omitempty"`
	Policy      policy.Policy `json:"policy"`
	Consistency string        `json:"consistency"` // what a backup now would use
	Reason      string        `json:"reason"`
	Warnings    []string      `json:"warnings,omitempty"`
	Error       string        `json:"error,omitempty"` // a policy that cannot apply
}

// List describes every unit on the host, under the default policy.
func List(ctx context.Context, eng *engine.Client) ([]UnitInfo, error) {
	return ListWith(ctx, eng, policy.DefaultDefaults)
}

// ListWith describes every unit on the host; defaults are what labels
// override.
func ListWith(ctx context.Context, eng *engine.Client, defaults policy.Defaults) ([]UnitInfo, error) {
	cs, vols, err := inventory(ctx, eng)
	if err != nil {
		return nil, err
	}
	units, err := withoutSelf(ctx, eng, allUnits(cs, vols))
	if err != nil {
		return nil, err
	}
	labels := map[string]map[string]string{}
	for _, v := range vols {
		labels[v.Name] = v.Labels
	}
	out := make([]UnitInfo, 0, len(units))
	digests := map[string]bool{} // image ID → has repo digests
	for _, u := range units {
		info := describe(u, cs, labels, defaults)
		if err := imageWarnings(ctx, eng, &info, cs, digests); err != nil {
			return nil, err
		}
		out = append(out, info)
	}
	return out, nil
}

// imageWarnings flags images that exist in no registry: only a restore
// point can bring them back, so images=none loses them.
func imageWarnings(ctx context.Context, eng *engine.Client, info *UnitInfo, cs []engine.Container, digests map[string]bool) error {
	seen := map[string]bool{}
	for _, c := range cs {
		if !contains(info.Containers, c.Name) || seen[c.ImageID] || c.ImageID == "" {
			continue
		}
		seen[c.ImageID] = true
		has, ok := digests[c.ImageID]
		if !ok {
			img, err := eng.Image(ctx, c.ImageID)
			if err != nil {
				return err
			}
			has = len(img.RepoDigests) > 0
			digests[c.ImageID] = has
		}
		switch {
		case has:
		case info.Policy.Images == "none":
			info.Warnings = append(info.Warnings, fmt.Sprintf("image %s exists in no registry and %s=none: this unit cannot come back on a host without it", c.Image, policy.LabelImages))
		default:
			info.Warnings = append(info.Warnings, fmt.Sprintf("image %s exists in no registry: kept in every restore point", c.Image))
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func describe(u Unit, all []engine.Container, volLabels map[string]map[string]string, defaults policy.Defaults) UnitInfo {
	info := UnitInfo{Unit: u.String(), Kind: u.Kind, Name: u.Name}
	var members []policy.Labelled
	var cs []engine.Container
	if u.Kind == "volume" {
		info.Volumes = []string{u.Name}
		members = append(members, policy.Labelled{Name: u.Name, Labels: volLabels[u.Name]})
	}
	seenV, seenB := map[string]bool{}, map[string]bool{}
	for _, c := range all {
		if (u.Kind == "project" && c.Project == u.Name) || (u.Kind == "container" && c.Project == "" && c.Name == u.Name) {
			cs = append(cs, c)
			info.Containers = append(info.Containers, c.Name)
			members = append(members, policy.Labelled{Name: c.Name, Labels: c.Labels})
			for _, m := range c.Mounts {
				if m.Type == "volume" && !seenV[m.Name] {
					seenV[m.Name] = true
					info.Volumes = append(info.Volumes, m.Name)
				}
				if m.Type == "bind" && !seenB[m.Source] {
					seenB[m.Source] = true
					info.Binds = append(info.Binds, m.Source)
				}
			}
		}
	}
	sort.Strings(info.Containers)
	sort.Strings(info.Volumes)
	sort.Strings(info.Binds)
	p, err := policy.Resolve(members, defaults)
	if err != nil {
		info.Error = err.Error()
		info.Reason = "policy error: backups of this unit fail until the labels are fixed"
		return info
	}
	info.Policy = p
	switch {
	case !p.Enabled:
		info.Consistency, info.Reason = "-", "not protected: "+policy.LabelEnable+"=false ("+p.Sources[policy.LabelEnable]+")"
	case u.Kind == "volume":
		info.Consistency, info.Reason = ModeNone, "a volume no container uses is read as it is"
	default:
		var paths []string
		for _, c := range cs {
			for _, m := range c.Mounts {
				if (m.Type == "volume" || m.Type == "bind") && m.Source != "" {
					paths = append(paths, m.Source)
				}
			}
		}
		d, err := decide("", p.Consistency, p.Sources[policy.LabelConsistency], cs, func() string { return storageBlocked(paths) })
		if err != nil {
			info.Error = err.Error()
			return info
		}
		info.Consistency, info.Reason = d.String(), d.why
	}
	return info
}

package consistency

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Hook labels. lifeboat.hooks.pre runs in the container that carries it;
// on a project, lifeboat.hooks.pre.<service> (on any of its containers)
// runs in that service's containers.
const (
	LabelHookPre     = "lifeboat.hooks.pre"
	LabelHookPost    = "lifeboat.hooks.post"
	LabelHookTimeout = "lifeboat.hooks.timeout"
)

// DefaultHookTimeout bounds a hook that names no timeout.
const DefaultHookTimeout = 5 * time.Minute

// Member is one container of a unit, as hooks see it.
type Member struct {
	Name, ID, Service string
	Labels            map[string]string
}

// Hook is one command to run in a container before or after a capture.
type Hook struct {
	Phase       string // "pre" or "post"
	Container   string
	ContainerID string
	Cmd         string // run with sh -c
	Label       string // where it was declared: container name and label key
	Timeout     time.Duration
}

// Hooks collects a unit's hooks from its members' labels, in start order
// for pre hooks and in reverse for post hooks (the undo of a pre hook runs
// in the opposite order, like a stack).
func Hooks(members []Member) (pre, post []Hook, err error) {
	byService := map[string][]int{}
	for i, m := range members {
		if m.Service != "" {
			byService[m.Service] = append(byService[m.Service], i)
		}
	}
	type found struct {
		order int
		hook  Hook
	}
	var pres, posts []found
	for i, m := range members {
		timeout := DefaultHookTimeout
		if v, ok := m.Labels[LabelHookTimeout]; ok {
			d, err := time.ParseDuration(strings.TrimSpace(v))
			if err != nil || d <= 0 {
				return nil, nil, fmt.Errorf("container %s: %s=%q is not a duration: write it as 30s or 5m", m.Name, LabelHookTimeout, v)
			}
			timeout = d
		}
		keys := make([]string, 0, len(m.Labels))
		for k := range m.Labels {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			v := strings.TrimSpace(m.Labels[k])
			var phase, service string
			switch {
			case k == LabelHookPre:
				phase = "pre"
			case k == LabelHookPost:
				phase = "post"
			case strings.HasPrefix(k, LabelHookPre+"."):
				phase, service = "pre", strings.TrimPrefix(k, LabelHookPre+".")
			case strings.HasPrefix(k, LabelHookPost+"."):
				phase, service = "post", strings.TrimPrefix(k, LabelHookPost+".")
			default:
				continue
			}
			if v == "" {
				return nil, nil, fmt.Errorf("container %s: label %s is empty: give it a command, or remove it", m.Name, k)
			}
			targets := []int{i}
			if service != "" {
				if targets = byService[service]; len(targets) == 0 {
					return nil, nil, fmt.Errorf("container %s: label %s names service %q, which has no container in this unit", m.Name, k, service)
				}
			}
			for _, t := range targets {
				h := Hook{Phase: phase, Container: members[t].Name, ContainerID: members[t].ID, Cmd: v, Label: m.Name + ": " + k, Timeout: timeout}
				if phase == "pre" {
					pres = append(pres, found{t, h})
				} else {
					posts = append(posts, found{t, h})
				}
			}
		}
	}
	sort.SliceStable(pres, func(a, b int) bool { return pres[a].order < pres[b].order })
	sort.SliceStable(posts, func(a, b int) bool { return posts[a].order > posts[b].order })
	for _, f := range pres {
		pre = append(pre, f.hook)
	}
	for _, f := range posts {
		post = append(post, f.hook)
	}
	return pre, post, nil
}

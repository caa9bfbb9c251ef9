package restore

import (
	"context"
	"fmt"

	"github.com/lifeboat-backup/lifeboat/internal/engine"
	"github.com/lifeboat-backup/lifeboat/internal/restore/txn"
)

// Anonymous volumes come back anonymous: the engine makes each anew when
// the container is created, as it did for the original, and the restore
// fills it from the point. A volume restored under its recorded name
// would be a named mount to the engine, and `docker compose down -v`
// (which removes a container's volumes with it, and only the anonymous
// ones) would leave it behind.

// freshAnonymous reports whether this restore makes anonymous volumes
// anew: a whole-unit restore. One container restored alone keeps using
// the volumes the point names, as a drill's sandbox uses its copies.
func (u *unitRestore) freshAnonymous() bool {
	return u.box == nil && u.opts.Container == ""
}

// anonymousNames are the point's volumes that restore as anonymous ones,
// not by name.
func (u *unitRestore) anonymousNames() map[string]bool {
	out := map[string]bool{}
	if !u.freshAnonymous() {
		return out
	}
	for _, s := range u.specs {
		for _, v := range s.AnonymousVolumes {
			out[v.Name] = true
		}
	}
	return out
}

// fillAnonymous records the anonymous volumes the engine made for
// container id (journal step i), so that a rollback removes them with it,
// and restores each from the point's volume it replaces.
func (u *unitRestore) fillAnonymous(ctx context.Context, i int, id string, spec engine.Spec) error {
	if len(spec.AnonymousVolumes) == 0 {
		return nil
	}
	ct, err := u.eng.Container(ctx, id)
	if err != nil {
		return err
	}
	made := map[string]string{} // destination → new volume
	var names []string
	for _, m := range ct.Mounts {
		if m.Type == "volume" && m.Name != "" {
			made[m.Destination] = m.Name
		}
	}
	for _, v := range spec.AnonymousVolumes {
		if made[v.Destination] == "" {
			return fmt.Errorf("container %s: the engine made no volume at %s", ct.Name, v.Destination)
		}
		names = append(names, made[v.Destination])
	}
	if err := u.tx.Set(i, func(s *txn.Step) { s.Anonymous = names }); err != nil {
		return err
	}
	for _, v := range spec.AnonymousVolumes {
		lv, err := u.m.FindVolume(v.Name)
		if err != nil {
			continue // not in the point (excluded): left as the engine made it
		}
		name := made[v.Destination]
		vol, err := u.eng.Volume(ctx, name)
		if err != nil {
			return err
		}
		if err := u.fillVolume(ctx, vol, "volume "+name, lv.Data); err != nil {
			return fmt.Errorf("anonymous volume %s of %s at %s: %w", name, ct.Name, v.Destination, err)
		}
		u.res.Volumes = append(u.res.Volumes, name)
	}
	return nil
}

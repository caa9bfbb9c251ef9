package restore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/lifeboat-backup/lifeboat/internal/engine"
	"github.com/lifeboat-backup/lifeboat/internal/failpoint"
	"github.com/lifeboat-backup/lifeboat/internal/layout"
	"github.com/lifeboat-backup/lifeboat/internal/progress"
	"github.com/lifeboat-backup/lifeboat/internal/repository"
	"github.com/lifeboat-backup/lifeboat/internal/restore/txn"
)

// ErrNoSandbox means a point cannot be drilled at all here, whatever it
// holds: a volume without containers, a remote engine.
var ErrNoSandbox = errors.New("no sandbox possible")

// SandboxOptions of NewSandbox.
type SandboxOptions struct {
	Ref string
	// Prefix starts every name the sandbox creates ("lbdrill-3f2a91-"):
	// none may be a name of anything else on the engine.
	Prefix     string
	JournalDir string
	Log        *slog.Logger
	Progress   *progress.Counters
}

// Sandbox is a restore point recreated beside everything else for a
// restore drill: its containers created (not started) under prefixed
// names, on internal networks of its own, with no published host port,
// restart policy no, and fresh copies of its volumes and bind mounts
// (bind sources in volumes of their own: no host path is written or
// mounted). Everything it creates is in the restore journal, which is
// never committed: Remove rolls it all back, and after a kill the next
// lifeboat command does.
type Sandbox struct {
	Point    repository.Point
	Manifest *layout.Manifest
	// Network is the sandbox's own network, where containers of the
	// engine's default bridge and scratch servers go.
	Network string
	// Containers are the point's containers, in start order.
	Containers []SandboxContainer
	// NotKept lists what the restore could not reproduce.
	NotKept []string

	u *unitRestore
}

// SandboxContainer is one container of a sandbox.
type SandboxContainer struct {
	Name string `json:"name"` // as the point names it
	// Sandboxed is its name in the sandbox.
	Sandboxed string            `json:"sandboxed"`
	ID        string            `json:"id"`
	Image     string            `json:"image"`
	Labels    map[string]string `json:"-"` // as recorded
	// Running: it ran when the point was taken, so a drill starts it.
	Running bool `json:"running"`
}

// sandboxPlan is what a unitRestore does differently for a sandbox.
type sandboxPlan struct {
	prefix  string
	network string
	binds   map[string]string // bind source → the volume holding its copy
}

// NewSandbox restores a point into a sandbox. On failure everything it
// created is removed again.
func NewSandbox(ctx context.Context, repo *repository.Repository, eng *engine.Client, opts SandboxOptions) (*Sandbox, error) {
	if !strings.HasPrefix(opts.Prefix, "lb") || len(opts.Prefix) < 6 {
		return nil, fmt.Errorf("%w: prefix %q is too short to keep its names apart", ErrNoSandbox, opts.Prefix)
	}
	point, m, err := load(ctx, repo, opts.Ref)
	if err != nil {
		return nil, err
	}
	if len(m.Containers) == 0 {
		return nil, fmt.Errorf("%w: %s holds no containers; a drill starts a unit's containers, and a volume alone has none (check a volume's point with lifeboat check --read-data)", ErrNoSandbox, point.Unit)
	}
	if !eng.IsLocal() {
		return nil, fmt.Errorf("%w: the engine at %s is remote, and a drill restores data on the engine's host: run lifeboat there", ErrNoSandbox, eng.Host())
	}
	ro := Options{Ref: point.ID, JournalDir: opts.JournalDir, Log: opts.Log, Progress: opts.Progress}
	box := &sandboxPlan{prefix: opts.Prefix, network: opts.Prefix + "net", binds: map[string]string{}}
	u := &unitRestore{repo: repo, eng: eng, opts: ro, point: point, m: m, rename: box.rename, box: box}
	u.res = UnitResult{ID: point.ID, Unit: point.Unit}
	sb := &Sandbox{Point: point, Manifest: m, Network: box.network, u: u}
	if err := u.sandboxPreflight(ctx); err != nil {
		return nil, err
	}
	u.tx, err = begin(ctx, ro, txn.Entry{Unit: point.Unit, What: "drill sandbox " + strings.TrimSuffix(opts.Prefix, "-"), EngineHost: eng.Host()})
	if err != nil {
		return nil, err
	}
	if err := u.sandboxRun(ctx, sb); err != nil {
		return nil, conclude(ctx, u.tx, eng, opts.Log, err)
	}
	sb.NotKept = u.res.NotKept
	return sb, nil
}

// rename prefixes every name of the unit, and every name it refers to:
// a reference to something outside the unit then fails to resolve,
// rather than reaching the original (volumes-from, a network namespace).
func (b *sandboxPlan) rename(_, old string) string {
	if strings.HasPrefix(old, b.prefix) {
		return old
	}
	return b.prefix + old
}

// sandboxPreflight reads the containers' configurations and plans their
// images; it refuses what the sandbox cannot have: a missing image or
// device.
func (u *unitRestore) sandboxPreflight(ctx context.Context) error {
	if err := u.loadSpecs(ctx, u.m.Containers); err != nil {
		return err
	}
	u.fromTL = map[string]bool{}
	queued := map[string]bool{}
	var problems []string
	for _, c := range u.m.Containers {
		problems = append(problems, hostProblems(u.specs[c.Name], c.Name, nil, "", false, engine.PortPolicy{})...)
		p, err := u.planImage(ctx, c, queued)
		if err != nil {
			return err
		}
		problems = append(problems, p...)
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s", ErrConflict, strings.Join(problems, "; "))
	}
	return nil
}

func (u *unitRestore) sandboxRun(ctx context.Context, sb *Sandbox) error {
	if err := u.loadImages(ctx, u.load); err != nil {
		return err
	}
	if err := u.pullImages(ctx); err != nil {
		return err
	}
	if err := u.sandboxNetworks(ctx); err != nil {
		return err
	}
	if err := u.sandboxVolumes(ctx); err != nil {
		return err
	}
	for _, c := range u.m.Containers {
		id, err := u.container(ctx, c)
		if err != nil {
			return err
		}
		sb.Containers = append(sb.Containers, SandboxContainer{
			Name: c.Name, Sandboxed: u.rename("container", c.Name), ID: id,
			Image: c.Image.Ref, Labels: u.specLabels(c.Name), Running: c.Running,
		})
	}
	failpoint.Hit("drill-sandbox-made")
	return nil
}

// sandboxNetworks creates the sandbox's own network and one for each
// network a container of the unit joins, all internal: no route out.
func (u *unitRestore) sandboxNetworks(ctx context.Context) error {
	names := []string{u.box.network}
	for _, n := range u.m.Networks {
		names = append(names, u.rename("network", n.Name))
	}
	for _, spec := range u.specs {
		for n := range spec.Networks {
			if !engine.BuiltinNetwork(n) {
				names = append(names, u.rename("network", n))
			}
		}
	}
	slices.Sort(names[1:])
	for _, name := range slices.Compact(names) {
		if _, err := u.tx.Add(txn.Step{Kind: txn.MadeNetwork, Name: name, Label: "network " + name}); err != nil {
			return err
		}
		spec := engine.NetworkSpec{Name: name, Driver: "bridge", Internal: true, Labels: u.box.labels()}
		if err := u.eng.CreateNetwork(ctx, spec); err != nil {
			return err
		}
		failpoint.Hit("restore-network-made")
		u.res.Networks = append(u.res.Networks, name)
	}
	return nil
}

func (b *sandboxPlan) labels() map[string]string {
	return map[string]string{engine.LabelSandbox: strings.TrimSuffix(b.prefix, "-")}
}

// sandboxVolumes restores every volume and bind source into a fresh
// local volume: no driver options, which could point at the original's
// storage.
func (u *unitRestore) sandboxVolumes(ctx context.Context) error {
	fill := func(name, label string, d layout.Data) error {
		v, err := u.freshVolume(ctx, name)
		if err != nil {
			return err
		}
		dir, err := v.DataDir()
		if err != nil {
			return err
		}
		if err := u.fill(ctx, dir, label, d); err != nil {
			return fmt.Errorf("%s: %w", label, err)
		}
		u.res.Volumes = append(u.res.Volumes, name)
		return nil
	}
	for _, v := range u.m.Volumes {
		name := u.rename("volume", v.Name)
		if err := fill(name, "volume "+name, v.Data); err != nil {
			return err
		}
	}
	for _, b := range u.m.Binds {
		sum := sha256.Sum256([]byte(b.Source))
		name := u.box.prefix + "bind-" + hex.EncodeToString(sum[:6])
		if err := fill(name, "copy of bind source "+b.Source, b.Data); err != nil {
			return err
		}
		u.box.binds[b.Source] = name
	}
	return nil
}

// freshVolume creates a volume of the sandbox, journalled. One that
// exists already is not the sandbox's: an error, never reused.
func (u *unitRestore) freshVolume(ctx context.Context, name string) (engine.Volume, error) {
	if _, err := u.eng.Volume(ctx, name); err == nil {
		return engine.Volume{}, fmt.Errorf("volume %s %w: not the sandbox's to use", name, engine.ErrExists)
	} else if !errors.Is(err, engine.ErrNotFound) {
		return engine.Volume{}, err
	}
	return createVolume(ctx, u.tx, u.eng, engine.Volume{Driver: "local", Labels: u.box.labels()}, name)
}

// createOptions are how container c is created: as recorded, or isolated
// in the sandbox with its bind mounts on their copies.
func (u *unitRestore) createOptions(name string, spec engine.Spec) (engine.CreateOptions, error) {
	opts := engine.CreateOptions{Name: name, Rename: u.rename, Ports: u.opts.Ports}
	if u.box == nil {
		return opts, nil
	}
	mounts, err := engine.SpecMounts(spec)
	if err != nil {
		return opts, err
	}
	sb := &engine.Sandbox{Network: u.box.network, Mounts: map[string]string{}, Label: u.box.labels()[engine.LabelSandbox]}
	for _, m := range mounts {
		if m.Type != "bind" {
			continue
		}
		v, ok := u.box.binds[m.Source]
		if !ok {
			return opts, fmt.Errorf("container %s: bind source %s is not in the restore point, and a drill never mounts host paths", spec.Name, m.Source)
		}
		sb.Mounts[m.Destination] = v
	}
	opts.Sandbox = sb
	return opts, nil
}

// specLabels are the labels container name was recorded with.
func (u *unitRestore) specLabels(name string) map[string]string {
	labels, _ := engine.SpecLabels(u.specs[name])
	return labels
}

// Remove removes everything the sandbox created, whatever ctx says.
func (s *Sandbox) Remove(ctx context.Context) ([]string, error) {
	return s.u.tx.Rollback(context.WithoutCancel(ctx), s.u.eng)
}

// Scratch creates, without starting, a scratch server for a drill: a
// container like the point's container name (image, command,
// environment, healthcheck) with an empty volume at each of its mounts,
// on the sandbox's own network only, for a dump to be loaded into.
func (s *Sandbox) Scratch(ctx context.Context, name string) (SandboxContainer, error) {
	u := s.u
	spec, ok := u.specs[name]
	if !ok {
		return SandboxContainer{}, fmt.Errorf("container %s is not in restore point %s", name, s.Point.ID)
	}
	mounts, err := engine.SpecMounts(spec)
	if err != nil {
		return SandboxContainer{}, err
	}
	cname := u.box.prefix + "scratch-" + name
	sb := &engine.Sandbox{Network: u.box.network, Mounts: map[string]string{}, Label: u.box.labels()[engine.LabelSandbox], Alone: true}
	for i, m := range mounts {
		if m.Type == "tmpfs" {
			continue
		}
		v := fmt.Sprintf("%s-%d", cname, i)
		if _, err := u.freshVolume(ctx, v); err != nil {
			return SandboxContainer{}, err
		}
		sb.Mounts[m.Destination] = v
	}
	i, err := u.tx.Add(txn.Step{Kind: txn.MadeContainer, Name: cname, Label: "container " + cname})
	if err != nil {
		return SandboxContainer{}, err
	}
	id, _, err := u.eng.Create(ctx, spec, engine.CreateOptions{Name: cname, Rename: u.rename, Sandbox: sb})
	if err != nil {
		return SandboxContainer{}, err
	}
	if err := u.tx.Set(i, func(s *txn.Step) { s.ID = id }); err != nil {
		return SandboxContainer{}, err
	}
	return SandboxContainer{Name: name, Sandboxed: cname, ID: id, Image: spec.Image.Ref, Labels: u.specLabels(name), Running: true}, nil
}

package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
)

// ErrExists says that the object to create is already there.
var ErrExists = errors.New("already exists")

// ImageRef names the image a container runs: the reference it was created
// from, the image ID, and the registry digests that can pull it again. It
// is stored as /containers/<name>/image.json in a restore point.
type ImageRef struct {
	Ref         string   `json:"ref"`
	ID          string   `json:"id"`
	RepoDigests []string `json:"repo_digests,omitempty"`
}

// String is the reference with the ID, for messages.
func (r ImageRef) String() string {
	switch {
	case r.Ref == "":
		return r.ID
	case r.ID == "" || r.ID == r.Ref:
		return r.Ref
	}
	return r.Ref + " (" + r.ID + ")"
}

// EndpointSpec is a container's attachment to one network, as configured
// rather than as allocated: addresses only when they were static.
type EndpointSpec struct {
	// Aliases are the network-scoped DNS names, without the container-ID
	// and hostname aliases the engine adds by itself.
	Aliases      []string          `json:"aliases,omitempty"`
	IPv4Address  string            `json:"ipv4_address,omitempty"`
	IPv6Address  string            `json:"ipv6_address,omitempty"`
	LinkLocalIPs []string          `json:"link_local_ips,omitempty"`
	Links        []string          `json:"links,omitempty"`
	DriverOpts   map[string]string `json:"driver_opts,omitempty"`
}

// Spec is everything needed to recreate a container on this or another
// engine. It is stored as /containers/<name>/config.json in a restore point.
// Config and HostConfig are the engine's own JSON, so fields this code does
// not know survive; only per-instance fields are cleaned (see Inspect).
type Spec struct {
	Name       string                  `json:"name"`
	Image      ImageRef                `json:"image"`
	Config     json.RawMessage         `json:"config"`
	HostConfig json.RawMessage         `json:"host_config"`
	Networks   map[string]EndpointSpec `json:"networks"`
	// WritableLayer is the overlay2 upper dir on this host, "" with other
	// storage drivers. It is a local path, so it is not stored.
	WritableLayer string `json:"-"`
	StorageDriver string `json:"storage_driver"`
	// Running is true for running, paused and restarting containers: the
	// ones a restore starts again.
	Running bool `json:"running"`
	// AnonymousVolumes are volumes the engine made for the image's VOLUME
	// lines or for Mounts entries without a source (Compose's anonymous
	// volumes): no Binds or Mounts entry names them, so without this a
	// recreated container would get new, empty ones and the restored data
	// would lie unused beside it.
	AnonymousVolumes []AnonymousVolume `json:"anonymous_volumes,omitempty"`
}

// AnonymousVolume is one volume mounted by the image's VOLUME line.
type AnonymousVolume struct {
	Name        string `json:"name"`
	Destination string `json:"destination"`
	RW          bool   `json:"rw"`
}

// Image inspects an image by reference or ID.
func (c *Client) Image(ctx context.Context, ref string) (ImageRef, error) {
	img, err := c.api.ImageInspect(ctx, ref)
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return ImageRef{}, fmt.Errorf("image %q %w: see `docker images`", ref, ErrNotFound)
		}
		return ImageRef{}, fmt.Errorf("inspect image %q: %w", ref, err)
	}
	return ImageRef{Ref: ref, ID: img.ID, RepoDigests: img.RepoDigests}, nil
}

// HasImage reports whether the engine has an image by ID or reference.
func (c *Client) HasImage(ctx context.Context, idOrRef string) (bool, error) {
	_, err := c.Image(ctx, idOrRef)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// Inspect captures what is needed to recreate a container. What refers to
// this container instance is cleaned: a hostname that is just its ID
// prefix (or comes from another container's or the host's network
// namespace), the container ID file, and the aliases the engine adds on
// every network by itself (short ID, hostname). References to other containers by ID (network, IPC and PID
// modes, volumes-from, links) become names, since IDs do not survive a
// restore.
func (c *Client) Inspect(ctx context.Context, nameOrID string) (Spec, error) {
	res, err := c.api.ContainerInspect(ctx, nameOrID, client.ContainerInspectOptions{})
	info, raw := res.Container, res.Raw
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return Spec{}, fmt.Errorf("container %q %w: see `docker ps -a`", nameOrID, ErrNotFound)
		}
		return Spec{}, fmt.Errorf("inspect container %q: %w", nameOrID, err)
	}
	if info.Config == nil || info.HostConfig == nil {
		return Spec{}, fmt.Errorf("inspect container %q: the engine returned no configuration", nameOrID)
	}
	var doc struct {
		Config     rawObject
		HostConfig rawObject
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return Spec{}, fmt.Errorf("inspect container %q: decode: %w", nameOrID, err)
	}
	spec := Spec{
		Name:          strings.TrimPrefix(info.Name, "/"),
		Image:         ImageRef{Ref: info.Config.Image, ID: info.Image},
		Networks:      map[string]EndpointSpec{},
		StorageDriver: info.Driver,
		Running:       info.State != nil && info.State.Running,
	}
	spec.WritableLayer = writableLayer(info)
	spec.AnonymousVolumes = anonymousVolumes(info.Mounts, info.HostConfig)
	var imageEnv []string
	if img, err := c.api.ImageInspect(ctx, info.Image); err == nil {
		spec.Image.RepoDigests = img.RepoDigests
		if img.Config != nil {
			imageEnv = img.Config.Env
		}
	} else {
		// Only `docker rmi -f` of an image in use gets here; the ID is
		// still recorded, digests are a convenience.
		c.log.Warn("image of container not inspectable", "container", spec.Name, "image", info.Image, "err", err)
	}

	hostname := info.Config.Hostname
	c.portable(ctx, info, doc.Config, doc.HostConfig)
	if c.info.Podman {
		podmanPortable(doc.Config, doc.HostConfig, hostname, imageEnv)
	}
	if spec.Config, err = json.Marshal(doc.Config); err != nil {
		return Spec{}, fmt.Errorf("inspect container %q: encode config: %w", nameOrID, err)
	}
	if spec.HostConfig, err = json.Marshal(doc.HostConfig); err != nil {
		return Spec{}, fmt.Errorf("inspect container %q: encode host config: %w", nameOrID, err)
	}
	if info.NetworkSettings != nil {
		for name, ep := range info.NetworkSettings.Networks {
			spec.Networks[name] = endpointSpec(ep, info.ID, hostname)
		}
	}
	if c.info.Podman {
		if err := c.podmanSpec(ctx, info.ID, &spec); err != nil {
			return Spec{}, fmt.Errorf("inspect container %q: %w", nameOrID, err)
		}
	}
	return spec, nil
}

// portable rewrites a container's recorded configuration so that it can
// be created again: no generated hostname, no ID file, other containers
// named rather than referred to by their IDs, which a restore changes.
func (c *Client) portable(ctx context.Context, info container.InspectResponse, cfg, hc rawObject) {
	mode := info.HostConfig.NetworkMode
	if info.Config.Hostname == shortID(info.ID) || mode.IsContainer() || mode.IsHost() {
		cfg.set("Hostname", "")
	}
	hc.set("ContainerIDFile", "")
	for _, key := range []string{"NetworkMode", "IpcMode", "PidMode"} {
		var v string
		if hc.get(key, &v) == nil && strings.HasPrefix(v, "container:") {
			hc.set(key, "container:"+c.containerName(ctx, strings.TrimPrefix(v, "container:")))
		}
	}
	var from []string
	if hc.get("VolumesFrom", &from) == nil && len(from) > 0 {
		for i, f := range from {
			ref, rw, hasRW := strings.Cut(f, ":")
			from[i] = c.containerName(ctx, ref)
			if hasRW {
				from[i] += ":" + rw
			}
		}
		hc.set("VolumesFrom", from)
	}
	var links []string
	if hc.get("Links", &links) == nil && len(links) > 0 {
		hc.set("Links", createLinks(links))
	}
}

// endpointSpec is what a restore needs of a container's endpoint on one
// network.
func endpointSpec(ep *network.EndpointSettings, id, hostname string) EndpointSpec {
	if ep == nil {
		return EndpointSpec{}
	}
	es := EndpointSpec{Links: ep.Links, DriverOpts: ep.DriverOpts}
	for _, a := range ep.Aliases {
		// Engines before 26 add the short ID and the hostname as
		// aliases on user networks; they add them again on create.
		if a != shortID(id) && a != id && a != hostname {
			es.Aliases = append(es.Aliases, a)
		}
	}
	if ip := ep.IPAMConfig; ip != nil {
		es.IPv4Address, es.IPv6Address, es.LinkLocalIPs = addrString(ip.IPv4Address), addrString(ip.IPv6Address), addrStrings(ip.LinkLocalIPs)
	}
	if len(es.DriverOpts) == 0 {
		es.DriverOpts = nil
	}
	return es
}

// containerName maps a container ID to its name, so references survive
// the ID changing in a restore. Anything unresolvable stays as it is.
func (c *Client) containerName(ctx context.Context, ref string) string {
	res, err := c.api.ContainerInspect(ctx, ref, client.ContainerInspectOptions{})
	if err != nil || res.Container.Name == "" {
		return ref
	}
	return strings.TrimPrefix(res.Container.Name, "/")
}

// createLinks turns the inspect form of legacy links, "/db:/web/alias",
// into the create form "db:alias", which does not name this container.
func createLinks(links []string) []string {
	out := make([]string, 0, len(links))
	for _, l := range links {
		target, alias, ok := strings.Cut(l, ":")
		if !ok {
			out = append(out, strings.TrimPrefix(l, "/"))
			continue
		}
		target = strings.TrimPrefix(target, "/")
		if i := strings.LastIndex(alias, "/"); i >= 0 {
			alias = alias[i+1:]
		}
		out = append(out, target+":"+alias)
	}
	return out
}

// writableLayer is the container's overlay upper dir (Docker's overlay2,
// Podman's overlay), "" with other storage drivers.
func writableLayer(info container.InspectResponse) string {
	if info.GraphDriver == nil || !upperDirDrivers[info.GraphDriver.Name] {
		return ""
	}
	return info.GraphDriver.Data["UpperDir"]
}

// addrString is "" for an address the engine reported empty.
func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

func addrStrings(as []netip.Addr) []string {
	if as == nil {
		return nil
	}
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = addrString(a)
	}
	return out
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// rawObject is a JSON object whose members stay the engine's own bytes, so
// fields unknown to this code pass through untouched.
type rawObject map[string]json.RawMessage

func (o rawObject) get(key string, v any) error {
	raw, ok := o[key]
	if !ok {
		return ErrNotFound
	}
	return json.Unmarshal(raw, v)
}

func (o rawObject) set(key string, v any) {
	if _, ok := o[key]; !ok {
		if s, isString := v.(string); isString && s == "" {
			return // nothing to clear
		}
	}
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only strings and string slices are set
	}
	o[key] = b
}

// Package engine talks to the Docker Engine API: discovery of volumes (and
// later containers and projects), their inspect data, and the calls that
// quiesce and recreate them. Docker's API types stay in this package.
package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/volume"
	"github.com/moby/moby/client"
	"github.com/moby/moby/client/pkg/versions"
)

// Errors callers classify.
var (
	ErrUnreachable = errors.New("cannot reach the Docker Engine")
	ErrNotFound    = errors.New("not found")
)

// Client is a connection to one Docker Engine.
type Client struct {
	api  *client.Client
	host string
	log  *slog.Logger
	info Info
	self selfCache // lifeboat's own container, see Self
}

// Info describes the engine a backup was taken from.
type Info struct {
	// ID is the engine's own ID (docker info's ID): two engines may
	// report the same hostname, never the same ID.
	ID            string `json:"engine_id,omitempty"`
	Hostname      string `json:"hostname"`
	EngineVersion string `json:"engine_version"`
	APIVersion    string `json:"api_version"`
	DataRoot      string `json:"data_root"`
	StorageDriver string `json:"storage_driver"`
	// Podman is true for Podman's Docker-compatible API service.
	Podman bool `json:"podman,omitempty"`
}

// Connect opens a client from DOCKER_HOST (or the default socket) and
// negotiates the API version, so Engine 20.10 (API 1.41) and newer work.
func Connect(ctx context.Context, log *slog.Logger) (*Client, error) {
	return ConnectHost(ctx, envHost(), log)
}

// ConnectHost opens a client to the engine at host (a DOCKER_HOST value),
// as recorded in a freeze journal entry.
func ConnectHost(ctx context.Context, host string, log *slog.Logger) (*Client, error) {
	ssh, err := sshOpts(host, os.Getenv(EnvSSHConfig))
	if err != nil {
		return nil, err
	}
	if ssh != nil {
		// After FromEnv: its TLS option replaces the transport the dialer
		// is set on.
		return connectAt(ctx, log, host, append([]client.Opt{client.FromEnv}, ssh...)...)
	}
	if host == "" {
		return connect(ctx, log, client.FromEnv)
	}
	return connect(ctx, log, client.FromEnv, client.WithHost(host))
}

// Endpoint is how to reach one engine: the Docker CLI's DOCKER_HOST,
// DOCKER_TLS_VERIFY and DOCKER_CERT_PATH, as one value that a config file
// can hold for each of several engines.
type Endpoint struct {
	Name      string `json:"name,omitempty" yaml:"name"`
	Host      string `json:"host" yaml:"host"` // unix://, tcp://, ssh://user@host
	TLSVerify bool   `json:"tls_verify,omitempty" yaml:"tls_verify"`
	CertPath  string `json:"cert_path,omitempty" yaml:"cert_path"` // ca.pem, cert.pem, key.pem
	// SSHConfig is an ssh_config file for an ssh:// Host (ssh -F), as
	// LIFEBOAT_SSH_CONFIG.
	SSHConfig string `json:"ssh_config,omitempty" yaml:"ssh_config"`
}

// ConnectEndpoint opens a client to ep. An empty Host is the environment's
// engine, as Connect.
func ConnectEndpoint(ctx context.Context, ep Endpoint, log *slog.Logger) (*Client, error) {
	if ep.Host == "" {
		return Connect(ctx, log)
	}
	ssh, err := sshOpts(ep.Host, ep.SSHConfig)
	if err != nil {
		return nil, err
	}
	if ssh != nil {
		return connectAt(ctx, log, ep.Host, ssh...)
	}
	if ep.TLSVerify && ep.CertPath == "" {
		return nil, fmt.Errorf("engine %s: tls_verify needs cert_path, a directory with ca.pem, cert.pem and key.pem", ep.Host)
	}
	opts := []client.Opt{client.WithHost(ep.Host)}
	if ep.CertPath != "" {
		opts = append(opts, client.WithTLSClientConfig(
			filepath.Join(ep.CertPath, "ca.pem"), filepath.Join(ep.CertPath, "cert.pem"), filepath.Join(ep.CertPath, "key.pem")))
	}
	return connect(ctx, log, opts...)
}

func connect(ctx context.Context, log *slog.Logger, opts ...client.Opt) (*Client, error) {
	return connectAt(ctx, log, "", opts...)
}

// connectAt is connect with the address to show and record; "" is the
// client's own (an ssh:// engine's client talks to a placeholder URL).
func connectAt(ctx context.Context, log *slog.Logger, shown string, opts ...client.Opt) (*Client, error) {
	api, err := client.New(append(opts, identity())...)
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	if shown == "" {
		shown = api.DaemonHost()
	}
	c := &Client{api: api, host: shown, log: log}
	pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	// Negotiate now, not lazily on the first call: the client swallows a
	// failed lazy negotiation and then speaks its newest API version,
	// which an old engine rejects on every call with a vaguer message.
	ping, err := api.Ping(pctx, client.PingOptions{NegotiateAPIVersion: true})
	if err != nil {
		api.Close()
		if ping.APIVersion != "" && versions.LessThan(ping.APIVersion, client.MinAPIVersion) {
			return nil, fmt.Errorf("engine at %s speaks API %s; lifeboat needs %s or newer (Docker 19.03): upgrade Docker",
				c.host, ping.APIVersion, client.MinAPIVersion)
		}
		return nil, fmt.Errorf("%w at %s: %v (is dockerd running? set DOCKER_HOST to its socket)", ErrUnreachable, c.host, err)
	}
	res, err := api.Info(pctx, client.InfoOptions{})
	if err != nil {
		api.Close()
		return nil, fmt.Errorf("%w at %s: info: %v", ErrUnreachable, c.host, err)
	}
	info := res.Info
	c.info = Info{
		ID: info.ID, Hostname: info.Name, EngineVersion: info.ServerVersion, APIVersion: api.ClientVersion(),
		DataRoot: info.DockerRootDir, StorageDriver: info.Driver,
	}
	if c.info.Hostname == "" {
		c.info.Hostname, _ = os.Hostname()
	}
	if err := c.detectPodman(pctx); err != nil {
		api.Close()
		return nil, err
	}
	return c, nil
}

// Close releases the connection.
func (c *Client) Close() error { return c.api.Close() }

// Info is what the engine said about itself at Connect.
func (c *Client) Info() Info { return c.info }

// Host is the address of the engine (DOCKER_HOST or the default).
func (c *Client) Host() string { return c.host }

// IsLocal reports whether the engine runs on this machine, so its volumes'
// mount points can be read directly (the local fast path).
func (c *Client) IsLocal() bool {
	return strings.HasPrefix(c.host, "unix://")
}

// Volume is a named volume as a backup needs it.
type Volume struct {
	Name       string            `json:"name"`
	Driver     string            `json:"driver"`
	Mountpoint string            `json:"mountpoint"`
	Labels     map[string]string `json:"labels,omitempty"`
	Options    map[string]string `json:"options,omitempty"`
	CreatedAt  string            `json:"created_at,omitempty"`
}

func volumeOf(v volume.Volume) Volume {
	return Volume{Name: v.Name, Driver: v.Driver, Mountpoint: v.Mountpoint, Labels: v.Labels, Options: v.Options, CreatedAt: v.CreatedAt}
}

// Volume inspects one volume.
func (c *Client) Volume(ctx context.Context, name string) (Volume, error) {
	res, err := c.api.VolumeInspect(ctx, name, client.VolumeInspectOptions{})
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return Volume{}, fmt.Errorf("volume %q %w: see `docker volume ls`", name, ErrNotFound)
		}
		return Volume{}, fmt.Errorf("inspect volume %q: %w", name, err)
	}
	return volumeOf(res.Volume), nil
}

// Volumes lists every volume of the engine.
func (c *Client) Volumes(ctx context.Context) ([]Volume, error) {
	res, err := c.api.VolumeList(ctx, client.VolumeListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list volumes: %w", err)
	}
	out := make([]Volume, 0, len(res.Items))
	for _, v := range res.Items {
		out = append(out, volumeOf(v))
	}
	return out, nil
}

// CreateVolume creates a volume like spec (driver, options, labels) under
// spec.Name.
func (c *Client) CreateVolume(ctx context.Context, spec Volume) (Volume, error) {
	res, err := c.api.VolumeCreate(ctx, client.VolumeCreateOptions{
		Name: spec.Name, Driver: spec.Driver, DriverOpts: spec.Options, Labels: spec.Labels,
	})
	if err != nil {
		return Volume{}, fmt.Errorf("create volume %q: %w", spec.Name, err)
	}
	return volumeOf(res.Volume), nil
}

// ContainerRef names a container briefly.
type ContainerRef struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	State string `json:"state"`
}

// VolumeUsers lists the containers that mount a volume.
func (c *Client) VolumeUsers(ctx context.Context, name string) ([]ContainerRef, error) {
	list, err := c.api.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: make(client.Filters).Add("volume", name)})
	if err != nil {
		return nil, fmt.Errorf("list containers using volume %q: %w", name, err)
	}
	return refsOf(list.Items), nil
}

// refsOf names listed containers by their first name, or a short ID.
func refsOf(items []container.Summary) []ContainerRef {
	out := make([]ContainerRef, 0, len(items))
	for _, s := range items {
		n := s.ID[:12]
		if len(s.Names) > 0 {
			n = strings.TrimPrefix(s.Names[0], "/")
		}
		out = append(out, ContainerRef{ID: s.ID, Name: n, State: string(s.State)})
	}
	return out
}

// RemoveVolume removes a volume, for undoing one that a failed restore
// created.
func (c *Client) RemoveVolume(ctx context.Context, name string) error {
	if _, err := c.api.VolumeRemove(ctx, name, client.VolumeRemoveOptions{}); err != nil {
		return fmt.Errorf("remove volume %q: %w", name, err)
	}
	return nil
}

package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// Podman's pods have no place in Docker's API: a pod is an infra
// container holding the network, IPC and UTS namespaces that its members
// join ("container:<infra>"). Only Podman's own API (libpod, served on the
// same socket) says which container belongs to which pod. Lifeboat
// protects a pod's members as standalone containers: the infra
// container, which holds no data, is no unit, and a member is recorded
// with namespaces of its own, so that it restores on any engine (a copy
// joined to an infra container would need the pod to exist first).

// libpodContainer is the part of libpod's container inspect that tells
// pods apart.
type libpodContainer struct {
	Pod     string
	IsInfra bool
}

// libpodGet decodes one GET of Podman's own API into v.
func (c *Client) libpodGet(ctx context.Context, path string, v any) error {
	dial := c.api.Dialer()
	hc := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) { return dial(ctx) },
	}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://podman/v4.0.0/libpod/"+path, nil)
	if err != nil {
		return fmt.Errorf("libpod %s: %w", path, err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("libpod %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("libpod %s: %s", path, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("libpod %s: decode: %w", path, err)
	}
	return nil
}

// podOf is the pod a container belongs to ("" for none) and whether it
// is the pod's infra container. Engines other than Podman have no pods.
func (c *Client) podOf(ctx context.Context, id string) (libpodContainer, error) {
	var lc libpodContainer
	if !c.info.Podman {
		return lc, nil
	}
	err := c.libpodGet(ctx, "containers/"+url.PathEscape(id)+"/json", &lc)
	return lc, err
}

// leavePod records a pod member with namespaces of its own: the modes
// that name the pod's infra container become the engine's defaults, so
// the member restores as a standalone container on the default network.
func (c *Client) leavePod(ctx context.Context, spec *Spec, pod string) error {
	var p struct{ InfraContainerID string }
	if err := c.libpodGet(ctx, "pods/"+url.PathEscape(pod)+"/json", &p); err != nil {
		return err
	}
	infra := c.containerName(ctx, p.InfraContainerID)
	var hc rawObject
	if err := json.Unmarshal(spec.HostConfig, &hc); err != nil {
		return fmt.Errorf("decode host config: %w", err)
	}
	for key, own := range map[string]string{"NetworkMode": "bridge", "IpcMode": "", "UTSMode": "", "PidMode": ""} {
		var v string
		if hc.get(key, &v) == nil && strings.HasPrefix(v, "container:") {
			if ref := strings.TrimPrefix(v, "container:"); ref == infra || ref == p.InfraContainerID {
				hc.set(key, own)
			}
		}
	}
	b, err := json.Marshal(hc)
	if err != nil {
		return fmt.Errorf("encode host config: %w", err)
	}
	spec.HostConfig = b
	c.log.Warn("container is in a Podman pod; it is recorded as a standalone container", "container", spec.Name, "pod", pod)
	return nil
}

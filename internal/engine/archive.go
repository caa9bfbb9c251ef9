package engine

import (
	"context"
	"fmt"
	"io"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/client"
)

// Labels of the short-lived helper containers that move a remote engine's
// data through its archive endpoints. lifeboat.enable=false keeps them out
// of every listing of units, here and by a lifeboat elsewhere.
const (
	HelperLabel = "lifeboat.helper"
	// HelperMountPath is where a helper mounts the volume or directory it
	// moves: one path, so archive paths never depend on the unit.
	HelperMountPath = "/lifeboat-data"
	// helperEntrypoint is never run (helpers are created, never started),
	// but an image without a command cannot be created from.
	helperEntrypoint = "/lifeboat-helper-is-never-started"
)

// HelperSpec is what a helper container mounts.
type HelperSpec struct {
	Name     string // the container's name, journalled before it is created
	Image    string // an image the engine already has
	Volume   string // a volume's name, or
	Bind     string // a directory of the engine's host
	ReadOnly bool
	Owner    string // the value of HelperLabel: who made it, for the reaper
}

// CreateHelper creates, and never starts, a container that mounts one
// volume or host directory at HelperMountPath: the archive endpoints work
// on created containers, so the engine reads and writes the data and
// nothing runs. It has no network and no restart policy.
func (c *Client) CreateHelper(ctx context.Context, spec HelperSpec) (string, error) {
	m := mount.Mount{Target: HelperMountPath, ReadOnly: spec.ReadOnly}
	hc := container.HostConfig{NetworkMode: "none"}
	switch {
	case spec.Bind != "" && !spec.ReadOnly:
		// The -v form: a restore's missing bind source is created, as
		// the engine creates it for the container that mounts it.
		hc.Binds = []string{spec.Bind + ":" + HelperMountPath}
	case spec.Volume != "":
		m.Type, m.Source = mount.TypeVolume, spec.Volume
		// Mounting an empty volume copies the image's files at the mount
		// path into it: never, as the helper must not change the data.
		m.VolumeOptions = &mount.VolumeOptions{NoCopy: true}
	case spec.Bind != "":
		m.Type, m.Source = mount.TypeBind, spec.Bind
	default:
		return "", fmt.Errorf("create helper %s: nothing to mount", spec.Name)
	}
	cfg := container.Config{
		Image: spec.Image, Entrypoint: []string{helperEntrypoint}, Cmd: nil,
		Labels:          map[string]string{HelperLabel: spec.Owner, "lifeboat.enable": "false"},
		NetworkDisabled: true,
	}
	if hc.Binds == nil {
		hc.Mounts = []mount.Mount{m}
	}
	res, err := c.api.ContainerCreate(ctx, client.ContainerCreateOptions{Config: &cfg, HostConfig: &hc, Name: spec.Name})
	if err != nil {
		return "", fmt.Errorf("create helper container %s from %s: %w", spec.Name, spec.Image, err)
	}
	return res.ID, nil
}

// RemoveHelper removes a helper container and the anonymous volumes its
// image declared (named volumes and host directories stay). One that is
// already gone is no error.
func (c *Client) RemoveHelper(ctx context.Context, name string) error {
	_, err := c.api.ContainerRemove(ctx, name, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	if err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("remove helper container %s: %w", name, err)
	}
	return nil
}

// ArchiveFrom is a tar stream of path in container id, as the engine
// packs it (GET /containers/{id}/archive).
func (c *Client) ArchiveFrom(ctx context.Context, id, path string) (io.ReadCloser, error) {
	res, err := c.api.CopyFromContainer(ctx, id, client.CopyFromContainerOptions{SourcePath: path})
	if err != nil {
		return nil, fmt.Errorf("read archive of %s in %s: %w", path, shortID(id), err)
	}
	return res.Content, nil
}

// ArchiveTo unpacks a tar stream at dir in container id (PUT
// /containers/{id}/archive). The engine, as root, keeps the owners,
// modes, times and xattrs of the headers. An entry replaces what is at
// its path, a directory too: a writable layer may replace an image's
// directory by a file.
func (c *Client) ArchiveTo(ctx context.Context, id, dir string, r io.Reader) error {
	_, err := c.api.CopyToContainer(ctx, id, client.CopyToContainerOptions{DestinationPath: dir, Content: r, AllowOverwriteDirWithFile: true})
	if err != nil {
		return fmt.Errorf("write archive at %s in %s: %w", dir, shortID(id), err)
	}
	return nil
}

// PathExists reports whether path exists in container id (HEAD archive).
func (c *Client) PathExists(ctx context.Context, id, path string) (bool, error) {
	_, err := c.api.ContainerStatPath(ctx, id, client.ContainerStatPathOptions{Path: path})
	if cerrdefs.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("stat %s in %s: %w", path, shortID(id), err)
	}
	return true, nil
}

// Change is one path of a container's writable layer that differs from
// its image.
type Change struct {
	Path    string
	Added   bool // new in the layer: none of it is the image's
	Deleted bool
}

// LayerChanges lists what a container changed against its image (GET
// /containers/{id}/changes): the writable layer of an engine whose
// data root cannot be read.
func (c *Client) LayerChanges(ctx context.Context, id string) ([]Change, error) {
	res, err := c.api.ContainerDiff(ctx, id, client.ContainerDiffOptions{})
	if err != nil {
		return nil, fmt.Errorf("list changes of %s: %w", shortID(id), err)
	}
	out := make([]Change, 0, len(res.Changes))
	for _, ch := range res.Changes {
		out = append(out, Change{Path: ch.Path, Added: ch.Kind == container.ChangeAdd, Deleted: ch.Kind == container.ChangeDelete})
	}
	return out, nil
}

// Helpers lists the helper containers on the engine whose owner label is
// owner ("" : all of them).
func (c *Client) Helpers(ctx context.Context, owner string) ([]ContainerRef, error) {
	f := HelperLabel
	if owner != "" {
		f += "=" + owner
	}
	list, err := c.api.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: make(client.Filters).Add("label", f)})
	if err != nil {
		return nil, fmt.Errorf("list helper containers: %w", err)
	}
	return refsOf(list.Items), nil
}

// HelperImage is an image the engine already has to create a helper
// from: the image of a container that mounts volume, else any image of
// the engine. Lifeboat never pulls or builds one onto a remote host.
func (c *Client) HelperImage(ctx context.Context, volume string) (string, error) {
	if volume != "" {
		users, err := c.VolumeUsers(ctx, volume)
		if err != nil {
			return "", err
		}
		for _, u := range users {
			if ct, err := c.Container(ctx, u.ID); err == nil && ct.ImageID != "" {
				return ct.ImageID, nil
			}
		}
	}
	res, err := c.api.ImageList(ctx, client.ImageListOptions{})
	if err != nil {
		return "", fmt.Errorf("list images: %w", err)
	}
	for _, img := range res.Items {
		return img.ID, nil
	}
	return "", fmt.Errorf("the engine at %s has no image to create a helper container from, and lifeboat adds none: load or pull any small image there (busybox)", c.host)
}

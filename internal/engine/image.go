package engine

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
)

// ImageCreated is when an image was built: a stable time for one image ID,
// which lets a backup recognise an image it has already stored.
func (c *Client) ImageCreated(ctx context.Context, id string) (time.Time, error) {
	img, err := c.api.ImageInspect(ctx, id)
	if err != nil {
		return time.Time{}, fmt.Errorf("inspect image %s: %w", id, notFound(id, err))
	}
	t, err := time.Parse(time.RFC3339Nano, img.Created)
	if err != nil {
		return time.Time{}, fmt.Errorf("image %s: created %q: %w", id, img.Created, err)
	}
	return t, nil
}

// SaveImage returns a reader of `docker save REF`. The save starts on the
// first Read, so an image the repository already holds is never exported.
func (c *Client) SaveImage(ctx context.Context, ref string) io.ReadCloser {
	return &lazySave{ctx: ctx, c: c, ref: ref}
}

type lazySave struct {
	ctx  context.Context
	c    *Client
	ref  string
	once sync.Once
	rc   io.ReadCloser
	err  error
}

func (s *lazySave) Read(p []byte) (int, error) {
	s.once.Do(func() {
		s.rc, s.err = s.c.api.ImageSave(s.ctx, []string{s.ref})
		if s.err != nil {
			s.err = fmt.Errorf("save image %s: %w", s.ref, s.err)
		}
	})
	if s.err != nil {
		return 0, s.err
	}
	return s.rc.Read(p)
}

func (s *lazySave) Close() error {
	if s.rc != nil {
		return s.rc.Close()
	}
	return nil
}

// LoadImage loads a `docker save` archive. The engine reports failures in
// its JSON stream, not in the status: they are read and returned.
func (c *Client) LoadImage(ctx context.Context, r io.Reader) error {
	resp, err := c.api.ImageLoad(ctx, r, client.ImageLoadWithQuiet(true))
	if err != nil {
		return fmt.Errorf("load image: %w", err)
	}
	defer resp.Close()
	sc := bufio.NewScanner(resp)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var msg struct {
			Error       string `json:"error"`
			ErrorDetail struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		if json.Unmarshal(sc.Bytes(), &msg) == nil && (msg.Error != "" || msg.ErrorDetail.Message != "") {
			return fmt.Errorf("load image: %s", strings.TrimSpace(msg.Error+" "+msg.ErrorDetail.Message))
		}
	}
	if err := sc.Err(); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("load image: %w", err)
	}
	return nil
}

// Commit snapshots a container's filesystem into an image tagged ref. The
// engine pauses the container for the commit and resumes it after.
func (c *Client) Commit(ctx context.Context, id, ref string) (ImageRef, error) {
	// The engine pauses by default; NoPause stays false.
	resp, err := c.api.ContainerCommit(ctx, id, client.ContainerCommitOptions{Reference: ref, Comment: "lifeboat timeline image", Config: c.commitConfig()})
	if err != nil {
		return ImageRef{}, fmt.Errorf("commit container %s to %s: %w", id, ref, notFound(id, err))
	}
	return ImageRef{Ref: ref, ID: resp.ID}, nil
}

// Untag removes the tag ref; the image itself goes only when nothing else
// uses it. A tag already gone is not an error.
func (c *Client) Untag(ctx context.Context, ref string) error {
	_, err := c.api.ImageRemove(ctx, ref, client.ImageRemoveOptions{PruneChildren: true})
	if err == nil || cerrdefs.IsNotFound(err) {
		return nil
	}
	if cerrdefs.IsConflict(err) {
		// Still used by a container: only the tag could go, and the engine
		// refuses that for a running container's image. Keep it.
		c.log.Info("timeline image kept: a container uses it", "ref", ref)
		return nil
	}
	return fmt.Errorf("remove image tag %s: %w", ref, err)
}

// Tag gives image src the reference dst.
func (c *Client) Tag(ctx context.Context, src, dst string) error {
	if _, err := c.api.ImageTag(ctx, client.ImageTagOptions{Source: src, Target: dst}); err != nil {
		return fmt.Errorf("tag %s as %s: %w", src, dst, err)
	}
	return nil
}

// Push pushes ref to its registry and returns the manifest digest. auth is
// the X-Registry-Auth value; it is never logged.
func (c *Client) Push(ctx context.Context, ref, auth string) (string, error) {
	rc, err := c.api.ImagePush(ctx, ref, client.ImagePushOptions{RegistryAuth: auth})
	if err != nil {
		return "", fmt.Errorf("push %s: %w", ref, err)
	}
	defer rc.Close()
	var digest string
	err = readStream(rc, func(aux json.RawMessage) {
		var a struct{ Digest string }
		if json.Unmarshal(aux, &a) == nil && a.Digest != "" {
			digest = a.Digest
		}
	})
	if err != nil {
		return "", fmt.Errorf("push %s: %w", ref, err)
	}
	return digest, nil
}

// Pull pulls ref from its registry.
func (c *Client) Pull(ctx context.Context, ref, auth string) error {
	rc, err := c.api.ImagePull(ctx, ref, client.ImagePullOptions{RegistryAuth: auth})
	if err != nil {
		return fmt.Errorf("pull %s: %w", ref, err)
	}
	defer rc.Close()
	if err := readStream(rc, nil); err != nil {
		return fmt.Errorf("pull %s: %w", ref, err)
	}
	return nil
}

// readStream reads the engine's JSON progress stream: failures are
// reported inside it, with a 200 status.
func readStream(r io.Reader, aux func(json.RawMessage)) error {
	dec := json.NewDecoder(r)
	for {
		var msg struct {
			Error       string                   `json:"error"`
			ErrorDetail struct{ Message string } `json:"errorDetail"`
			Aux         json.RawMessage          `json:"aux"`
		}
		if err := dec.Decode(&msg); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return err
		}
		if msg.Error != "" || msg.ErrorDetail.Message != "" {
			return errors.New(strings.TrimSpace(msg.Error + " " + msg.ErrorDetail.Message))
		}
		if aux != nil && len(msg.Aux) > 0 {
			aux(msg.Aux)
		}
	}
}

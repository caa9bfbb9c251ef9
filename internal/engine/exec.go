package engine

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/pkg/stdcopy"
)

// ExecSpec is a command run inside a container through the Engine API.
// Env carries credentials: they go to the engine in the request body and
// never appear in any process list of the host.
type ExecSpec struct {
	Cmd  []string
	Env  []string
	User string
}

// ExecOutput returns a reader of the command's stdout. The command starts
// on the first Read (so output kopia already holds is never produced); the
// reader ends with an error that carries the command's stderr when it
// exits non-zero, so a failed or truncated dump is never stored as good.
func (c *Client) ExecOutput(ctx context.Context, id string, spec ExecSpec) io.ReadCloser {
	return &execReader{ctx: ctx, c: c, id: id, spec: spec}
}

type execReader struct {
	ctx    context.Context
	c      *Client
	id     string
	spec   ExecSpec
	once   sync.Once
	pr     *io.PipeReader
	err    error
	closer func()
}

func (r *execReader) start() error {
	created, err := r.c.api.ContainerExecCreate(r.ctx, r.id, container.ExecOptions{
		Cmd: r.spec.Cmd, Env: r.spec.Env, User: r.spec.User, AttachStdout: true, AttachStderr: true,
	})
	if err != nil {
		return fmt.Errorf("exec %s in %s: %w", r.spec.Cmd[0], r.id, notFound(r.id, err))
	}
	hijacked, err := r.c.api.ContainerExecAttach(r.ctx, created.ID, container.ExecAttachOptions{})
	if err != nil {
		return fmt.Errorf("exec %s in %s: %w", r.spec.Cmd[0], r.id, err)
	}
	pr, pw := io.Pipe()
	r.pr, r.closer = pr, hijacked.Close
	go func() {
		var stderr bytes.Buffer
		_, err := stdcopy.StdCopy(pw, &limitedWriter{w: &stderr, n: 8 << 10}, hijacked.Reader)
		hijacked.Close()
		if err == nil {
			err = r.exitStatus(created.ID, stderr.String())
		}
		pw.CloseWithError(err)
	}()
	return nil
}

// exitStatus turns a non-zero exit into an error carrying the tool's
// stderr.
func (r *execReader) exitStatus(execID, stderr string) error {
	info, err := r.c.api.ContainerExecInspect(r.ctx, execID)
	if err != nil {
		return fmt.Errorf("exec %s: %w", r.spec.Cmd[0], err)
	}
	if info.Running {
		return fmt.Errorf("exec %s: output ended while it still runs", r.spec.Cmd[0])
	}
	if info.ExitCode != 0 {
		return fmt.Errorf("%s in %s exited %d: %s", r.spec.Cmd[0], r.id, info.ExitCode, strings.TrimSpace(stderr))
	}
	return nil
}

func (r *execReader) Read(p []byte) (int, error) {
	r.once.Do(func() { r.err = r.start() })
	if r.err != nil {
		return 0, r.err
	}
	return r.pr.Read(p)
}

func (r *execReader) Close() error {
	if r.pr != nil {
		r.pr.Close()
	}
	if r.closer != nil {
		r.closer()
	}
	return nil
}

// limitedWriter keeps the first n bytes: enough stderr for a message.
type limitedWriter struct {
	w io.Writer
	n int
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if l.n > 0 {
		k := min(len(p), l.n)
		l.w.Write(p[:k])
		l.n -= k
	}
	return len(p), nil
}

package engine

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"
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

// attach creates an exec of spec in container id and attaches to its
// output (and its input, with stdin).
func (c *Client) attach(ctx context.Context, id string, spec ExecSpec, stdin bool) (execID string, _ client.HijackedResponse, _ error) {
	created, err := c.api.ExecCreate(ctx, id, client.ExecCreateOptions{
		Cmd: spec.Cmd, Env: spec.Env, User: spec.User, AttachStdin: stdin, AttachStdout: true, AttachStderr: true,
	})
	if err != nil {
		return "", client.HijackedResponse{}, fmt.Errorf("exec %s in %s: %w", spec.Cmd[0], id, notFound(id, err))
	}
	attached, err := c.api.ExecAttach(ctx, created.ID, client.ExecAttachOptions{})
	if err != nil {
		return "", client.HijackedResponse{}, fmt.Errorf("exec %s in %s: %w", spec.Cmd[0], id, err)
	}
	return created.ID, attached.HijackedResponse, nil
}

func (r *execReader) start() error {
	execID, hijacked, err := r.c.attach(r.ctx, r.id, r.spec, false)
	if err != nil {
		return err
	}
	pr, pw := io.Pipe()
	r.pr, r.closer = pr, hijacked.Close
	go func() {
		var stderr bytes.Buffer
		_, err := stdcopy.StdCopy(pw, &limitedWriter{w: &stderr, n: 8 << 10}, hijacked.Reader)
		hijacked.Close()
		if err == nil {
			err = r.exitStatus(execID, stderr.String())
		}
		pw.CloseWithError(err)
	}()
	return nil
}

// exitStatus turns a non-zero exit into an error carrying the tool's
// stderr.
func (r *execReader) exitStatus(execID, stderr string) error {
	info, err := r.c.api.ExecInspect(r.ctx, execID, client.ExecInspectOptions{})
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

// ExecResult is how a command run by Exec ended.
type ExecResult struct {
	ExitCode int
}

// Exec runs a command in a container to its end: stdin (may be nil) is
// copied in, stdout and stderr to the writers given. When ctx ends first,
// the command and everything it started are killed: the Engine API has no
// call for that, and a hook left hanging inside a database would hold its
// locks long after lifeboat gave up on it.
func (c *Client) Exec(ctx context.Context, id string, spec ExecSpec, stdin io.Reader, stdout, stderr io.Writer) (ExecResult, error) {
	// The engine's own calls must outlive ctx to kill and inspect.
	ectx := context.WithoutCancel(ctx)
	execID, hijacked, err := c.attach(ectx, id, spec, stdin != nil)
	if err != nil {
		return ExecResult{}, err
	}
	defer hijacked.Close()
	if stdin != nil {
		go func() {
			_, _ = io.Copy(hijacked.Conn, stdin)
			_ = hijacked.CloseWrite()
		}()
	}
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	done := make(chan error, 1)
	go func() {
		_, err := stdcopy.StdCopy(stdout, stderr, hijacked.Reader)
		done <- err
	}()
	select {
	case err = <-done:
	case <-ctx.Done():
		if info, ierr := c.api.ExecInspect(ectx, execID, client.ExecInspectOptions{}); ierr == nil && info.Running && info.PID > 0 {
			killTree(info.PID)
		}
		hijacked.Close()
		<-done
		return ExecResult{ExitCode: -1}, fmt.Errorf("exec %s in %s: %w (killed)", spec.Cmd[0], id, context.Cause(ctx))
	}
	if err != nil {
		return ExecResult{}, fmt.Errorf("exec %s in %s: read output: %w", spec.Cmd[0], id, err)
	}
	info, err := c.api.ExecInspect(ectx, execID, client.ExecInspectOptions{})
	if err != nil {
		return ExecResult{}, fmt.Errorf("exec %s in %s: %w", spec.Cmd[0], id, err)
	}
	return ExecResult{ExitCode: info.ExitCode}, nil
}

package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/lifeboat-backup/lifeboat/internal/beneath"
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
	execID string

	// Set when the dump comes through a FIFO (see dumpfifo.go).
	fifo      *dumpFIFO
	file      *os.File
	ended     <-chan error // the exec's end: nil, or why it failed
	stopWatch func() bool
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
	root := r.c.fifoRoot(r.ctx, r.id)
	if root == nil {
		return r.stream(r.spec)
	}
	defer root.Close()
	err := r.startFIFO(root)
	if errors.Is(err, errNoFIFO) && r.ctx.Err() == nil {
		// Not the dump's own failure: the host could not open what the
		// container made. The stream always works.
		r.c.log.Warn("dump through the exec stream instead", "container", r.id, "err", err)
		r.Close()
		r.fifo, r.pr, r.closer = nil, nil, nil
		return r.stream(r.spec)
	}
	return err
}

// errNoFIFO is a dump's FIFO the host could not open.
var errNoFIFO = errors.New("the host cannot open the dump's FIFO")

// stream runs spec and reads its stdout from the exec stream.
func (r *execReader) stream(spec ExecSpec) error {
	execID, hijacked, err := r.c.attach(r.ctx, r.id, spec, false)
	if err != nil {
		return err
	}
	pr, pw := io.Pipe()
	r.pr, r.closer, r.execID = pr, hijacked.Close, execID
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

// startFIFO runs the command under fifoWrap and, when the container made
// the FIFO, opens it beneath root.
func (r *execReader) startFIFO(root *beneath.Root) error {
	releaseStale(root, r.c.log)
	name := fifoName()
	spec := r.spec
	spec.Cmd = append([]string{"sh", "-c", fifoWrap, "sh", name}, r.spec.Cmd...)
	if err := r.stream(spec); err != nil {
		return err
	}
	dir, err := readMarker(r.pr)
	if err != nil {
		return fmt.Errorf("exec %s in %s: %w", r.spec.Cmd[0], r.id, err)
	}
	if dir == "-" {
		r.c.log.Debug("dump through the exec stream: the container took no FIFO", "container", r.id)
		return nil
	}
	f, err := openFIFO(root, dir, name)
	if err != nil {
		r.kill()
		return fmt.Errorf("%w: %w", errNoFIFO, err)
	}
	r.fifo = f
	return r.readFIFO()
}

// readFIFO opens the FIFO and reads the dump from it; the exec stream is
// then only waited to its end, for the command's exit status.
func (r *execReader) readFIFO() error {
	ended := make(chan error, 1)
	stop := make(chan struct{})
	go func() {
		_, err := io.Copy(io.Discard, r.pr)
		ended <- err
		close(stop)
	}()
	// The wait for the writer ends when the exec does, or the job.
	wait := make(chan struct{})
	go func() {
		select {
		case <-stop:
		case <-r.ctx.Done():
		}
		close(wait)
	}()
	file, err := r.fifo.open(wait)
	if err != nil {
		r.kill()
		<-ended
		return err
	}
	r.c.log.Debug("dump through a FIFO", "container", r.id, "fifo", r.fifo.name)
	r.file, r.ended = file, ended
	r.stopWatch = context.AfterFunc(r.ctx, func() { file.Close() })
	return nil
}

// kill ends the exec and everything it started, as Exec does when its
// context ends.
func (r *execReader) kill() { r.c.killExec(context.WithoutCancel(r.ctx), r.execID) }

// killExec kills a running exec and everything it started: the Engine
// API has no call for that.
func (c *Client) killExec(ctx context.Context, execID string) {
	if info, err := c.api.ExecInspect(ctx, execID, client.ExecInspectOptions{}); err == nil && info.Running && info.PID > 0 {
		killTree(info.PID)
	}
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
	if r.file == nil {
		return r.pr.Read(p)
	}
	n, err := r.file.Read(p)
	if err == io.EOF {
		// The writer closed its end: the exit status says whether the
		// dump is whole.
		if e := <-r.ended; e != nil {
			r.err = e
			return n, e
		}
		r.err = io.EOF
	} else if err != nil && r.ctx.Err() != nil {
		err = fmt.Errorf("dump cancelled: %w", context.Cause(r.ctx))
	} else if err != nil {
		err = fmt.Errorf("read the dump's FIFO: %w", err)
	}
	return n, err
}

func (r *execReader) Close() error {
	if r.file != nil {
		r.stopWatch()
		r.file.Close()
	}
	if r.fifo != nil {
		// Killed only once the FIFO is closed: a writer blocked on it then
		// ends by itself.
		r.kill()
		r.fifo.remove()
	}
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
		c.killExec(ectx, execID)
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

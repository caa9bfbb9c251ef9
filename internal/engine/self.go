package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
)

// selfCache remembers lifeboat's own container once found (or found
// absent), so that every listing does not inspect again. Errors are not
// remembered: the next call tries again.
type selfCache struct {
	mu   sync.Mutex
	done bool
	c    Container
	ok   bool
}

// Self finds the container of this engine that lifeboat itself runs in,
// so that plans can leave it out: a lifeboat that paused its own container
// would never thaw it. ok is false when lifeboat runs on the host, or in a
// container of another engine. The candidates come from /proc/self/cgroup
// and /proc/self/mountinfo, then the hostname inside a container; only
// the engine's inspect confirms one.
func (c *Client) Self(ctx context.Context) (Container, bool, error) {
	c.self.mu.Lock()
	defer c.self.mu.Unlock()
	if c.self.done {
		return c.self.c, c.self.ok, nil
	}
	cgroup, _ := os.ReadFile("/proc/self/cgroup")
	mountinfo, _ := os.ReadFile("/proc/self/mountinfo")
	ids := ContainerIDs(string(cgroup), string(mountinfo))
	hostname, _ := os.Hostname()
	for _, id := range ids {
		ct, err := c.Container(ctx, id)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return Container{}, false, err
		}
		c.self.done, c.self.c, c.self.ok = true, ct, true
		return ct, true, nil
	}
	// The hostname is the short container ID unless set otherwise; only
	// trusted inside a container (Docker creates /.dockerenv in each) and
	// only when the container it names has that hostname.
	if _, err := os.Stat("/.dockerenv"); err == nil && hexHostname.MatchString(hostname) {
		ct, err := c.Container(ctx, hostname)
		switch {
		case errors.Is(err, ErrNotFound):
		case err != nil:
			return Container{}, false, err
		case strings.HasPrefix(ct.ID, hostname):
			c.self.done, c.self.c, c.self.ok = true, ct, true
			return ct, true, nil
		}
	}
	c.self.done = true
	return Container{}, false, nil
}

var (
	fullID      = regexp.MustCompile(`^[0-9a-f]{64}$`)
	hexHostname = regexp.MustCompile(`^[0-9a-f]{12,64}$`)
	// A cgroup path segment naming a container: <id> (cgroupfs driver,
	// /docker/<id>), docker-<id>.scope (systemd driver), libpod-<id>,
	// cri-containerd-<id>.scope.
	cgroupSegment = regexp.MustCompile(`^(?:[a-z-]+-)?([0-9a-f]{64})(?:\.scope)?$`)
	// The engine bind-mounts each container's hostname, hosts and
	// resolv.conf from <data-root>/containers/<id>/.
	containerFile = regexp.MustCompile(`/containers/([0-9a-f]{64})/(?:hostname|hosts|resolv\.conf)$`)
)

// ContainerIDs are the container IDs that the contents of
// /proc/self/cgroup and /proc/self/mountinfo point at, most likely first:
// the deepest cgroup segment of each line (cgroup v1 lists one line per
// hierarchy, v2 a single "0::" line, which is "/" in a private cgroup
// namespace), then the source of the /etc/hostname, /etc/hosts and
// /etc/resolv.conf mounts, which v2's private namespaces do not hide.
func ContainerIDs(cgroup, mountinfo string) []string {
	var ids []string
	seen := map[string]bool{}
	add := func(id string) {
		if fullID.MatchString(id) && !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	for _, line := range strings.Split(cgroup, "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		segs := strings.Split(parts[2], "/")
		for i := len(segs) - 1; i >= 0; i-- {
			if m := cgroupSegment.FindStringSubmatch(segs[i]); m != nil {
				add(m[1])
				break
			}
		}
	}
	for _, line := range strings.Split(mountinfo, "\n") {
		// id parent major:minor root mountpoint options ...
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		switch f[4] {
		case "/etc/hostname", "/etc/hosts", "/etc/resolv.conf":
			if m := containerFile.FindStringSubmatch(f[3]); m != nil {
				add(m[1])
			}
		}
	}
	return ids
}

// ErrNotMounted means a path of the engine's host is not mounted into the
// container lifeboat runs in: what lifeboat would read or write there is
// the container's own file system, not the host's.
var ErrNotMounted = errors.New("is not mounted into lifeboat's container")

// CheckHostPath fails with ErrNotMounted when lifeboat runs in a
// container of this engine (see Self) and path, a path on the engine's
// host, lies on the container's own root file system rather than in a
// mount from the host. On the host, or beside a dockerd in the same
// container, paths are the engine's own and it always passes.
func (c *Client) CheckHostPath(ctx context.Context, path string) error {
	_, ok, err := c.Self(ctx)
	if err != nil || !ok {
		return err
	}
	info, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return fmt.Errorf("read mounts: %w", err)
	}
	if MountPointOf(string(info), path) == "/" {
		return fmt.Errorf("%s %w: mount it at the same path (-v %s:%s)", path, ErrNotMounted, path, path)
	}
	return nil
}

// MountPointOf is the mount point in mountinfo contents that holds the
// absolute path: the longest one that is path or one of its parents.
func MountPointOf(mountinfo, path string) string {
	path = filepath.Clean(path)
	best := ""
	for _, line := range strings.Split(mountinfo, "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		mp := unescapeMountinfo(f[4])
		if (mp == "/" || mp == path || strings.HasPrefix(path, mp+"/")) && len(mp) > len(best) {
			best = mp
		}
	}
	return best
}

// unescapeMountinfo undoes the kernel's octal escapes (\040 for a space,
// \011, \012, \134) in a mountinfo path.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

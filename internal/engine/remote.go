package engine

import (
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/docker/cli/cli/connhelper"
	"github.com/moby/moby/client"
)

// EnvSSHConfig names an ssh_config file for ssh:// engines, passed to ssh
// as -F: a daemon's own keys, known hosts and ports, apart from the
// user's ~/.ssh (which ssh finds through the password database, not $HOME).
const EnvSSHConfig = "LIFEBOAT_SSH_CONFIG"

// sshOpts are the client options that reach an ssh:// engine the Docker
// CLI's way: the system ssh runs `docker system dial-stdio` on the remote
// host, so ~/.ssh/config, keys, agents and known_hosts work as users
// expect, and no key passes through lifeboat (or its command line). It
// uses docker/cli's own connection helper rather than a copy: the quoting
// of the remote command and ssh's flags are the CLI's, maintained there,
// and ssh is killed with lifeboat (PDEATHSIG). nil for other schemes.
func sshOpts(host, sshConfig string) ([]client.Opt, error) {
	if !strings.HasPrefix(host, "ssh://") {
		return nil, nil
	}
	u, err := url.Parse(host)
	if err != nil {
		return nil, fmt.Errorf("engine address %q: %w", redactHost(host), err)
	}
	if _, set := u.User.Password(); set {
		return nil, fmt.Errorf("engine address %s holds a password: use a key (ssh-agent or ~/.ssh/config) instead", redactHost(host))
	}
	var flags []string
	if sshConfig != "" {
		flags = append(flags, "-F", sshConfig)
	}
	// BatchMode: a daemon has no terminal to answer a password or host-key
	// prompt on; ssh fails at once and says why instead of hanging.
	flags = append(flags, "-o", "BatchMode=yes")
	h, err := connhelper.GetConnectionHelperWithSSHOpts(host, flags)
	if err != nil {
		return nil, fmt.Errorf("engine address %s: %w", redactHost(host), err)
	}
	return []client.Opt{client.WithHost(h.Host), client.WithDialContext(h.Dialer)}, nil
}

// redactHost drops a password from an address before it is shown.
func redactHost(host string) string {
	u, err := url.Parse(host)
	if err != nil || u.User == nil {
		return host
	}
	if _, set := u.User.Password(); set {
		u.User = url.UserPassword(u.User.Username(), "redacted")
	}
	return u.String()
}

// envHost is the engine address the environment names (DOCKER_HOST).
func envHost() string { return os.Getenv(client.EnvOverrideHost) }

// identity asks the engine not to compress its responses. Go's HTTP
// client asks for gzip by default, and the engine then gzips archive
// streams as it sends them: on one core of the engine's host, the
// slowest step of a remote backup, and the data is compressed again
// (zstd) for the repository anyway.
func identity() client.Opt {
	return client.WithHTTPHeaders(map[string]string{"Accept-Encoding": "identity"})
}

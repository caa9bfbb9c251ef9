package testutil

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	mrand "math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Remote is a private daemon that the test reaches as another host
// would: over a veth pair into its network namespace (198.18.0.0/15, the
// benchmarking range, never routed), by TCP with TLS and, once StartSSH
// ran, by ssh. Its unix socket is there too, for the test's own checks.
type Remote struct {
	*Daemon
	Addr    string // the daemon's address in its namespace
	TLSHost string // tcp://Addr:2376
	CertDir string // ca.pem, cert.pem, key.pem of a client
}

// NewRemoteDaemon starts a daemon listening on TCP with --tlsverify,
// with a CA, server and client certificates made here; extra are more
// dockerd flags.
func NewRemoteDaemon(t testing.TB, extra ...string) *Remote {
	t.Helper()
	ns := prefix + "r" + randomID()
	hostAddr, addr := vethAddrs()
	if err := netnsWithVeth(ns, hostAddr, addr); err != nil {
		t.Fatalf("remote daemon's network: %v", err)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	dir := t.TempDir()
	server, client := filepath.Join(dir, "server"), filepath.Join(dir, "client")
	if err := makeCerts(server, client, addr); err != nil {
		t.Fatalf("certificates: %v", err)
	}
	d, err := newDaemonOpts(ns, "", append([]string{"-H", "tcp://" + addr + ":2376", "--tlsverify",
		"--tlscacert", filepath.Join(server, "ca.pem"), "--tlscert", filepath.Join(server, "cert.pem"), "--tlskey", filepath.Join(server, "key.pem")}, extra...)...)
	if err != nil {
		t.Fatalf("start the remote daemon: %v", err)
	}
	t.Cleanup(func() { d.Stop() })
	return &Remote{Daemon: d, Addr: addr, TLSHost: "tcp://" + addr + ":2376", CertDir: client}
}

// vethAddrs picks a /30 of 198.18.0.0/15 for the host and namespace ends.
func vethAddrs() (host, ns string) {
	a, b := mrand.IntN(256), mrand.IntN(64)*4
	return fmt.Sprintf("198.18.%d.%d", a, b+1), fmt.Sprintf("198.18.%d.%d", a, b+2)
}

func netnsWithVeth(ns, hostAddr, addr string) error {
	id := strings.TrimPrefix(ns, prefix+"r")
	hostIf, nsIf := "lbv"+id, "lbp"+id
	for _, args := range [][]string{
		{"netns", "add", ns},
		{"-n", ns, "link", "set", "lo", "up"},
		{"link", "add", hostIf, "type", "veth", "peer", "name", nsIf, "netns", ns},
		{"addr", "add", hostAddr + "/30", "dev", hostIf},
		{"link", "set", hostIf, "up"},
		{"-n", ns, "addr", "add", addr + "/30", "dev", nsIf},
		{"-n", ns, "link", "set", nsIf, "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			exec.Command("ip", "netns", "del", ns).Run()
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	return nil
}

// makeCerts writes a CA, a server certificate for addr and a client
// certificate, each directory with ca.pem, cert.pem and key.pem as
// DOCKER_CERT_PATH and dockerd's --tls* flags expect.
func makeCerts(serverDir, clientDir, addr string) error {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "lifeboat test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	caCert, _ := x509.ParseCertificate(caDER)
	leaf := func(dir string, serial int64, tmpl x509.Certificate) error {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return err
		}
		tmpl.SerialNumber, tmpl.NotBefore, tmpl.NotAfter = big.NewInt(serial), now.Add(-time.Hour), now.Add(24*time.Hour)
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		der, err := x509.CreateCertificate(rand.Reader, &tmpl, caCert, &key.PublicKey, caKey)
		if err != nil {
			return err
		}
		kb, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
		files := map[string][]byte{
			"ca.pem":   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
			"cert.pem": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
			"key.pem":  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}),
		}
		for name, b := range files {
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
				return err
			}
		}
		return nil
	}
	if err := leaf(serverDir, 2, x509.Certificate{Subject: pkix.Name{CommonName: addr},
		IPAddresses: []net.IP{net.ParseIP(addr), net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		return err
	}
	return leaf(clientDir, 3, x509.Certificate{Subject: pkix.Name{CommonName: "lifeboat"}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
}

// SSH is Debian's sshd running in a remote daemon's namespace.
type SSH struct {
	Host   string // ssh://root@Addr:2222/…/docker.sock, a DOCKER_HOST
	Config string // an ssh_config with the test's key and known hosts: LIFEBOAT_SSH_CONFIG
}

// StartSSH runs sshd -D in the daemon's namespace with host and user keys
// made here, until the test ends. Its user reaches the daemon's socket
// by `docker system dial-stdio`, the Docker CLI's remote convention.
func (r *Remote) StartSSH(t testing.TB) SSH {
	t.Helper()
	if _, err := exec.LookPath("sshd"); err != nil {
		if _, err := os.Stat("/usr/sbin/sshd"); err != nil {
			t.Fatalf("sshd not found: run scripts/install-deps (Debian's openssh-server)")
		}
	}
	dir := t.TempDir()
	p := func(n string) string { return filepath.Join(dir, n) }
	for _, k := range []string{"host_ed25519", "id_ed25519"} {
		if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "lifeboat-test", "-f", p(k)).CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen: %v: %s", err, out)
		}
	}
	userPub, _ := os.ReadFile(p("id_ed25519.pub"))
	hostPub, _ := os.ReadFile(p("host_ed25519.pub"))
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(p("authorized_keys"), userPub, 0o600))
	must(os.WriteFile(p("known_hosts"), []byte(fmt.Sprintf("[%s]:2222 %s", r.Addr, hostPub)), 0o600))
	must(os.WriteFile(p("sshd_config"), []byte(strings.Join([]string{
		"Port 2222", "ListenAddress " + r.Addr, "HostKey " + p("host_ed25519"), "PidFile " + p("sshd.pid"),
		"AuthorizedKeysFile " + p("authorized_keys"), "PermitRootLogin prohibit-password", "PasswordAuthentication no",
		"KbdInteractiveAuthentication no", "UsePAM no", "StrictModes no", "X11Forwarding no", "PrintMotd no", "",
	}, "\n")), 0o600))
	must(os.WriteFile(p("ssh_config"), []byte(strings.Join([]string{
		"Host *", "  IdentityFile " + p("id_ed25519"), "  IdentitiesOnly yes", "  UserKnownHostsFile " + p("known_hosts"),
		"  GlobalKnownHostsFile /dev/null", "  StrictHostKeyChecking yes", "  LogLevel ERROR", "",
	}, "\n")), 0o600))
	must(os.MkdirAll("/run/sshd", 0o755)) // sshd's privilege separation directory
	logf, err := os.Create(p("sshd.log"))
	must(err)
	cmd := exec.Command("nsenter", "--net=/run/netns/"+r.NetNS, "/usr/sbin/sshd", "-D", "-e", "-f", p("sshd_config"))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	must(cmd.Start())
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait(); logf.Close() })
	for i := 0; i < 100; i++ {
		if c, err := net.DialTimeout("tcp", r.Addr+":2222", time.Second); err == nil {
			c.Close()
			sock := strings.TrimPrefix(r.Host, "unix://")
			return SSH{Host: "ssh://root@" + r.Addr + ":2222" + sock, Config: p("ssh_config")}
		}
		time.Sleep(100 * time.Millisecond)
	}
	b, _ := os.ReadFile(p("sshd.log"))
	t.Fatalf("sshd did not start:\n%s", b)
	return SSH{}
}

package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// stockKopia runs the kopia CLI that scripts/build-kopia built from
// kopia's own module source, with a config and cache of its own.
type stockKopia struct {
	t        *testing.T
	bin, cfg string
	env      []string
}

func newStockKopia(t *testing.T, env ...string) stockKopia {
	t.Helper()
	var stderr bytes.Buffer
	check := exec.Command(filepath.Join(repoRoot(), "scripts", "build-kopia"), "--check")
	check.Stderr = &stderr
	out, err := check.Output()
	if err != nil {
		t.Fatalf("the stock kopia CLI is not built: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	dir := t.TempDir()
	// Never ask GitHub for updates: tests reach 127.0.0.0/8 only.
	env = append(env, "KOPIA_PASSWORD="+offsitePassword, "KOPIA_CHECK_FOR_UPDATES=false",
		"KOPIA_CACHE_DIRECTORY="+filepath.Join(dir, "cache"), "KOPIA_LOG_DIR="+filepath.Join(dir, "logs"))
	return stockKopia{t: t, bin: strings.TrimSpace(string(out)), cfg: filepath.Join(dir, "kopia.config"), env: env}
}

func (k stockKopia) run(args ...string) string {
	k.t.Helper()
	cmd := exec.Command(k.bin, append(args, "--config-file", k.cfg)...)
	cmd.Env = append(os.Environ(), k.env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		k.t.Fatalf("kopia %s: %v\n%s%s", strings.Join(args, " "), err, out.String(), errb.String())
	}
	return out.String()
}

// sameFiles compares two trees file by file, byte for byte, and counts
// the files and bytes compared.
func sameFiles(t *testing.T, want, got string) (files int, n int64) {
	t.Helper()
	err := filepath.WalkDir(want, func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel, _ := filepath.Rel(want, p)
		a, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		b, err := os.ReadFile(filepath.Join(got, rel))
		if err != nil {
			t.Errorf("restored by kopia: %v", err)
			return nil
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs after kopia's restore (%d bytes, want %d)", rel, len(b), len(a))
		}
		files++
		n += int64(len(a))
		return nil
	})
	if err != nil || files == 0 {
		t.Fatalf("compare %s with %s: %v, %d files", want, got, err, files)
	}
	return files, n
}

// TestStockKopiaReadsRepositories: no lock-in. The stock kopia CLI, at the
// version lifeboat embeds, opens the local repository and its locked S3
// copy read-only, lists every restore point and restores a volume's files,
// equal byte for byte to the originals, among them a 6 MiB log whose
// contents Lifeboat wrote as several zstd frames each.
func TestStockKopiaReadsRepositories(t *testing.T) {
	o := newLockedOffsite(t)
	mp := o.volume("ol_data")
	os.MkdirAll(filepath.Join(mp, "sub", "deeper"), 0o755)
	os.WriteFile(filepath.Join(mp, "sub", "deeper", "note.txt"), []byte("kept by lifeboat, read by kopia\n"), 0o644)
	randomFile(t, filepath.Join(mp, "sub", "blob"), 300<<10)
	// Contents of over 1 MiB that compress: written as several zstd
	// frames where the C encoder is built in (zstd_cgo.go).
	var log bytes.Buffer
	for i := 0; log.Len() < 6<<20; i++ {
		fmt.Fprintf(&log, "2026-12-03T17:%02d:%02d line %d of a log that compresses\n", i/60%60, i%60, i)
	}
	os.WriteFile(filepath.Join(mp, "sub", "app.log"), log.Bytes(), 0o644)
	o.backup("project/ol")
	const to = "s3://locked/host1"
	o.replicateLocked(to)
	points := o.points(o.repo, "project/ol")
	if got := formatKeyAlgo(t, o.repo); got != "pbkdf2-sha256-600000" {
		t.Fatalf("the harness's init made a repository whose key derivation is %q, want pbkdf2", got)
	}
	before := treeNames(t, o.repo)
	endpoint := strings.TrimPrefix(o.m.Endpoint, "http://")
	for _, c := range []struct {
		name    string
		kopia   stockKopia
		connect []string
	}{
		{"filesystem", newStockKopia(t), []string{"filesystem", "--path", o.repo}},
		// The keys reach kopia through the environment, not its arguments.
		{"s3", newStockKopia(t, "AWS_ACCESS_KEY_ID="+o.m.AccessKey, "AWS_SECRET_ACCESS_KEY="+o.m.SecretKey),
			[]string{"s3", "--bucket", "locked", "--prefix", "host1/", "--endpoint", endpoint, "--disable-tls"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			k := c.kopia
			k.t = t
			k.run(append(append([]string{"repository", "connect"}, c.connect...), "--readonly", "--no-check-for-updates")...)
			var snaps []struct {
				ID     string `json:"id"`
				Source struct {
					Path string `json:"path"`
				} `json:"source"`
			}
			if err := json.Unmarshal([]byte(k.run("snapshot", "list", "--all", "--json")), &snaps); err != nil {
				t.Fatal(err)
			}
			human := k.run("snapshot", "list", "--all")
			if len(snaps) != points || !strings.Contains(human, "/project/ol") {
				t.Fatalf("kopia lists %d snapshots, lifeboat %d points:\n%s", len(snaps), points, human)
			}
			newest := snaps[len(snaps)-1]
			dir := filepath.Join(t.TempDir(), "restored")
			k.run("restore", newest.ID+"/volumes/ol_data", dir)
			files, n := sameFiles(t, mp, dir)
			t.Logf("kopia %s: %d snapshots listed (source %s); restored %s/volumes/ol_data: %d files, %d bytes, equal byte for byte",
				c.name, len(snaps), newest.Source.Path, newest.ID, files, n)
		})
	}
	// Connected --readonly, kopia wrote nothing into the repository.
	if after := treeNames(t, o.repo); after != before {
		t.Fatalf("the stock kopia CLI changed the repository:\nbefore %s\nafter  %s", before, after)
	}
}

// treeNames lists the files under dir, with their sizes.
func treeNames(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fmt.Fprintf(&b, "%s:%d ", rel, info.Size())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// formatKeyAlgo is the key derivation a repository's format blob names.
func formatKeyAlgo(t *testing.T, repo string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repo, "kopia.repository.f"))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		KeyAlgo string `json:"keyAlgo"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	return f.KeyAlgo
}

// TestInitKeyDerivation: the release build's init derives the key with
// scrypt unless told pbkdf2 (which the other tests use, and the stock
// kopia CLI reads in TestStockKopiaReadsRepositories); an unknown name is
// one line and no repository.
func TestInitKeyDerivation(t *testing.T) {
	e := newEnv(t)
	e.kdf = ""
	e.ok("init")
	if got := formatKeyAlgo(t, e.repo); got != "scrypt-65536-8-1" {
		t.Fatalf("init without --key-derivation: the format blob names %q, want scrypt-65536-8-1", got)
	}
	e.ok("snapshots")
	other := filepath.Join(t.TempDir(), "repo2")
	r := e.run([]string{"LIFEBOAT_REPOSITORY=" + other}, "init", "--key-derivation", "argon2")
	if r.code != 1 || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 || !strings.Contains(r.stderr, "use scrypt (the default) or pbkdf2") {
		t.Fatalf("init --key-derivation argon2: exit %d, stderr %q", r.code, r.stderr)
	}
	if _, err := os.Stat(other); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a refused init left %s: %v", other, err)
	}
	r = e.run([]string{"LIFEBOAT_REPOSITORY=" + other}, "init", "--key-derivation", "pbkdf2")
	if r.code != 0 || formatKeyAlgo(t, other) != "pbkdf2-sha256-600000" {
		t.Fatalf("init --key-derivation pbkdf2: exit %d, %s", r.code, r.stderr)
	}
}

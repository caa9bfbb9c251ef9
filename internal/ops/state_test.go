package ops

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lifeboat-backup/lifeboat/internal/repository"
	"github.com/lifeboat-backup/lifeboat/internal/secret"
)

// newTestStateEnv is an Env over a new filesystem repository.
func newTestStateEnv(t *testing.T) (*Env, *repository.Repository) {
	t.Helper()
	ctx := t.Context()
	dir := t.TempDir()
	o := repository.Options{Location: filepath.Join(dir, "repo"), StateDir: filepath.Join(dir, "cache"), Hostname: "h1",
		Password: repository.PasswordSource{Value: secret.New("state test password")}}
	if _, err := repository.Init(ctx, o); err != nil {
		t.Fatal(err)
	}
	repo, err := repository.Open(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { repo.Close(context.WithoutCancel(ctx)) })
	env := &Env{StateDir: filepath.Join(dir, "state"), Version: "test",
		Repository: func(context.Context, bool) (*repository.Repository, error) { return repo, nil }}
	return env, repo
}

// TestStateRoundTrip: the state point holds the config without its
// secrets and the job history's whole lines, never the token or password
// files beside them; restoring it writes both into a fresh state
// directory, again is a no-op, and over other files is refused.
func TestStateRoundTrip(t *testing.T) {
	ctx := t.Context()
	env, repo := newTestStateEnv(t)
	if err := os.MkdirAll(env.StateDir, 0o700); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "lifeboat.yaml")
	os.WriteFile(cfg, []byte("repository: /r\nwebhook:\n  secret: hooksecret\n"), 0o600)
	os.WriteFile(filepath.Join(env.StateDir, "jobs.jsonl"), []byte("{\"id\":\"a\"}\n{\"id\":\"b\"}\n{\"id\":\"tor"), 0o600)
	os.WriteFile(filepath.Join(env.StateDir, "api.token"), []byte("tokensecret0123456789\n"), 0o600)
	res, err := BackupState(ctx, env, StateBackupRequest{ConfigPath: cfg}, Observer{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Unit != StateUnit || res.Kind != StateKind || res.Jobs != 2 || !res.HasConfig || strings.Join(res.SecretsLeftOut, ",") != "webhook.secret" {
		t.Fatalf("state point %+v", res)
	}
	for _, name := range []string{"state/api.token", "api.token"} {
		if ok, _ := repo.Has(ctx, res.ID, name); ok {
			t.Errorf("the point holds %s", name)
		}
	}
	fresh := filepath.Join(t.TempDir(), "state")
	got, err := restoreState(ctx, repo, res.Point, fresh)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(fresh, RecoveredConfig))
	if got.Config == "" || strings.Contains(string(b), "hooksecret") || !strings.Contains(string(b), "repository: /r") {
		t.Errorf("recovered config %q (%+v)", b, got)
	}
	if b, _ := os.ReadFile(filepath.Join(fresh, "jobs.jsonl")); string(b) != "{\"id\":\"a\"}\n{\"id\":\"b\"}\n" {
		t.Errorf("recovered jobs %q", b)
	}
	if got.ConfigPath != cfg {
		t.Errorf("config was at %q, want %q", got.ConfigPath, cfg)
	}
	if _, err := restoreState(ctx, repo, res.Point, fresh); err != nil {
		t.Errorf("recovering the same state again: %v", err)
	}
	os.WriteFile(filepath.Join(fresh, "jobs.jsonl"), []byte("{\"id\":\"other\"}\n"), 0o600)
	if _, err := restoreState(ctx, repo, res.Point, fresh); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "--no-state") {
		t.Errorf("over another host's state: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(fresh, "jobs.jsonl")); string(b) != "{\"id\":\"other\"}\n" {
		t.Errorf("the refused restore wrote: %q", b)
	}
}

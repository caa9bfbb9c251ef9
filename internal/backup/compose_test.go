package backup

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/lifeboat-backup/lifeboat/internal/engine"
	"github.com/lifeboat-backup/lifeboat/internal/layout"
)

func TestComposeNames(t *testing.T) {
	ct := func(name, wd, files string) engine.Container {
		return engine.Container{Name: name, Labels: map[string]string{labelWorkingDir: wd, labelConfigFiles: files}}
	}
	for _, tc := range []struct {
		name  string
		cs    []engine.Container
		files []string
		wd    string
		nk    int
	}{
		{"v2 absolute", []engine.Container{ct("p-db-1", "/srv/p", "/srv/p/compose.yaml,/srv/p/override.yaml"), ct("p-app-1", "/srv/p", "/srv/p/compose.yaml,/srv/p/override.yaml")},
			[]string{"/srv/p/compose.yaml", "/srv/p/override.yaml", "/srv/p/.env"}, "/srv/p", 0},
		{"v1 relative", []engine.Container{ct("p_db_1", "/srv/p", "docker-compose.yml")},
			[]string{"/srv/p/docker-compose.yml", "/srv/p/.env"}, "/srv/p", 0},
		{"outside the working dir", []engine.Container{ct("p-db-1", "/srv/p", "/etc/p/compose.yaml")},
			[]string{"/etc/p/compose.yaml", "/srv/p/.env"}, "/srv/p", 0},
		{"relative without working dir", []engine.Container{ct("p_db_1", "", "docker-compose.yml")}, nil, "", 1},
		{"relative working dir", []engine.Container{ct("p_db_1", "srv", "/x/c.yml")}, []string{"/x/c.yml"}, "", 1},
		{"unlabelled", []engine.Container{{Name: "x"}}, nil, "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, files := composeNames(tc.cs)
			if diff := cmp.Diff(tc.files, files); diff != "" {
				t.Errorf("files (-want +got):\n%s", diff)
			}
			if c.WorkingDir != tc.wd || len(c.NotKept) != tc.nk {
				t.Errorf("working dir %q, not kept %q; want %q and %d", c.WorkingDir, c.NotKept, tc.wd, tc.nk)
			}
		})
	}
}

func TestComposeSectionRefusesWhatIsNotAFile(t *testing.T) {
	wd := t.TempDir()
	if err := os.WriteFile(filepath.Join(wd, "compose.yaml"), []byte("services: {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A container that mounts the working directory could plant these.
	if err := os.Symlink("/etc/shadow", filepath.Join(wd, ".env")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(wd, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc", filepath.Join(wd, "link")); err != nil {
		t.Fatal(err)
	}
	cs := []engine.Container{{Name: "p-a-1", Labels: map[string]string{labelWorkingDir: wd,
		labelConfigFiles: wd + "/compose.yaml," + wd + "/link/passwd," + wd + "/missing.yaml"}}}
	c, entries := composeSection(cs, time.Now())
	if len(entries) != 1 || len(c.Files) != 1 || c.Files[0].Source != wd+"/compose.yaml" || c.Files[0].Path != layout.ComposeFilePath(wd+"/compose.yaml") {
		t.Fatalf("files %+v, want only compose.yaml", c.Files)
	}
	if len(c.NotKept) != 3 { // link/passwd, missing.yaml, .env as a symlink
		t.Fatalf("not kept %q, want 3 reasons", c.NotKept)
	}
}

func TestEnvFiles(t *testing.T) {
	doc := `services:
  a: {image: x, env_file: a.env}
  b:
    image: x
    env_file: [b.env, /etc/shop/b.env, "${DIR}/c.env"]
  c:
    image: x
    env_file:
      - path: ./c.env
        required: false
      - a.env
  d: {image: x}
`
	got := envFiles([]byte(doc), "/srv/shop")
	want := []string{"/etc/shop/b.env", "/srv/shop/a.env", "/srv/shop/b.env", "/srv/shop/c.env"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("env files (-want +got):\n%s", diff)
	}
	if got := envFiles([]byte("{not yaml"), "/srv/shop"); got != nil {
		t.Errorf("not YAML: %v", got)
	}
}

func TestComposeSectionReadsEnvFiles(t *testing.T) {
	wd := t.TempDir()
	for name, body := range map[string]string{
		"compose.yaml": "services:\n  a: {image: x, env_file: [conf/a.env, missing.env]}\n",
		"conf/a.env":   "PASSWORD=x\n",
	} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(wd, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(wd, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cs := []engine.Container{{Name: "p-a-1", Labels: map[string]string{labelWorkingDir: wd, labelConfigFiles: wd + "/compose.yaml"}}}
	c, entries := composeSection(cs, time.Now())
	var got []string
	for _, f := range c.Files {
		got = append(got, f.Source)
	}
	if diff := cmp.Diff([]string{wd + "/compose.yaml", wd + "/conf/a.env"}, got); diff != "" || len(entries) != 2 || len(c.NotKept) != 0 {
		t.Errorf("files (-want +got):\n%s\nnot kept %q", diff, c.NotKept)
	}
}

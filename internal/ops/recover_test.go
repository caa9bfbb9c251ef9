package ops

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/lifeboat-backup/lifeboat/internal/repository"
)

func unitOf(name string, provides, uses []string) recoverUnit {
	u := recoverUnit{point: repository.Point{Unit: name}, provides: provides, uses: uses}
	if v, ok := strings.CutPrefix(name, "volume/"); ok {
		u.volume = v
	}
	return u
}

func TestOrderUnits(t *testing.T) {
	cases := []struct {
		name        string
		units       []recoverUnit
		want        []string
		wantSkipped map[string]string
	}{{
		name: "volumes first, then by name",
		units: []recoverUnit{
			unitOf("project/b", []string{"volume:b_data"}, []string{"volume:b_data"}),
			unitOf("volume/loose", []string{"volume:loose"}, nil),
			unitOf("container/a", nil, nil),
		},
		want: []string{"volume/loose", "container/a", "project/b"},
	}, {
		name: "a user of another unit's network and volume comes after it",
		units: []recoverUnit{
			unitOf("container/app", []string{"container:app"}, []string{"network:zshop_backend", "volume:shared"}),
			unitOf("project/zshop", []string{"network:zshop_backend", "container:zshop_db_1"}, []string{"network:zshop_backend"}),
			unitOf("volume/shared", []string{"volume:shared"}, nil),
		},
		want: []string{"volume/shared", "project/zshop", "container/app"},
	}, {
		name: "network_mode container: and chains",
		units: []recoverUnit{
			unitOf("container/a", []string{"container:a"}, []string{"container:b"}),
			unitOf("container/b", []string{"container:b"}, []string{"container:c"}),
			unitOf("container/c", []string{"container:c"}, nil),
		},
		want: []string{"container/c", "container/b", "container/a"},
	}, {
		name: "a volume another unit holds is restored with it",
		units: []recoverUnit{
			unitOf("volume/pgdata", []string{"volume:pgdata"}, nil),
			unitOf("container/pg", []string{"volume:pgdata", "container:pg"}, []string{"volume:pgdata"}),
		},
		want:        []string{"container/pg"},
		wantSkipped: map[string]string{"volume/pgdata": "restored with container/pg"},
	}, {
		name: "a cycle keeps name order after the rest",
		units: []recoverUnit{
			unitOf("container/y", []string{"container:y"}, []string{"container:x"}),
			unitOf("container/x", []string{"container:x"}, []string{"container:y"}),
			unitOf("container/free", nil, nil),
		},
		want: []string{"container/free", "container/x", "container/y"},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, skipped := orderUnits(tc.units)
			var names []string
			for _, u := range got {
				names = append(names, u.point.Unit)
			}
			if diff := cmp.Diff(tc.want, names); diff != "" {
				t.Errorf("order (-want +got):\n%s", diff)
			}
			if tc.wantSkipped == nil {
				tc.wantSkipped = map[string]string{}
			}
			if diff := cmp.Diff(tc.wantSkipped, skipped); diff != "" {
				t.Errorf("skipped (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSpecUses(t *testing.T) {
	spec := `{"name":"web","networks":{"shop_backend":{}},"host_config":{"Binds":["shop_data:/data:ro","/srv/site:/srv"],
		"Mounts":[{"Type":"volume","Source":"cache"},{"Type":"bind","Source":"/etc/x"}],"NetworkMode":"container:vpn","VolumesFrom":["seed:ro"],"Links":["/db:/web/db"]}}`
	got, err := specUses([]byte(spec))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"network:shop_backend", "volume:shop_data", "volume:cache", "container:vpn", "container:seed", "container:db"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("uses (-want +got):\n%s", diff)
	}
	got, _ = specUses([]byte(`{"host_config":{"NetworkMode":"bridge"}}`))
	if len(got) != 0 {
		t.Errorf("the default bridge is no unit's: %v", got)
	}
}

func TestPickHost(t *testing.T) {
	one := []RecoverHost{{Host: "a"}}
	two := []RecoverHost{{Host: "a"}, {Host: "b"}}
	if h, err := pickHost(one, "", "s3://x"); err != nil || h.Host != "a" {
		t.Errorf("the only host: %v %v", h, err)
	}
	if h, err := pickHost(two, "b", "s3://x"); err != nil || h.Host != "b" {
		t.Errorf("a named host: %v %v", h, err)
	}
	if _, err := pickHost(two, "", "s3://x"); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "a, b") || !strings.Contains(err.Error(), "--from-host") {
		t.Errorf("several hosts, none named: %v", err)
	}
	if _, err := pickHost(two, "c", "s3://x"); !errors.Is(err, ErrInvalid) {
		t.Errorf("an unknown host: %v", err)
	}
	if _, err := pickHost(nil, "", "s3://x"); !errors.Is(err, repository.ErrNoSuchPoint) {
		t.Errorf("an empty copy: %v", err)
	}
}

func TestNewestByHostAndChoose(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	points := []repository.Point{
		{ID: "1", Unit: "project/shop", Host: "h", Time: t0},
		{ID: "2", Unit: "project/shop", Host: "h", Time: t0.Add(time.Hour)},
		{ID: "3", Unit: StateUnit, Host: "h", Time: t0},
		{ID: "4", Unit: "volume/v", Host: "h", Time: t0},
		{ID: "5", Unit: "project/shop", Host: "other", Time: t0.Add(2 * time.Hour)},
	}
	hosts := newestByHost(points)
	if len(hosts) != 2 || hosts[0].Host != "h" || len(hosts[0].Points) != 3 {
		t.Fatalf("hosts %+v", hosts)
	}
	units, state, err := chooseUnits(hosts[0], nil)
	if err != nil || state == nil || state.ID != "3" || len(units) != 2 || units[0].ID != "2" {
		t.Fatalf("every unit: %+v %+v %v", units, state, err)
	}
	units, _, err = chooseUnits(hosts[0], []string{"volume/v"})
	if err != nil || len(units) != 1 || units[0].ID != "4" {
		t.Fatalf("a named unit: %+v %v", units, err)
	}
	if _, _, err := chooseUnits(hosts[0], []string{"project/none"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("an unknown unit: %v", err)
	}
}

func TestRecoverRequestValidate(t *testing.T) {
	for _, r := range []RecoverRequest{
		{},
		{From: "s3://b/p", List: true, Units: []string{"project/a"}},
		{From: "s3://b/p", Units: []string{"shop"}},
		{From: "s3://b/p", Units: []string{"project/a@latest"}},
		{From: "s3://b/p", Units: []string{StateUnit}},
		{From: "s3://b/p", FromHost: "a/b"},
	} {
		if err := r.Validate(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%+v: %v, want ErrInvalid", r, err)
		}
	}
	r := RecoverRequest{From: "s3://b/p", Units: []string{"project/a", "volume/v"}}
	if err := r.Validate(); err != nil {
		t.Errorf("a good request: %v", err)
	}
}

func TestRedactConfig(t *testing.T) {
	in := `# the appliance
repository: /var/lib/lifeboat/repository
offsite:
  to: s3://backups/host1
  access_key_id: AKIA123
  secret_access_key: verysecret
webhook:
  url: https://hooks.example/x
  secret: hooksecret
notify:
  targets:
    - name: ops
      url: ntfy://:tok3n@ntfy.example/ops
    - name: mail
      url: smtp://u:pw@mail.example/?to=a@b
pings:
  url: ""
api:
  tokens:
    - role: viewer
      sha256: 4c5dc9b7708905f77f5e5d16316b5dfb425e68cb326dcd55a860e90a7707031e
`
	out, left, err := RedactConfig([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"AKIA123", "verysecret", "hooksecret", "tok3n", "pw@"} {
		if strings.Contains(string(out), s) {
			t.Errorf("secret %q kept:\n%s", s, out)
		}
	}
	for _, s := range []string{"# the appliance", "s3://backups/host1", "https://hooks.example/x", "name: ops", "4c5dc9b7708905f77f5e5d16316b5dfb425e68cb326dcd55a860e90a7707031e"} {
		if !strings.Contains(string(out), s) {
			t.Errorf("%q lost:\n%s", s, out)
		}
	}
	want := []string{"offsite.access_key_id", "offsite.secret_access_key", "webhook.secret", "notify.targets[0].url", "notify.targets[1].url"}
	if diff := cmp.Diff(want, left); diff != "" {
		t.Errorf("left out (-want +got):\n%s", diff)
	}
	plain := "repository: /r\n"
	if out, left, err := RedactConfig([]byte(plain)); err != nil || string(out) != plain || left != nil {
		t.Errorf("a config without secrets changed: %q %v %v", out, left, err)
	}
	if _, _, err := RedactConfig([]byte("a: [")); err == nil {
		t.Error("a broken config passed")
	}
}

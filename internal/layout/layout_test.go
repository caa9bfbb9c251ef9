package layout

import (
	"strings"
	"testing"
)

func TestEscapePathRoundTrip(t *testing.T) {
	seen := map[string]string{}
	for _, p := range []string{"/", "/srv", "/srv/app data", "/srv/app%20data", "/a/b", "/a%2Fb", "/a_b", "/ä/日本", "/x/.hidden", "/with:colon", "/q?x#y"} {
		name := EscapePath(p)
		if name == "" || name == "." || name == ".." || strings.Contains(name, "/") {
			t.Errorf("EscapePath(%q) = %q: not one directory name", p, name)
		}
		if other, ok := seen[name]; ok {
			t.Errorf("EscapePath(%q) = EscapePath(%q) = %q", p, other, name)
		}
		seen[name] = p
		back, err := UnescapePath(name)
		if err != nil || back != p {
			t.Errorf("UnescapePath(EscapePath(%q)) = %q, %v", p, back, err)
		}
	}
	if _, err := UnescapePath("%zz"); err == nil {
		t.Error("UnescapePath accepted a broken escape")
	}
}

func TestManifestRoundTripAndVersion(t *testing.T) {
	m := Manifest{FormatVersion: FormatVersion, Unit: "project/shop", Volumes: []Volume{{}, {}}}
	m.Volumes[0].Name, m.Volumes[1].Name = "a", "b"
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseManifest(b)
	if err != nil || got.Unit != "project/shop" || len(got.Volumes) != 2 {
		t.Fatalf("ParseManifest: %+v %v", got, err)
	}
	if v, err := got.FindVolume("b"); err != nil || v.Name != "b" {
		t.Errorf("FindVolume(b) = %v, %v", v, err)
	}
	if _, err := got.FindVolume(""); err == nil || !strings.Contains(err.Error(), "--volume") {
		t.Errorf("FindVolume with two volumes and no name: %v", err)
	}
	if _, err := got.FindVolume("c"); err == nil {
		t.Error("FindVolume found a volume the point lacks")
	}
	if _, err := ParseManifest([]byte(`{"format_version": 999}`)); err == nil || !strings.Contains(err.Error(), "upgrade lifeboat") {
		t.Errorf("a newer format: %v", err)
	}
	if _, err := ParseManifest([]byte(`{`)); err == nil {
		t.Error("ParseManifest accepted broken JSON")
	}
}

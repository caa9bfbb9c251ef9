package policy

import (
	"slices"
	"strings"
	"testing"
)

func TestNotifyLabel(t *testing.T) {
	p, err := Resolve([]Labelled{{Name: "web", Labels: map[string]string{LabelNotify: " ops, mail ,"}}}, DefaultDefaults)
	if err != nil || !slices.Equal(p.Notify, []string{"ops", "mail"}) || p.Sources[LabelNotify] != "label on web" {
		t.Fatalf("%+v %v", p.Notify, err)
	}
	p, err = Resolve([]Labelled{{Name: "web", Labels: map[string]string{LabelNotify: "none"}}}, DefaultDefaults)
	if err != nil || !slices.Equal(p.Notify, []string{"none"}) {
		t.Fatalf("%+v %v", p.Notify, err)
	}
	p, err = Resolve([]Labelled{{Name: "web"}}, DefaultDefaults)
	if err != nil || p.Notify != nil {
		t.Fatalf("no label: %+v %v", p.Notify, err)
	}
	for _, bad := range []string{"", " , ", "ops mail", "none,ops"} {
		if _, err := Resolve([]Labelled{{Name: "web", Labels: map[string]string{LabelNotify: bad}}}, DefaultDefaults); err == nil {
			t.Errorf("lifeboat.notify=%q accepted", bad)
		}
	}
	_, err = Resolve([]Labelled{{Name: "web", Labels: map[string]string{LabelNotify: "ops"}}, {Name: "db", Labels: map[string]string{LabelNotify: "mail"}}}, DefaultDefaults)
	if err == nil || !strings.Contains(err.Error(), "make them agree") {
		t.Fatalf("members disagreeing: %v", err)
	}
}

func TestPingLabel(t *testing.T) {
	const url = "https://hc-ping.com/0f3c1a2e-secret"
	p, err := Resolve([]Labelled{{Name: "web", Labels: map[string]string{LabelPing: url}}}, DefaultDefaults)
	if err != nil || p.Ping != url || p.PingTo != "https://hc-ping.com/…" {
		t.Fatalf("%q %q %v", p.Ping, p.PingTo, err)
	}
	p, err = Resolve([]Labelled{{Name: "web"}}, Defaults{Ping: "http://127.0.0.1:8000/ping/x"})
	if err != nil || p.Ping != "http://127.0.0.1:8000/ping/x" || p.Sources[LabelPing] != "default" {
		t.Fatalf("default: %q %v", p.Ping, err)
	}
	for _, bad := range []string{"hc-ping.com/0f3c1a2e-secret", "ftp://h/0f3c1a2e-secret", "https:///0f3c1a2e-secret"} {
		_, err := Resolve([]Labelled{{Name: "web", Labels: map[string]string{LabelPing: bad}}}, DefaultDefaults)
		if err == nil || strings.Contains(err.Error(), "0f3c1a2e-secret") {
			t.Errorf("lifeboat.ping=%q: %v", bad, err)
		}
	}
	// Members that disagree are named; the URLs are not.
	_, err = Resolve([]Labelled{{Name: "web", Labels: map[string]string{LabelPing: url}}, {Name: "db", Labels: map[string]string{LabelPing: url + "2"}}}, DefaultDefaults)
	if err == nil || strings.Contains(err.Error(), "0f3c1a2e-secret") || !strings.Contains(err.Error(), "web and db") {
		t.Fatalf("members disagreeing: %v", err)
	}
}

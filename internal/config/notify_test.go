package config

import (
	"slices"
	"strings"
	"testing"
)

func TestLoadNotify(t *testing.T) {
	c, err := Load(write(t, `
notify:
  targets:
    - {name: ops, url: "ntfy://ntfy.example/lifeboat", events: [failure, anomaly, drill]}
    - {name: mail, url: "smtp://u:p@mail.example:587/?from=a@example.test&to=b@example.test"}
  default: [ops]
webhook: {url: "http://127.0.0.1:9/hook", secret: abc, events: [failure, success]}
pings: {url: "https://hc-ping.com/uuid"}
`, 0o600))
	if err != nil {
		t.Fatal(err)
	}
	ts := c.NotifyTargets()
	if len(ts) != 2 || ts[0].Name != "ops" || !slices.Equal(ts[0].Events, []string{"failure", "anomaly", "drill"}) || ts[1].Events != nil {
		t.Fatalf("targets %+v", ts)
	}
	if c.Webhook.Secret != "abc" || c.PolicyDefaults().Ping != "https://hc-ping.com/uuid" {
		t.Fatalf("webhook %+v, ping %q", c.Webhook, c.PolicyDefaults().Ping)
	}
}

func TestLoadNotifyRefuses(t *testing.T) {
	for body, want := range map[string]string{
		"notify: {targets: [{name: ops, url: 'ntfy://h/t', events: [always]}]}":               `unknown event "always"`,
		"notify: {targets: [{name: 'a b', url: 'ntfy://h/t'}]}":                               "a word without commas",
		"notify: {targets: [{name: ops, url: 'pager://tok3n@h'}]}":                            "check it against shoutrrr",
		"notify: {targets: [{name: ops, url: 'ntfy://h/t'}], default: [mail]}":                `"mail", which is no target`,
		"notify: {targets: [{name: ops, url: 'ntfy://h/t'}, {name: ops, url: 'ntfy://h/u'}]}": "used twice",
		"webhook: {events: [sometimes]}":                                                      "webhook.events",
		"webhook: {secret: abc}":                                                              "without webhook.url",
		"pings: {url: 'hc-ping.com/uuid'}":                                                    "pings.url",
	} {
		_, err := Load(write(t, body, 0o600))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err %v, want %q", body, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "tok3n") {
			t.Errorf("%q: error shows the URL's secret: %v", body, err)
		}
	}
	for _, body := range []string{
		"notify: {targets: [{name: ops, url: 'ntfy://h/t'}]}",
		"webhook: {url: 'http://h/x', secret: abc}",
		"pings: {url: 'https://hc-ping.com/uuid'}",
	} {
		if _, err := Load(write(t, body, 0o644)); err == nil || !strings.Contains(err.Error(), "chmod 600") {
			t.Errorf("%q readable by others: %v", body, err)
		}
	}
}

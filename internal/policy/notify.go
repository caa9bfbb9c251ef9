package policy

import (
	"fmt"
	"net/url"
	"strings"
)

// Where a unit's news goes.
const (
	// LabelNotify names the config file's notify targets that get the
	// unit's events, in place of notify.default; "none" sends nothing.
	LabelNotify = "lifeboat.notify"
	// LabelPing is a dead-man check's ping URL (healthchecks.io style):
	// URL/start, URL and URL/fail around each backup of the unit.
	LabelPing = "lifeboat.ping"
)

// ParseNotify reads a lifeboat.notify value: target names separated by
// commas, or none.
func ParseNotify(v string) ([]string, error) {
	names := splitList(v)
	if len(names) == 0 {
		return nil, fmt.Errorf("empty: name the config's notify targets, as ops,mail, or none")
	}
	for _, n := range names {
		if strings.ContainsAny(n, " \t") {
			return nil, fmt.Errorf("%q is not a target name: separate names with commas", n)
		}
		if n == "none" && len(names) > 1 {
			return nil, fmt.Errorf("none goes alone: it turns the unit's notifications off")
		}
	}
	return names, nil
}

// CheckPing accepts a ping URL: http or https, with a host. Its message
// never repeats the URL, whose path is the check's secret.
func CheckPing(v string) error {
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("not an http(s) URL: write the check's ping URL, as https://hc-ping.com/UUID")
	}
	return nil
}

// pingShown is a ping URL as the API shows it: scheme and host.
func pingShown(v string) string {
	u, err := url.Parse(v)
	if err != nil || v == "" {
		return ""
	}
	return u.Scheme + "://" + u.Host + "/…"
}

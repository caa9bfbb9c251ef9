package consistency

import (
	"strings"
	"testing"
	"time"
)

func TestHooks(t *testing.T) {
	members := []Member{
		{Name: "p-db-1", ID: "d", Service: "db", Labels: map[string]string{LabelHookPre: "psql -c checkpoint", LabelHookTimeout: "30s"}},
		{Name: "p-app-1", ID: "a", Service: "app", Labels: map[string]string{
			LabelHookPre + ".db": "touch /tmp/locked", LabelHookPost + ".db": "rm /tmp/locked", LabelHookPost: "echo done"}},
	}
	pre, post, err := Hooks(members)
	if err != nil {
		t.Fatal(err)
	}
	if len(pre) != 2 || pre[0].Container != "p-db-1" || pre[1].Container != "p-db-1" {
		t.Fatalf("pre hooks: %+v", pre)
	}
	if pre[0].Cmd != "psql -c checkpoint" || pre[0].Timeout != 30*time.Second {
		t.Errorf("own hook: %+v", pre[0])
	}
	// Declared on app for service db: runs in db, with app's (default) timeout.
	if pre[1].Cmd != "touch /tmp/locked" || pre[1].Timeout != DefaultHookTimeout || !strings.Contains(pre[1].Label, "p-app-1") {
		t.Errorf("service hook: %+v", pre[1])
	}
	// Post hooks in reverse start order: app's own first, then db's.
	if len(post) != 2 || post[0].Container != "p-app-1" || post[1].Container != "p-db-1" {
		t.Errorf("post hooks: %+v", post)
	}
	for _, bad := range []map[string]string{
		{LabelHookTimeout: "soon"}, {LabelHookPre: " "}, {LabelHookPre + ".cache": "x"},
	} {
		if _, _, err := Hooks([]Member{{Name: "x", Service: "x", Labels: bad}}); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

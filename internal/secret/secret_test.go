package secret

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestValueNeverPrints(t *testing.T) {
	const pw = "hunter2-very-secret"
	v := New(pw)
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("opened", "password", v)
	js, err := json.Marshal(struct{ P Value }{v})
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]string{
		"%v": fmt.Sprintf("%v", v), "%s": fmt.Sprintf("%s", v), "%#v": fmt.Sprintf("%#v", v),
		"%+v struct": fmt.Sprintf("%+v", struct{ P Value }{v}), "slog": logs.String(), "json": string(js),
	} {
		if strings.Contains(s, pw) {
			t.Errorf("%s leaks the secret: %q", name, s)
		}
		if !strings.Contains(s, "[redacted]") {
			t.Errorf("%s: want [redacted] in %q", name, s)
		}
	}
	if v.Reveal() != pw {
		t.Fatalf("Reveal = %q", v.Reveal())
	}
}

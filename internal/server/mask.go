package server

import (
	"bytes"
	"encoding/json"
	"path"
	"strings"

	"github.com/lifeboat-backup/lifeboat/internal/policy"
)

// Masked replaces a secret-looking value below the admin role.
const Masked = "[masked]"

// secretWords, in an upper-cased name, make its value secret-looking. A
// VAR_FILE variable holds a path, masked too when its name looks secret;
// the file it names is content, which only admin may download.
var secretWords = []string{"PASSWORD", "PASSWD", "SECRET", "TOKEN", "KEY"}

// SecretName reports whether a variable or label name looks like it holds
// a secret.
func SecretName(name string) bool {
	// A dead-man ping URL's path is the check's secret: anyone who has
	// it can report the unit's backups as done.
	if strings.EqualFold(name, policy.LabelPing) {
		return true
	}
	up := strings.ToUpper(name)
	for _, w := range secretWords {
		if strings.Contains(up, w) {
			return true
		}
	}
	return false
}

// cleanPath is p relative to the point's root, without . or .. parts.
func cleanPath(p string) string {
	if p == "" {
		return ""
	}
	return path.Clean("/" + p)[1:]
}

// metadataFile reports whether a path of a point is captured metadata that
// roles below admin may read (masked): the manifest and each container's
// configuration and image. Everything else is data (volumes, binds,
// dumps, layers): admin only.
func metadataFile(p string) bool {
	p = cleanPath(p)
	if p == "lifeboat.json" {
		return true
	}
	dir, file := path.Split(p)
	return path.Dir(path.Clean(dir)) == "containers" && (file == "config.json" || file == "image.json")
}

// maskJSON masks secret-looking values in a JSON document: "NAME=value"
// entries of every "Env" list, and string values under secret-looking keys
// (labels such as "db.password"). A document that is not JSON is refused
// rather than passed through.
func maskJSON(b []byte) ([]byte, bool) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, false
	}
	out, err := json.MarshalIndent(mask(v, ""), "", "  ")
	if err != nil {
		return nil, false
	}
	return append(out, '\n'), true
}

func mask(v any, key string) any {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			t[k] = mask(x, k)
		}
	case []any:
		for i, x := range t {
			if s, ok := x.(string); ok && strings.EqualFold(key, "env") {
				t[i] = maskEnv(s)
				continue
			}
			t[i] = mask(x, key)
		}
	case string:
		if key != "" && SecretName(key) && t != "" {
			return Masked
		}
	}
	return v
}

// maskEnv masks NAME=value when NAME looks secret.
func maskEnv(kv string) string {
	name, _, ok := strings.Cut(kv, "=")
	if ok && SecretName(name) {
		return name + "=" + Masked
	}
	return kv
}

package server

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/lifeboat-backup/lifeboat/internal/api"
	"github.com/lifeboat-backup/lifeboat/internal/repository"
	"github.com/lifeboat-backup/lifeboat/internal/restore"
)

var update = flag.Bool("update", false, "rewrite openapi.json's component schemas from the Go types")

// apiTypes are the Go types the API speaks, by their component name in
// openapi.json: the document's schemas are generated from them (go test
// -run TestSchemasFromGoTypes -update), and the test fails when they drift.
var apiTypes = map[string]any{
	"Point":          repository.Point{},
	"DirEntry":       repository.DirEntry{},
	"Job":            Job{},
	"JobRequest":     JobRequest{},
	"RestoreRequest": RestoreRequest{},
	"Repository":     RepoStatus{},
	"Unit":           UnitStatus{},
	"Engine":         EngineStatus{},
	"Error":          api.Error{},
	"Plan":           restore.Plan{},
	"AckResult":      repository.AckResult{},
}

// schemaOf is the JSON schema of t as encoding/json writes it: members by
// their json names, embedded structs flattened, omitempty ones optional.
func schemaOf(t reflect.Type) map[string]any {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == reflect.TypeOf(time.Time{}):
		return map[string]any{"type": "string", "format": "date-time"}
	case t == reflect.TypeOf(json.RawMessage{}):
		return map[string]any{}
	}
	switch t.Kind() {
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": "integer"}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.Slice, reflect.Array:
		return map[string]any{"type": "array", "items": schemaOf(t.Elem())}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": schemaOf(t.Elem())}
	case reflect.Struct:
		props, required := map[string]any{}, []any{}
		addFields(t, props, &required)
		s := map[string]any{"type": "object", "properties": props}
		if len(required) > 0 {
			s["required"] = required
		}
		return s
	}
	return map[string]any{} // interfaces: any JSON value
}

func addFields(t reflect.Type, props map[string]any, required *[]any) {
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" || (!f.IsExported() && !f.Anonymous) {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				addFields(ft, props, required)
				continue
			}
		}
		if name == "" {
			name = f.Name
		}
		props[name] = schemaOf(f.Type)
		if !strings.Contains(opts, "omitempty") && f.Type.Kind() != reflect.Pointer {
			*required = append(*required, name)
		}
	}
}

// normalized round-trips v through JSON, so maps and slices compare as the
// document's decoded values do.
func normalized(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestSchemasFromGoTypes(t *testing.T) {
	var doc map[string]any
	dec := json.NewDecoder(bytes.NewReader(openapi))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		t.Fatal(err)
	}
	schemas := doc["components"].(map[string]any)["schemas"].(map[string]any)
	for name, v := range apiTypes {
		want := normalized(t, schemaOf(reflect.TypeOf(v)))
		// Sorted required lists: field order is the Go type's.
		if *update {
			schemas[name] = want
			continue
		}
		if diff := cmp.Diff(want, normalized(t, schemas[name])); diff != "" {
			t.Errorf("openapi.json's %s schema differs from the Go type (-go +document); run go test ./internal/server -run TestSchemasFromGoTypes -update:\n%s", name, diff)
		}
	}
	if *update {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetIndent("", " ")
		enc.SetEscapeHTML(false)
		if err := enc.Encode(doc); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile("openapi.json", b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

package server

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// spec is the part of the OpenAPI document the contract test reads.
type spec struct {
	Paths      map[string]map[string]operation `json:"paths"`
	Components struct {
		Schemas   map[string]schema   `json:"schemas"`
		Responses map[string]response `json:"responses"`
	} `json:"components"`
}

type operation struct {
	Responses map[string]response `json:"responses"`
}

type response struct {
	Ref     string `json:"$ref"`
	Content map[string]struct {
		Schema schema `json:"schema"`
	} `json:"content"`
}

type schema struct {
	Ref        string            `json:"$ref"`
	Type       string            `json:"type"`
	Required   []string          `json:"required"`
	Properties map[string]schema `json:"properties"`
	Items      *schema           `json:"items"`
}

func loadSpec(t *testing.T) spec {
	t.Helper()
	var s spec
	if err := json.Unmarshal(openapi, &s); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	return s
}

func (s spec) resolve(r response) response {
	if name, ok := strings.CutPrefix(r.Ref, "#/components/responses/"); ok {
		return s.Components.Responses[name]
	}
	return r
}

func (s spec) schema(sc schema) schema {
	if name, ok := strings.CutPrefix(sc.Ref, "#/components/schemas/"); ok {
		return s.Components.Schemas[name]
	}
	return sc
}

// contractCase is a representative call of one route.
type contractCase struct {
	path, body string
}

var contractCases = map[string]contractCase{
	"GET /healthz":                     {path: "/healthz"},
	"GET /metrics":                     {path: "/metrics"},
	"GET /api/v1/openapi.json":         {path: "/api/v1/openapi.json"},
	"POST /api/v1/login":               {path: "/api/v1/login", body: `{"token":"` + adminToken + `"}`},
	"POST /api/v1/logout":              {path: "/api/v1/logout"},
	"GET /api/v1/session":              {path: "/api/v1/session"},
	"GET /api/v1/units":                {path: "/api/v1/units"},
	"GET /api/v1/engines":              {path: "/api/v1/engines"},
	"GET /api/v1/points":               {path: "/api/v1/points?unit=project/app"},
	"GET /api/v1/points/{id}":          {path: "/api/v1/points/p1"},
	"GET /api/v1/points/{id}/files":    {path: "/api/v1/points/p1/files?path=/"},
	"GET /api/v1/points/{id}/download": {path: "/api/v1/points/p1/download?path=lifeboat.json"},
	"GET /api/v1/jobs":                 {path: "/api/v1/jobs"},
	"POST /api/v1/jobs":                {path: "/api/v1/jobs", body: `{"kind":"backup","unit":"project/app"}`},
	"GET /api/v1/jobs/{id}":            {path: "/api/v1/jobs/j1"},
	"POST /api/v1/jobs/{id}/cancel":    {path: "/api/v1/jobs/j1/cancel"},
	"GET /api/v1/repository":           {path: "/api/v1/repository"},
	"POST /api/v1/restore/plan":        {path: "/api/v1/restore/plan", body: `{"point":"p1","volume":"app_data","as":"copy"}`},
	"POST /api/v1/points/{id}/ack":     {path: "/api/v1/points/p1/ack"},
}

// TestOpenAPIContract proves the document and the server agree: every
// route served is documented with its method and every documented one is
// served; each answers, with and without credentials, only with status
// codes the document lists; and a JSON answer has the documented type, its
// required members, and no member the document does not name.
func TestOpenAPIContract(t *testing.T) {
	doc := loadSpec(t)
	s := &server{}
	served := map[string]route{}
	for _, rt := range s.routes(http.NotFoundHandler()) {
		served[rt.pattern] = rt
	}
	var documented []string
	for path, ops := range doc.Paths {
		for method := range ops {
			documented = append(documented, strings.ToUpper(method)+" "+path)
		}
	}
	for p := range served {
		if !slices.Contains(documented, p) {
			t.Errorf("%s is served but not in openapi.json", p)
		}
	}
	for _, p := range documented {
		if _, ok := served[p]; !ok {
			t.Errorf("%s is in openapi.json but not served", p)
		}
		if _, ok := contractCases[p]; !ok {
			t.Errorf("%s has no contract case", p)
		}
	}

	h := New(testOptions(&fakeBackend{}))
	for p, rt := range served {
		c, ok := contractCases[p]
		if !ok {
			continue
		}
		method, docPath, _ := strings.Cut(p, " ")
		op := doc.Paths[docPath][strings.ToLower(method)]
		ctype := ""
		if c.body != "" {
			ctype = "application/json"
		}
		for _, token := range []string{adminToken, ""} {
			w := do(t, h, req{method: method, path: c.path, body: c.body, token: token, ctype: ctype})
			code := strconv.Itoa(w.Code)
			resp, ok := op.Responses[code]
			if !ok {
				t.Errorf("%s (token %v) answered %s, which openapi.json does not list: %s", p, token != "", code, w.Body.String())
				continue
			}
			if token == "" && rt.role != NoRole && w.Code != http.StatusUnauthorized {
				t.Errorf("%s without credentials answered %d, want 401", p, w.Code)
			}
			checkBody(t, doc, p+" "+code, doc.resolve(resp), w.Header().Get("Content-Type"), w.Body.Bytes())
		}
	}
}

// checkBody compares a JSON answer with its documented schema.
func checkBody(t *testing.T, doc spec, what string, r response, ctype string, body []byte) {
	t.Helper()
	media, ok := r.Content["application/json"]
	if !ok || !strings.HasPrefix(ctype, "application/json") {
		return
	}
	sc := doc.schema(media.Schema)
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Errorf("%s: not JSON: %v", what, err)
		return
	}
	checkValue(t, doc, what, sc, v)
}

func checkValue(t *testing.T, doc spec, what string, sc schema, v any) {
	t.Helper()
	switch got := v.(type) {
	case map[string]any:
		if sc.Type != "" && sc.Type != "object" {
			t.Errorf("%s: an object, documented as %s", what, sc.Type)
		}
		for _, k := range sc.Required {
			if _, ok := got[k]; !ok {
				t.Errorf("%s: required member %q missing", what, k)
			}
		}
		if len(sc.Properties) > 0 {
			for k := range got {
				if _, ok := sc.Properties[k]; !ok {
					t.Errorf("%s: member %q is not documented", what, k)
				}
			}
		}
	case []any:
		if sc.Type != "" && sc.Type != "array" {
			t.Errorf("%s: an array, documented as %s", what, sc.Type)
		}
		if sc.Items != nil {
			for i, item := range got {
				checkValue(t, doc, what+"["+strconv.Itoa(i)+"]", doc.schema(*sc.Items), item)
			}
		}
	}
}

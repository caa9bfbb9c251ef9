// Package webui is lifeboat serve's web interface: static HTML, CSS and a
// little JavaScript, embedded in the binary, whose only back end is the
// REST API. No build step: a fresh clone builds it with `go build`.
package webui

import (
	"embed"
	"io/fs"
	"net/http"
	"strings"
)

//go:embed static
var files embed.FS

// Handler serves the UI: its assets, and index.html for every page path
// (the pages are routed in the browser, after the # of the URL).
func Handler() http.Handler {
	sub, _ := fs.Sub(files, "static")
	assets := http.FileServer(http.FS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		if strings.HasPrefix(r.URL.Path, "/api/") {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "no-cache")
		if r.URL.Path != "/" && !strings.Contains(r.URL.Path[1:], "/") && r.URL.Path != "/index.html" {
			if _, err := fs.Stat(sub, strings.TrimPrefix(r.URL.Path, "/")); err == nil {
				assets.ServeHTTP(w, r)
				return
			}
		}
		b, _ := fs.ReadFile(sub, "index.html")
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(b)
	})
}

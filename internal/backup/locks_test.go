package backup

import (
	"slices"
	"testing"

	"github.com/lifeboat-backup/lifeboat/internal/repository"
)

// TestRestoreLocks covers the scopes that need no engine; volume and dump
// scopes look containers up and are covered end to end.
func TestRestoreLocks(t *testing.T) {
	project := repository.Point{Unit: "project/shop", Kind: "project"}
	container := repository.Point{Unit: "container/web", Kind: "container"}
	for _, tc := range []struct {
		name  string
		point repository.Point
		s     RestoreScope
		want  []string
	}{
		{"directory", project, RestoreScope{Target: "/tmp/x"}, nil},
		{"images only", project, RestoreScope{ImageOnly: true}, nil},
		{"in place", project, RestoreScope{}, []string{"project/shop"}},
		{"project copy", project, RestoreScope{As: "shop2"}, []string{"project/shop", "project/shop2"}},
		{"container copy", container, RestoreScope{As: "web2"}, []string{"container/web", "container/web2"}},
		{"copy under its own name", project, RestoreScope{As: "shop"}, []string{"project/shop"}},
		{"dump into itself", project, RestoreScope{Dump: true}, []string{"project/shop"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := RestoreLocks(t.Context(), nil, tc.point, tc.s)
			if err != nil || !slices.Equal(got, tc.want) {
				t.Errorf("RestoreLocks = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

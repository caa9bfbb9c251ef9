package restore

import (
	"testing"

	"github.com/lifeboat-backup/lifeboat/internal/layout"
)

func TestComposeDst(t *testing.T) {
	c := &layout.Compose{WorkingDir: "/srv/shop"}
	for _, tc := range []struct{ src, dir, want string }{
		{"/srv/shop/compose.yaml", "", "/srv/shop/compose.yaml"},
		{"/srv/shop/compose.yaml", "/restore/shop", "/restore/shop/compose.yaml"},
		{"/srv/shop/ops/override.yaml", "/restore/shop", "/restore/shop/ops/override.yaml"},
		{"/srv/shop/.env", "/restore/shop", "/restore/shop/.env"},
		{"/etc/shop/base.yaml", "/restore/shop", "/restore/shop/base.yaml"},
		{"/srv/shopping/x.yaml", "/restore/shop", "/restore/shop/x.yaml"}, // a sibling, not beneath
	} {
		if got := composeDst(c, layout.ComposeFile{Source: tc.src}, tc.dir); got != tc.want {
			t.Errorf("composeDst(%s, %q) = %s, want %s", tc.src, tc.dir, got, tc.want)
		}
	}
}

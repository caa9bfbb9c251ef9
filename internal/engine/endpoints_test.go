package engine

import "testing"

func TestBuiltinNetwork(t *testing.T) {
	for name, want := range map[string]bool{
		"": true, "default": true, "bridge": true, "host": true, "none": true, "container:db": true,
		"shop_default": false, "backend": false, "bridge2": false, "containers": false,
	} {
		if got := BuiltinNetwork(name); got != want {
			t.Errorf("BuiltinNetwork(%q) = %v, want %v", name, got, want)
		}
	}
}

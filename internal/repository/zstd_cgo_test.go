//go:build cgo

package repository

import "testing"

// TestZstdCgoUsesC: a build with cgo (the tests' -race needs it)
// compresses with the C library, so that the tests above test it.
func TestZstdCgoUsesC(t *testing.T) {
	if ZstdEncoder() != "C library" {
		t.Fatalf("encoder %q in a cgo build", ZstdEncoder())
	}
}

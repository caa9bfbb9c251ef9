package server

import "testing"

// TestComposeFilesAreData: a project's .env holds passwords, so its
// compose section is data that only admin downloads, as dumps are.
func TestComposeFilesAreData(t *testing.T) {
	for _, p := range []string{"compose/srv%2Fshop%2F.env", "/compose/srv%2Fshop%2Fcompose.yaml", "compose", "dumps/db/all.sql"} {
		if metadataFile(p) {
			t.Errorf("%s is readable below admin", p)
		}
	}
	if !metadataFile("lifeboat.json") {
		t.Error("the manifest is not metadata")
	}
}

package consistency

import (
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestWithoutSchema(t *testing.T) {
	long := "INSERT INTO t VALUES ('" + strings.Repeat("x", 200<<10) + "');\n"
	section := func(db, body string) string {
		return "--\n-- Current Database: `" + db + "`\n--\n\nCREATE DATABASE `" + db + "`;\nUSE `" + db + "`;\n" + body
	}
	head := "-- MariaDB dump\n/*!40101 SET NAMES utf8mb4 */;\n"
	in := head + section("a/b", long) + section("mysql", "INSERT INTO global_priv VALUES ('root');\n"+long+
		"INSERT INTO t VALUES ('\\n-- Current Database: `app`');\n") +
		section("app", "INSERT INTO t VALUES (1);\n") + section("mysql", "CREATE VIEW user AS SELECT 1;\n") +
		section("mysql``x", "INSERT INTO kept VALUES (1);\n") + "-- Dump completed\n"
	// A header's "--" line above it goes with the section before: passed
	// on after a kept section (a comment), left out after a skipped one.
	want := head + section("a/b", long) + "--\n" + section("app", "INSERT INTO t VALUES (1);\n")[3:] + "--\n" +
		section("mysql``x", "INSERT INTO kept VALUES (1);\n")[3:] + "-- Dump completed\n"
	for name, r := range map[string]io.Reader{
		"whole":    WithoutSchema(strings.NewReader(in), "mysql"),
		"one byte": WithoutSchema(iotest.OneByteReader(strings.NewReader(in)), "mysql"),
	} {
		got, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != want {
			t.Fatalf("%s: got %d bytes, want %d; mysql left in: %v", name, len(got), len(want), strings.Contains(string(got), "global_priv"))
		}
	}
	// The last section to the end of the dump, with no newline at its end.
	got, _ := io.ReadAll(WithoutSchema(strings.NewReader(head+section("mysql", "x;")), "mysql"))
	if string(got) != head+"--\n" {
		t.Fatalf("a dump ending in the skipped schema: %q", got)
	}
}

func TestWithoutRoles(t *testing.T) {
	in := "SET client_encoding = 'UTF8';\n" +
		"CREATE ROLE \"My Role\";\nALTER ROLE \"My Role\" WITH LOGIN PASSWORD 'SCRAM-a';\n" +
		"CREATE ROLE app;\nALTER ROLE app WITH NOLOGIN;\n" +
		"CREATE ROLE postgres;\nALTER ROLE postgres WITH SUPERUSER LOGIN PASSWORD 'SCRAM-b';\n" +
		"CREATE ROLE postgres2;\nALTER ROLE postgres2 WITH LOGIN;\n" +
		"ALTER ROLE app SET search_path TO 'a';\nGRANT app TO \"My Role\" GRANTED BY postgres;\n"
	got, err := io.ReadAll(WithoutRoles(strings.NewReader(in), []string{"postgres", "My Role"}))
	if err != nil {
		t.Fatal(err)
	}
	want := "SET client_encoding = 'UTF8';\n" +
		"CREATE ROLE app;\nALTER ROLE app WITH NOLOGIN;\n" +
		"CREATE ROLE postgres2;\nALTER ROLE postgres2 WITH LOGIN;\n" +
		"ALTER ROLE app SET search_path TO 'a';\nGRANT app TO \"My Role\" GRANTED BY postgres;\n"
	if string(got) != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
}

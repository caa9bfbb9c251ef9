package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
)

// writeSummary prints v as one JSON line with "message_type": "summary"
// first, as restic's JSON lines: the fields of v follow, unnested.
func writeSummary(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode summary: %w", err)
	}
	head := []byte(`{"message_type":"summary"`)
	switch {
	case bytes.Equal(b, []byte("{}")):
		b = append(head, '}')
	case len(b) > 1 && b[0] == '{':
		b = append(append(head, ','), b[1:]...)
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

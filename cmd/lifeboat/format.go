package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/template"
)

// formatHelp is the --format flag's help, as the Docker CLI words it.
const formatHelp = `print each item through a Go template, e.g. '{{.Unit}} {{.Time}}'; "json" prints each as a JSON line`

// printFormatted prints each item through format, a Go template over the
// item's fields (the Docker CLI's --format), or as one JSON line each when
// format is "json". A template that does not parse or fails on an item is
// an error naming it, before anything is printed for a bad template.
func printFormatted[T any](w io.Writer, format string, items []T) error {
	if strings.TrimSpace(format) == "json" {
		return printJSONLines(w, items)
	}
	tmpl, err := parseFormat(format)
	if err != nil {
		return err
	}
	for _, it := range items {
		if err := tmpl.Execute(w, it); err != nil {
			return fmt.Errorf("--format: %w", err)
		}
		if _, err := fmt.Fprintln(w); err != nil {
			return err
		}
	}
	return nil
}

// checkFormat refuses a template that does not parse, before the command
// opens anything.
func checkFormat(format string) error {
	if format == "" || strings.TrimSpace(format) == "json" {
		return nil
	}
	_, err := parseFormat(format)
	return err
}

func printJSONLines[T any](w io.Writer, items []T) error {
	enc := json.NewEncoder(w)
	for _, it := range items {
		if err := enc.Encode(it); err != nil {
			return err
		}
	}
	return nil
}

func parseFormat(format string) (*template.Template, error) {
	tmpl, err := template.New("format").Funcs(template.FuncMap{
		"json": func(v any) (string, error) {
			b, err := json.Marshal(v)
			return string(b), err
		},
		"join": strings.Join,
	}).Parse(format)
	if err != nil {
		return nil, fmt.Errorf("--format: %w: see the Go text/template syntax, e.g. '{{.Unit}}'", err)
	}
	return tmpl, nil
}

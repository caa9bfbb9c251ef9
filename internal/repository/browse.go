package repository

import (
	"context"
	"fmt"
	"os"
	"sort"
	"time"

	"github.com/kopia/kopia/fs"
)

// DirEntry is one entry of a directory inside a restore point.
type DirEntry struct {
	Name    string      `json:"name"`
	Type    string      `json:"type"` // dir, file, symlink, other
	Size    int64       `json:"size"`
	Mode    os.FileMode `json:"mode"`
	ModTime time.Time   `json:"mtime"`
}

// ReadDir lists a directory of a restore point, directories first, for
// browsing without extracting anything.
func (r *Repository) ReadDir(ctx context.Context, id, path string) ([]DirEntry, error) {
	e, err := r.entry(ctx, id, path)
	if err != nil {
		return nil, err
	}
	d, ok := e.(fs.Directory)
	if !ok {
		return nil, fmt.Errorf("%s in restore point %s is not a directory", displayPath(path), id)
	}
	var out []DirEntry
	err = fs.IterateEntries(ctx, d, func(_ context.Context, c fs.Entry) error {
		out = append(out, dirEntry(c))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s in restore point %s: %w", displayPath(path), id, err)
	}
	sort.Slice(out, func(i, j int) bool {
		if (out[i].Type == "dir") != (out[j].Type == "dir") {
			return out[i].Type == "dir"
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

// Stat describes one entry of a restore point.
func (r *Repository) Stat(ctx context.Context, id, path string) (DirEntry, error) {
	e, err := r.entry(ctx, id, path)
	if err != nil {
		return DirEntry{}, err
	}
	return dirEntry(e), nil
}

func dirEntry(e fs.Entry) DirEntry {
	de := DirEntry{Name: e.Name(), Size: e.Size(), Mode: e.Mode(), ModTime: e.ModTime(), Type: "other"}
	switch e.(type) {
	case fs.Directory:
		de.Type = "dir"
	case fs.File:
		de.Type = "file"
	case fs.Symlink:
		de.Type = "symlink"
	}
	return de
}

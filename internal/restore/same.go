package restore

import (
	"context"
	"fmt"
	"path"
	"slices"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lifeboat-backup/lifeboat/internal/beneath"
	"github.com/lifeboat-backup/lifeboat/internal/repository"
)

// sameTree reports how the host directory dir differs from the point's
// tree at p: "" when it holds the same names of the same types, and files
// of the same size and modification time. That is rsync's quick check:
// reading a large bind source back whole would cost as much as restoring
// it. The walk never follows a symlink (package beneath), so a container
// that mounts dir cannot lead it elsewhere; at worst it makes dir differ.
func sameTree(ctx context.Context, repo *repository.Repository, id, p, dir string) (string, error) {
	root, err := beneath.Open(dir)
	if err != nil {
		return "", err
	}
	defer root.Close()
	return sameDir(ctx, repo, id, p, root, ".")
}

func sameDir(ctx context.Context, repo *repository.Repository, id, p string, root *beneath.Root, rel string) (string, error) {
	want, err := repo.ReadDir(ctx, id, p)
	if err != nil {
		return "", err
	}
	d, err := root.OpenDir(rel)
	if err != nil {
		return rel + ": " + err.Error(), nil
	}
	defer d.Close()
	have, err := d.Readdirnames(-1)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", root.Join(rel), err)
	}
	if len(have) != len(want) {
		return fmt.Sprintf("%s: %d entries, the point's has %d", rel, len(have), len(want)), nil
	}
	for _, e := range want {
		sub := path.Join(rel, e.Name)
		if !slices.Contains(have, e.Name) {
			return sub + ": missing", nil
		}
		st, err := beneath.Lstat(d, e.Name)
		if err != nil {
			return sub + ": " + err.Error(), nil
		}
		if why := sameEntry(e, st); why != "" {
			return sub + ": " + why, nil
		}
		if e.Type == "dir" {
			if why, err := sameDir(ctx, repo, id, p+"/"+e.Name, root, sub); why != "" || err != nil {
				return why, err
			}
		}
	}
	return "", nil
}

// sameEntry says how st differs from e, "" when it does not.
func sameEntry(e repository.DirEntry, st unix.Stat_t) string {
	typ := map[uint32]string{unix.S_IFDIR: "dir", unix.S_IFREG: "file", unix.S_IFLNK: "symlink"}[st.Mode&unix.S_IFMT]
	if typ == "" {
		typ = "other"
	}
	switch {
	case typ != e.Type:
		return fmt.Sprintf("a %s, the point's is a %s", typ, e.Type)
	case typ != "file":
		return ""
	case st.Size != e.Size:
		return fmt.Sprintf("%d bytes, the point's has %d", st.Size, e.Size)
	case !time.Unix(st.Mtim.Unix()).Equal(e.ModTime):
		return "modified at another time than the point's copy"
	}
	return ""
}

package repository

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/kopia/kopia/fs"
	"github.com/kopia/kopia/repo"
	"github.com/kopia/kopia/repo/blob"
	"github.com/kopia/kopia/repo/content"
	"github.com/kopia/kopia/repo/manifest"
	"github.com/kopia/kopia/repo/object"
	"github.com/kopia/kopia/snapshot"
	"github.com/kopia/kopia/snapshot/snapshotfs"
)

// CheckOptions say how deep a check goes.
type CheckOptions struct {
	// ReadData is the percentage (0–100) of files whose content is read
	// back, decrypted and verified against its hash, chosen at random.
	ReadData float64
	// Progress, when set, is told of each file verified.
	Progress func(files, bytes int64)
}

// Problem is one thing wrong, with the restore points it hurts.
type Problem struct {
	What   string   `json:"what"`
	Points []string `json:"points,omitempty"` // IDs
	Paths  []string `json:"paths,omitempty"`  // unit@time:path, a few
}

// CheckResult is what a check found.
type CheckResult struct {
	Blobs        int           `json:"blobs"`
	Contents     int64         `json:"contents"`
	Points       int           `json:"points"`
	Files        int64         `json:"files"`
	Dirs         int64         `json:"dirs"`
	ReadFiles    int64         `json:"read_files"`
	ReadBytes    int64         `json:"read_bytes"`
	ReadDataPct  float64       `json:"read_data_percent"`
	Problems     []Problem     `json:"problems,omitempty"`
	Duration     time.Duration `json:"duration_ns"`
	DataVerified bool          `json:"data_verified"` // content was read back (ReadData > 0)
	// LostRecords counts restore point records (manifests) that cannot be
	// read: those points cannot be named, nor listed, any more.
	LostRecords int `json:"lost_records,omitempty"`
	// Unneeded are the missing or damaged packs no listed point needs:
	// what they held is lost already, and Repair drops it from the index.
	Unneeded []string `json:"unneeded_packs,omitempty"`
}

// ErrCheckFailed means a check found problems.
var ErrCheckFailed = errors.New("the repository has problems")

// Check checks the repository at opts through a connection of its own,
// with an empty cache that is removed afterwards. kopia keeps indexes and
// directories (and, for S3, file data) in a local cache once read, and
// serves them from there without going back to storage: a check that
// trusted the cache would miss damage done to storage since, which is the
// damage it is for. restic's check uses a fresh cache for the same reason.
func Check(ctx context.Context, opts Options, copts CheckOptions) (CheckResult, error) {
	parent := filepath.Dir(stateDir(opts.StateDir, opts.Location))
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return CheckResult{}, fmt.Errorf("check: cache directory: %w", err)
	}
	tmp, err := os.MkdirTemp(parent, "check-")
	if err != nil {
		return CheckResult{}, fmt.Errorf("check: cache directory: %w", err)
	}
	defer os.RemoveAll(tmp)
	opts.StateDir, opts.ReadOnly = tmp, true
	r, err := Open(ctx, opts)
	if err != nil {
		return CheckResult{}, err
	}
	defer r.Close(context.WithoutCancel(ctx))
	return r.Check(ctx, copts)
}

// Check verifies the repository through this connection, whose cache it
// trusts (see the function Check for one that does not): every index entry points into a pack
// that exists and is long enough, every restore point's manifest and
// directory tree load, every file's contents are in the index and in an
// existing pack, and a random ReadData percent of the files are read in
// full. Each problem names the restore points it affects.
func (r *Repository) Check(ctx context.Context, opts CheckOptions) (CheckResult, error) {
	ctx = withKopiaLogs(ctx, r.log)
	start := time.Now()
	res := CheckResult{ReadDataPct: opts.ReadData, DataVerified: opts.ReadData > 0}
	dr, ok := r.rep.(repo.DirectRepository)
	if !ok {
		return res, errors.New("check needs a direct repository connection")
	}
	blobs := map[blob.ID]int64{}
	if err := dr.BlobReader().ListBlobs(ctx, "", func(m blob.Metadata) error {
		blobs[m.BlobID] = m.Length
		return nil
	}); err != nil {
		return res, fmt.Errorf("list blobs: %w", err)
	}
	res.Blobs = len(blobs)

	badPack, lostRecords, err := scanIndex(ctx, dr, blobs, &res)
	if err != nil {
		return res, err
	}

	manifests, err := r.manifests(ctx, "", true)
	if err != nil {
		return res, fmt.Errorf("read restore points: %w", err)
	}
	res.Points = len(manifests)
	c := &checker{r: r, dr: dr, opts: opts, badPack: badPack, seen: map[object.ID]string{}, problems: map[string]*Problem{}, res: &res}
	if r.damaged != "" {
		// The points that blob described are invisible from here: name
		// the blob, and the command that brings them back.
		c.problem(fmt.Sprintf("index blob %s (and any other unreadable one) is skipped: the restore points it describes do not list until `lifeboat repair` rebuilds the index from the packs", r.damaged), "", "")
	}
	for _, m := range manifests {
		if err := c.point(ctx, m); err != nil {
			return res, err
		}
	}
	c.packs(badPack, lostRecords)
	res.Duration = time.Since(start)
	return res, res.verdict()
}

// point walks one restore point's tree; a tree that cannot be read is a
// problem of that point, and only cancellation stops the check.
func (c *checker) point(ctx context.Context, m *snapshot.Manifest) error {
	p := pointOf(m)
	label := p.Unit + "@" + p.Time.UTC().Format(time.RFC3339)
	root, err := snapshotfs.SnapshotRoot(c.r.rep, m)
	if err == nil {
		if d, ok := root.(fs.Directory); ok {
			err = c.walk(ctx, p.ID, label, "", d)
		} else {
			err = errors.New("its root is not a directory")
		}
	}
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		c.problem("restore point tree unreadable: "+err.Error(), p.ID, label)
	}
	return nil
}

// packs reports the bad packs, also those no file of any point needs: they
// are still a problem of the index. Then it sorts the problems found.
func (c *checker) packs(badPack map[blob.ID]string, lostRecords map[blob.ID]int) {
	res := c.res
	for b, why := range badPack {
		if n := lostRecords[b]; n > 0 {
			// The records are the points: their IDs went with the pack.
			c.problem(fmt.Sprintf("pack %s is %s: %d restore point record(s) in it are lost, and the points they described no longer list", b, why, n), "", "")
			res.LostRecords += n
		} else if !c.reported[b] {
			c.problem(fmt.Sprintf("pack %s is %s (no restore point's files need it)", b, why), "", "")
			res.Unneeded = append(res.Unneeded, string(b))
		}
	}
	for _, p := range c.problems {
		sort.Strings(p.Points)
		res.Problems = append(res.Problems, *p)
	}
	sort.Slice(res.Problems, func(i, j int) bool { return res.Problems[i].What < res.Problems[j].What })
}

// verdict is ErrCheckFailed with the counts when a problem was found.
func (res *CheckResult) verdict() error {
	if len(res.Problems) > 0 {
		hurt := map[string]bool{}
		for _, p := range res.Problems {
			for _, id := range p.Points {
				hurt[id] = true
			}
		}
		lost := ""
		if res.LostRecords > 0 {
			lost = fmt.Sprintf(", %d restore point record(s) lost", res.LostRecords)
		}
		return fmt.Errorf("%w: %d found, %d of %d restore points affected%s", ErrCheckFailed, len(res.Problems), len(hurt), res.Points, lost)
	}
	return nil
}

type checker struct {
	r        *Repository
	dr       repo.DirectRepository
	opts     CheckOptions
	badPack  map[blob.ID]string
	seen     map[object.ID]string // object → its problem, "" when fine
	problems map[string]*Problem
	reported map[blob.ID]bool
	res      *CheckResult
}

func (c *checker) problem(what, point, path string) {
	p := c.problems[what]
	if p == nil {
		p = &Problem{What: what}
		c.problems[what] = p
	}
	if point != "" && (len(p.Points) == 0 || p.Points[len(p.Points)-1] != point) {
		p.Points = append(p.Points, point)
	}
	if path != "" && len(p.Paths) < 5 {
		p.Paths = append(p.Paths, path)
	}
}

func (c *checker) walk(ctx context.Context, point, label, rel string, d fs.Directory) error {
	c.res.Dirs++
	var entries []fs.Entry
	err := fs.IterateEntries(ctx, d, func(_ context.Context, e fs.Entry) error {
		entries = append(entries, e)
		return nil
	})
	if err != nil {
		return fmt.Errorf("%s: %w", displayPath(rel), err)
	}
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		p := strings.TrimPrefix(rel+"/"+e.Name(), "/")
		where := label + ":" + p
		switch e := e.(type) {
		case fs.Directory:
			if err := c.walk(ctx, point, label, p, e); err != nil {
				c.problem("directory unreadable: "+err.Error(), point, where)
			}
		case fs.File:
			h, ok := e.(object.HasObjectID)
			if !ok {
				continue
			}
			c.res.Files++
			if why := c.verify(ctx, h.ObjectID(), e.Size()); why != "" {
				c.problem(why, point, where)
			}
		}
	}
	return nil
}

// verify checks one file object once, however many points share it.
func (c *checker) verify(ctx context.Context, oid object.ID, size int64) string {
	if why, done := c.seen[oid]; done {
		return why
	}
	why := ""
	cids, err := c.dr.VerifyObject(ctx, oid)
	if err != nil {
		why = "file content not in the index: " + err.Error()
	}
	for _, cid := range cids {
		if why != "" {
			break
		}
		ci, err := c.dr.ContentInfo(ctx, cid)
		if err != nil {
			why = fmt.Sprintf("content %v: %v", cid, err)
			break
		}
		if state, bad := c.badPack[ci.PackBlobID]; bad {
			why = fmt.Sprintf("pack %s is %s", ci.PackBlobID, state)
			if c.reported == nil {
				c.reported = map[blob.ID]bool{}
			}
			c.reported[ci.PackBlobID] = true
		}
	}
	if why == "" && c.opts.ReadData > 0 && rand.Float64()*100 < c.opts.ReadData {
		if n, err := c.read(ctx, oid); err != nil {
			why = "file content unreadable: " + err.Error()
		} else {
			c.res.ReadFiles++
			c.res.ReadBytes += n
		}
	}
	c.seen[oid] = why
	if c.opts.Progress != nil {
		c.opts.Progress(c.res.Files, size)
	}
	return why
}

// read reads an object in full: every content is fetched from its pack,
// decrypted (authenticated) and checked against its hash.
func (c *checker) read(ctx context.Context, oid object.ID) (int64, error) {
	rd, err := c.r.rep.OpenObject(ctx, oid)
	if err != nil {
		return 0, err
	}
	defer rd.Close()
	return io.Copy(io.Discard, rd)
}

// scanIndex finds the packs the index points into that are missing, too
// short, or (for restore point records, each read) unreadable, and counts
// per pack the records lost.
func scanIndex(ctx context.Context, dr repo.DirectRepository, blobs map[blob.ID]int64, res *CheckResult) (badPack map[blob.ID]string, lostRecords map[blob.ID]int, err error) {
	// Index: contents whose pack is missing or too short.
	badPack = map[blob.ID]string{}
	records := map[content.ID]blob.ID{} // restore point records (manifest contents) → pack
	var mu sync.Mutex
	err = dr.ContentReader().IterateContents(ctx, content.IterateOptions{Parallel: 4}, func(ci content.Info) error {
		mu.Lock()
		defer mu.Unlock()
		res.Contents++
		size, ok := blobs[ci.PackBlobID]
		if ci.ContentID.HasPrefix() && ci.ContentID.Prefix() == manifest.ContentPrefix {
			records[ci.ContentID] = ci.PackBlobID
		}
		switch {
		case !ok:
			badPack[ci.PackBlobID] = "missing"
		case int64(ci.PackOffset)+int64(ci.PackedLength) > size:
			badPack[ci.PackBlobID] = fmt.Sprintf("truncated to %d bytes", size)
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("read the index: %w", err)
	}

	// Restore point records are few and small: read each, so one whose
	// pack is gone or damaged is counted, although its ID went with it.
	lostRecords = map[blob.ID]int{}
	for cid, pack := range records {
		if _, err := dr.ContentReader().GetContent(ctx, cid); err != nil {
			if ctx.Err() != nil {
				return nil, nil, ctx.Err()
			}
			lostRecords[pack]++
			if _, bad := badPack[pack]; !bad {
				badPack[pack] = "unreadable (" + err.Error() + ")"
			}
		}
	}

	return badPack, lostRecords, nil
}

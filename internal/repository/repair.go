package repository

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"

	"github.com/kopia/kopia/repo"
	"github.com/kopia/kopia/repo/blob"
	"github.com/kopia/kopia/repo/content"
	"github.com/kopia/kopia/repo/content/index"
	"github.com/kopia/kopia/repo/manifest"

	"github.com/lifeboat-backup/lifeboat/internal/secret"
)

// RepairOptions say how far a repair goes.
type RepairOptions struct {
	// DryRun finds what would be done, and changes nothing.
	DryRun bool
	// ReadData is passed to the check that follows the repair: only
	// reading finds bytes damaged inside a pack.
	ReadData float64
}

// RepairResult says what a repair did (or, dry, would do) and what is lost.
type RepairResult struct {
	DryRun bool `json:"dry_run"`
	// SetAside are the unreadable index blobs moved to QuarantinePrefix:
	// kept, not deleted, in case a tool can read more of them than kopia.
	SetAside []string `json:"set_aside,omitempty"`
	// Packs is how many packs were read to rebuild the index, Recovered
	// how many index entries they gave that the index lacked.
	Packs     int `json:"packs"`
	Recovered int `json:"recovered"`
	// UnreadablePacks are packs whose own index could not be read; their
	// contents stay lost.
	UnreadablePacks []string `json:"unreadable_packs,omitempty"`
	// LostRecords are the restore point records that could not be read,
	// dropped from the index: the points they described are lost.
	LostRecords []string `json:"lost_records,omitempty"`
	// Dropped counts the index entries of lost packs no point needs,
	// removed so that the index describes what storage holds.
	Dropped int `json:"dropped,omitempty"`
	// Check is the check run after the repair: the problems it still
	// finds are what is lost, each naming the points it hurts.
	Check CheckResult `json:"check"`
}

// QuarantinePrefix names the blobs a repair set aside. kopia ignores
// blobs with it: it is neither a pack, an index nor a format blob.
const QuarantinePrefix = "lifeboat-quarantine-"

var indexBlobRE = regexp.MustCompile(`error loading index blob (\S+?):`)

// badIndexBlob is the index blob an open failed on, or "".
func badIndexBlob(err error) string {
	if m := indexBlobRE.FindStringSubmatch(err.Error()); m != nil {
		return m[1]
	}
	return ""
}

// Repair brings a damaged repository back to what can be saved: each
// index blob that cannot be read is set aside (copied under
// QuarantinePrefix, then removed from the index set), and the index is
// rebuilt from the packs themselves, each of which carries an index of
// its own contents. Nothing that could be recovered is deleted. It then
// checks the repository, through a fresh cache, and returns what is lost.
func Repair(ctx context.Context, opts Options, ropts RepairOptions) (RepairResult, error) {
	res := RepairResult{DryRun: ropts.DryRun}
	loc, err := ParseLocation(opts.Location)
	if err != nil {
		return res, err
	}
	if err := checkPointInTime(opts, &loc); err != nil {
		return res, err
	}
	pw, _, err := resolvePassword(opts.Password, loc, false)
	if err != nil {
		return res, err
	}
	ctx = withKopiaLogs(ctx, opts.logger())
	// A fresh state directory: a cached index would hide the damage.
	parent := filepath.Dir(stateDir(opts.StateDir, opts.Location))
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return res, fmt.Errorf("repair: state directory: %w", err)
	}
	tmp, err := os.MkdirTemp(parent, "repair-")
	if err != nil {
		return res, fmt.Errorf("repair: state directory: %w", err)
	}
	defer os.RemoveAll(tmp)
	ropen := opts
	ropen.StateDir = tmp
	var r *Repository
	for range 1000 { // one round per bad index blob; bounded
		if r, err = open(ctx, ropen, loc, pw); err == nil {
			break
		}
		id := badIndexBlob(err)
		if !errors.Is(err, ErrDamaged) || id == "" {
			return res, err
		}
		res.SetAside = append(res.SetAside, id)
		if ropts.DryRun {
			// Without the blob set aside the repository cannot open, so a
			// dry run stops at what it would set aside first.
			return res, nil
		}
		if err := setAside(ctx, loc, blob.ID(id)); err != nil {
			return res, err
		}
	}
	if r == nil {
		return res, err
	}
	err = r.rebuildIndex(ctx, &res, ropts.DryRun)
	r.Close(context.WithoutCancel(ctx))
	if err != nil && !errors.Is(err, errDryRun) {
		return res, err
	}
	res.Check, err = Check(ctx, opts, CheckOptions{ReadData: ropts.ReadData})
	if err != nil && !errors.Is(err, ErrCheckFailed) {
		return res, fmt.Errorf("check after repair: %w", err)
	}
	if len(res.Check.Unneeded) > 0 && !ropts.DryRun {
		if err := dropUnneeded(ctx, ropen, loc, pw, &res); err != nil {
			return res, err
		}
		res.Check, err = Check(ctx, opts, CheckOptions{ReadData: ropts.ReadData})
		if err != nil && !errors.Is(err, ErrCheckFailed) {
			return res, fmt.Errorf("check after repair: %w", err)
		}
	}
	if err == nil && len(res.LostRecords) > 0 {
		err = fmt.Errorf("%w: %d restore point record(s) could not be read, and the points they described are lost", ErrCheckFailed, len(res.LostRecords))
	}
	return res, err
}

// dropUnneeded removes from the index the contents of the missing or
// damaged packs that no listed point needs (res.Check.Unneeded): what they
// held is lost already (the directories of a point whose record went with
// the same pack), and while indexed they keep every check failing. Should
// such a pack come back, a repair indexes it again.
func dropUnneeded(ctx context.Context, opts Options, loc Location, pw secret.Value, res *RepairResult) error {
	r, err := open(ctx, opts, loc, pw)
	if err != nil {
		return err
	}
	defer r.Close(context.WithoutCancel(ctx))
	dr, ok := r.rep.(repo.DirectRepository)
	if !ok {
		return errors.New("repair needs a direct repository connection")
	}
	packs := map[blob.ID]bool{}
	for _, p := range res.Check.Unneeded {
		packs[blob.ID(p)] = true
	}
	return repo.DirectWriteSession(ctx, dr, repo.WriteSessionOptions{Purpose: "lifeboat:repair"}, func(ctx context.Context, w repo.DirectRepositoryWriter) error {
		var ids []content.ID
		if err := w.ContentReader().IterateContents(ctx, content.IterateOptions{}, func(ci content.Info) error {
			if packs[ci.PackBlobID] {
				ids = append(ids, ci.ContentID)
			}
			return nil
		}); err != nil {
			return fmt.Errorf("repair: read the index: %w", err)
		}
		for _, id := range ids {
			if err := w.ContentManager().DeleteContent(ctx, id); err != nil {
				return fmt.Errorf("repair: drop content %v of a lost pack: %w", id, err)
			}
		}
		res.Dropped += len(ids)
		return nil
	})
}

// setAside copies an unreadable index blob under QuarantinePrefix, then
// deletes the original, which alone stops kopia from opening.
func setAside(ctx context.Context, loc Location, id blob.ID) error {
	st, err := loc.storage(ctx, false)
	if err != nil {
		return fmt.Errorf("repair: open storage: %w", err)
	}
	defer st.Close(ctx)
	var buf outBuffer
	if err := st.GetBlob(ctx, id, 0, -1, &buf); err != nil {
		return fmt.Errorf("repair: read index blob %s: %w", id, err)
	}
	if err := st.PutBlob(ctx, blob.ID(QuarantinePrefix)+id, bytesBlob(buf.Bytes()), blob.PutOptions{}); err != nil {
		return fmt.Errorf("repair: set index blob %s aside: %w", id, err)
	}
	if err := st.DeleteBlob(ctx, id); err != nil {
		return fmt.Errorf("repair: remove index blob %s: %w", id, err)
	}
	return nil
}

// rebuildIndex adds, from every pack's own index, the entries the
// repository's index lacks. Entries it has are left as they are: a
// content deleted later (a forgotten point) stays deleted, since its
// deletion is newer than the pack.
func (r *Repository) rebuildIndex(ctx context.Context, res *RepairResult, dryRun bool) error {
	dr, ok := r.rep.(repo.DirectRepository)
	if !ok {
		return errors.New("repair needs a direct repository connection")
	}
	return repo.DirectWriteSession(ctx, dr, repo.WriteSessionOptions{Purpose: "lifeboat:repair"}, func(ctx context.Context, w repo.DirectRepositoryWriter) error {
		var packs []blob.Metadata
		for _, prefix := range content.PackBlobIDPrefixes {
			if err := w.BlobReader().ListBlobs(ctx, prefix, func(m blob.Metadata) error {
				packs = append(packs, m)
				return nil
			}); err != nil {
				return fmt.Errorf("repair: list packs: %w", err)
			}
		}
		// Every entry the index has, deleted ones too: a pack's copy of a
		// deleted entry is older than its deletion, and no recovery.
		known := map[content.ID]bool{}
		if err := w.ContentReader().IterateContents(ctx, content.IterateOptions{IncludeDeleted: true}, func(ci content.Info) error {
			known[ci.ContentID] = true
			return nil
		}); err != nil {
			return fmt.Errorf("repair: read the index: %w", err)
		}
		for _, m := range packs {
			infos, err := w.ContentManager().RecoverIndexFromPackBlob(ctx, m.BlobID, m.Length, false)
			if err != nil {
				res.UnreadablePacks = append(res.UnreadablePacks, string(m.BlobID))
				continue
			}
			res.Packs++
			var missing []content.Info
			for _, ci := range infos {
				if !known[ci.ContentID] {
					missing = append(missing, ci)
				}
			}
			if len(missing) == 0 {
				continue
			}
			res.Recovered += len(missing)
			if !dryRun {
				// Commit re-reads the pack's index; only packs with
				// something missing pay for it.
				if _, err := w.ContentManager().RecoverIndexFromPackBlob(ctx, m.BlobID, m.Length, true); err != nil {
					return fmt.Errorf("repair: rebuild index from pack %s: %w", m.BlobID, err)
				}
			}
		}
		if err := dropLostRecords(ctx, w, res, dryRun); err != nil {
			return err
		}
		if dryRun {
			return errDryRun
		}
		return nil
	})
}

// dropLostRecords removes from the index the restore point records that
// cannot be read, even from the rebuilt index: their pack is gone or
// damaged, so nothing can bring them back, and while they are indexed
// kopia fails every write that loads the records (a backup's policy
// lookup). Their IDs go into res.LostRecords.
func dropLostRecords(ctx context.Context, w repo.DirectRepositoryWriter, res *RepairResult, dryRun bool) error {
	var ids []content.ID
	if err := w.ContentReader().IterateContents(ctx, content.IterateOptions{Range: index.PrefixRange(manifest.ContentPrefix)}, func(ci content.Info) error {
		ids = append(ids, ci.ContentID)
		return nil
	}); err != nil {
		return fmt.Errorf("repair: list restore point records: %w", err)
	}
	for _, id := range ids {
		if _, err := w.ContentReader().GetContent(ctx, id); err == nil || ctx.Err() != nil {
			continue
		}
		res.LostRecords = append(res.LostRecords, id.String())
		if dryRun {
			continue
		}
		if err := w.ContentManager().DeleteContent(ctx, id); err != nil {
			return fmt.Errorf("repair: drop lost restore point record %v: %w", id, err)
		}
	}
	return ctx.Err()
}

// errDryRun ends a dry run's write session without flushing it.
var errDryRun = errors.New("dry run")

// outBuffer is a blob.OutputBuffer over a bytes.Buffer.
type outBuffer struct{ bytes.Buffer }

func (b *outBuffer) Length() int { return b.Len() }

// bytesBlob is blob.Bytes over a byte slice.
type bytesBlob []byte

func (b bytesBlob) WriteTo(w io.Writer) (int64, error) {
	n, err := w.Write(b)
	return int64(n), err
}
func (b bytesBlob) Length() int { return len(b) }
func (b bytesBlob) Reader() io.ReadSeekCloser {
	return readSeekNopCloser{bytes.NewReader(b)}
}

type readSeekNopCloser struct{ *bytes.Reader }

func (readSeekNopCloser) Close() error { return nil }

// openPermissive opens a repository whose index has an unreadable blob,
// read-only, through kopia's permissive connection, which skips such
// blobs: the points the rest of the index describes list and restore, so
// one damaged blob costs only what it describes. Writers never take this
// path (kopia refuses to write through it): they get ErrDamaged and the
// hint to run Repair, which writes a whole index.
func openPermissive(ctx context.Context, config string, pw secret.Value, log *slog.Logger, bad string) (*Repository, error) {
	pconfig := config + ".permissive"
	if err := rewriteConfig(config, pconfig, true); err != nil {
		return nil, err
	}
	kdfHeap()
	rep, err := repo.Open(ctx, pconfig, pw.Reveal(), &repo.Options{
		OnFatalError: func(err error) { log.Error("repository fatal error", "err", err) },
	})
	if err != nil {
		return nil, fmt.Errorf("open repository read-only past the damaged index: %w", err)
	}
	log.Warn("the repository's index is damaged: restore points it described are missing until `lifeboat repair` rebuilds it", "unreadable_index_blob", bad)
	return &Repository{rep: rep, log: log, damaged: bad}, nil
}

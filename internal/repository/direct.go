package repository

import (
	"context"
	"fmt"
	"os"

	"github.com/kopia/kopia/fs"
	"github.com/kopia/kopia/repo"
	"github.com/kopia/kopia/repo/content"
	"github.com/kopia/kopia/repo/object"
	"github.com/kopia/kopia/snapshot/restore"
)

// A restored file's bytes went through kopia's object reader: the
// content, decrypted and decompressed, is copied into a new slice, that
// slice into another chunk-sized one the reader allocates and zeroes, and
// that into the copy buffer. A CPU profile of a 1 GiB restore put 24 % of
// its time in those copies and 7 % in zeroing. Read a content at a time,
// a file's bytes are copied once, by kopia, and written from there.
//
// Only the common shapes are read this way: a file of one content, or of
// one list of contents (kopia's indirect object). Anything else (a list
// of lists, object-level compression of old repositories) goes through
// the object reader as before.

// contentReader is what a restore reads contents with (GetContent
// decrypts, checks each content's hash and decompresses it), and what
// object.LoadIndexObject reads a list of contents with.
type contentReader interface {
	GetContent(ctx context.Context, id content.ID) ([]byte, error)
	ContentInfo(ctx context.Context, id content.ID) (content.Info, error)
	PrefetchContents(ctx context.Context, ids []content.ID, hint string) []content.ID
}

// contentsOf is r's content reader, or nil when r is not a direct
// repository (a repository server's client).
func contentsOf(r repo.Repository) contentReader {
	if d, ok := r.(repo.DirectRepository); ok {
		if cr, ok := d.ContentReader().(contentReader); ok {
			return cr
		}
	}
	return nil
}

// piece is one content of a file, in order.
type piece struct {
	id     content.ID
	length int64
}

// piecesOf lists the contents f is made of, or ok false when f is not one
// of the shapes read directly.
func (o *output) piecesOf(ctx context.Context, f fs.File) (_ []piece, ok bool, _ error) {
	h, isObj := f.(object.HasObjectID)
	if o.contents == nil || !isObj {
		return nil, false, nil
	}
	oid := h.ObjectID()
	if id, compressed, direct := oid.ContentID(); direct {
		if compressed {
			return nil, false, nil
		}
		return []piece{{id, f.Size()}}, true, nil
	}
	index, indirect := oid.IndexObjectID()
	if !indirect {
		return nil, false, nil
	}
	entries, err := object.LoadIndexObject(ctx, o.contents, index)
	if err != nil {
		return nil, false, fmt.Errorf("read the list of contents of %s: %w", f.Name(), err)
	}
	pieces := make([]piece, 0, len(entries))
	var at int64
	for _, e := range entries {
		id, compressed, direct := e.Object.ContentID()
		if !direct || compressed || e.Start != at || e.Length < 0 {
			return nil, false, nil
		}
		pieces = append(pieces, piece{id, e.Length})
		at += e.Length
	}
	return pieces, true, nil
}

// copyPieces writes f's contents into w, one at a time, as copyContent
// does with what the object reader gives. It reports whether it handled
// f; when it did not, nothing was written.
func (o *output) copyPieces(ctx context.Context, w *os.File, f fs.File, cb restore.FileWriteProgress) (bool, error) {
	pieces, ok, err := o.piecesOf(ctx, f)
	if err != nil || !ok {
		return false, err
	}
	var off, end, flushed int64
	for _, p := range pieces {
		if err := ctx.Err(); err != nil {
			return true, err
		}
		b, err := o.contents.GetContent(ctx, p.id)
		if err != nil {
			return true, fmt.Errorf("read content %v of %s: %w", p.id, f.Name(), err)
		}
		if int64(len(b)) != p.length {
			return true, fmt.Errorf("content %v of %s holds %d bytes, want %d", p.id, f.Name(), len(b), p.length)
		}
		e, err := o.writeSparse(w, b, off)
		if err != nil {
			return true, err
		}
		end = max(end, e)
		off += int64(len(b))
		flushed = startWriteback(w, flushed, off)
		if cb != nil {
			cb(int64(len(b)))
		}
	}
	return true, o.finishFile(w, f, off, end, flushed)
}

package portal

import (
	"context"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
)

// Import reads a folder of messages in the KS Fiks Innsyn barnevern format
// and ingests them exactly as the API would, one transaction per file, for
// migration and tests (`portal import DIR`). The layout mirrors the API's
// paths; a file may carry a readable label before its meldingId:
//
//	mapper/[LABEL.]MELDINGID.json               PUT /api/v1/mapper/MELDINGID
//	journalposter/[LABEL.]MELDINGID.json        PUT /api/v1/journalposter/MELDINGID
//	journalposter/[LABEL.]MELDINGID.N.EXT       PUT /api/v1/journalposter/MELDINGID/dokumenter/N
//
// Folders come first, then journal posts, then documents, each in name
// order. Importing the same folder again changes nothing.
func Import(ctx context.Context, in *Ingest, fsys fs.FS) (ImportReport, error) {
	var r ImportReport
	mapper, err := fs.Glob(fsys, "mapper/*.json")
	if err != nil {
		return r, err
	}
	posts, err := fs.Glob(fsys, "journalposter/*")
	if err != nil {
		return r, err
	}
	sort.Strings(mapper)
	sort.Strings(posts)
	if len(mapper) == 0 && len(posts) == 0 {
		return r, fmt.Errorf("import: no mapper/*.json or journalposter/* files found")
	}
	// put ingests one JSON file with put, as the API's PUT would.
	put := func(name string, put func(context.Context, string, []byte) (PutResult, error)) error {
		id, ok := importID(name, ".json")
		if !ok {
			return fmt.Errorf("import %s: the name must end in MELDINGID.json", name)
		}
		body, err := fs.ReadFile(fsys, name)
		if err != nil {
			return err
		}
		res, err := put(ctx, id, body)
		if err != nil {
			return fmt.Errorf("import %s: %w", name, err)
		}
		r.count(res.Result)
		return nil
	}
	for _, name := range mapper {
		if err := put(name, in.PutMappe); err != nil {
			return r, err
		}
	}
	type doc struct {
		name, meldingID string
		index           int
	}
	var docs []doc
	for _, name := range posts {
		if strings.HasSuffix(name, ".json") {
			if err := put(name, in.PutJournalpost); err != nil {
				return r, err
			}
			continue
		}
		// LABEL.MELDINGID.N.EXT
		base := strings.TrimSuffix(path.Base(name), path.Ext(name))
		dot := strings.LastIndexByte(base, '.')
		if dot < 0 {
			return r, fmt.Errorf("import %s: a document's name must end in MELDINGID.N.EXT", name)
		}
		n, err := strconv.Atoi(base[dot+1:])
		id, ok := importID(base[:dot], "")
		if err != nil || !ok || n < 0 {
			return r, fmt.Errorf("import %s: a document's name must end in MELDINGID.N.EXT", name)
		}
		docs = append(docs, doc{name, id, n})
	}
	for _, d := range docs {
		b, err := fs.ReadFile(fsys, d.name)
		if err != nil {
			return r, err
		}
		ct := "application/pdf"
		if !strings.HasSuffix(d.name, ".pdf") {
			ct = "text/plain; charset=utf-8"
		}
		// The bytes are local: their digest is computed, not claimed.
		if _, err := in.PutContent(ctx, d.meldingID, d.index, Content{Type: ct, Bytes: b}); err != nil {
			return r, fmt.Errorf("import %s: %w", d.name, err)
		}
		r.Documents++
	}
	return r, nil
}

// importID takes the meldingId from a file name: the last dot-separated
// part before suffix.
func importID(name, suffix string) (string, bool) {
	base := strings.TrimSuffix(path.Base(name), suffix)
	if i := strings.LastIndexByte(base, '.'); i >= 0 {
		base = base[i+1:]
	}
	base = strings.ToLower(base)
	return base, validMeldingID(base)
}

// ImportReport counts what an import did.
type ImportReport struct {
	Created, Updated, Unchanged, Documents int
}

func (r *ImportReport) count(result string) {
	switch result {
	case "created":
		r.Created++
	case "updated":
		r.Updated++
	default:
		r.Unchanged++
	}
}

func (r ImportReport) String() string {
	return fmt.Sprintf("%d created, %d updated, %d unchanged, %d documents", r.Created, r.Updated, r.Unchanged, r.Documents)
}

package export

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
)

// Manifest describes an export: what was asked for, what was written and
// how subjects were pseudonymised. It is written as manifest.json next to
// the tables. It never holds the pseudonym key, and holds device ids only
// when the export includes them.
type Manifest struct {
	Tool    string `json:"tool"`
	Version string `json:"version"`
	Created string `json:"created_utc"`
	Source  string `json:"source"`
	Filters struct {
		From string `json:"from_utc"`
		To   string `json:"to_utc"`
		// Devices is the device filter; with IncludeDevice off it is
		// replaced by the pseudonyms of those devices in DeviceSubjects.
		Devices        []string `json:"devices,omitempty"`
		DeviceSubjects []string `json:"device_subjects,omitempty"`
		Subjects       []string `json:"subjects,omitempty"`
		Kinds          []string `json:"kinds,omitempty"`
	} `json:"filters"`
	Nights struct {
		StartHour int    `json:"start_hour"`
		TimeZone  string `json:"time_zone"`
	} `json:"nights"`
	Window *struct {
		BeforeS float64 `json:"before_s"`
		AfterS  float64 `json:"after_s"`
	} `json:"envelope_window,omitempty"`
	Pseudonym struct {
		Scheme string `json:"scheme"`
		KeyID  string `json:"key_id"`
	} `json:"pseudonym"`
	IncludeDevice bool     `json:"include_device"`
	IncludeNotes  bool     `json:"include_notes"`
	Formats       []Format `json:"formats"`
	// Rows counts the rows of each table (the same in every format).
	Rows struct {
		Events   int64 `json:"events"`
		Nights   int64 `json:"nights"`
		Envelope int64 `json:"envelope"`
	} `json:"rows"`
	EDFFiles int64 `json:"edf_files"`
	// SkippedRows counts source rows that could not be read (malformed).
	SkippedRows int64          `json:"skipped_source_rows"`
	Files       []ManifestFile `json:"files"`
}

// ManifestFile is one file of the export.
type ManifestFile struct {
	Path   string `json:"path"`
	Table  string `json:"table,omitempty"`
	Format Format `json:"format"`
	Rows   int64  `json:"rows"`
	Bytes  int64  `json:"bytes"`
}

// newManifest records the options.
func newManifest(opt *Options, src Source, formats []Format) *Manifest {
	m := &Manifest{Tool: "crampwatch export", Version: opt.Version, Source: src.Name(), Formats: formats}
	m.Created = opt.Now().UTC().Format(timeLayout)
	m.Filters.From = opt.From.Format(timeLayout)
	m.Filters.To = opt.To.Format(timeLayout)
	if opt.IncludeDevice {
		m.Filters.Devices = opt.Devices
	} else {
		for _, d := range opt.Devices {
			m.Filters.DeviceSubjects = append(m.Filters.DeviceSubjects, opt.Pseudonyms.Subject(d))
		}
	}
	m.Filters.Subjects = opt.Subjects
	for _, k := range opt.Kinds {
		m.Filters.Kinds = append(m.Filters.Kinds, string(k))
	}
	m.Nights.StartHour = opt.Nights.StartHour
	m.Nights.TimeZone = opt.Nights.loc().String()
	if w := opt.Window; w != nil {
		m.Window = &struct {
			BeforeS float64 `json:"before_s"`
			AfterS  float64 `json:"after_s"`
		}{w.Before.Seconds(), w.After.Seconds()}
	}
	m.Pseudonym.Scheme = PseudonymScheme
	m.Pseudonym.KeyID = opt.Pseudonyms.KeyID()
	m.IncludeDevice, m.IncludeNotes = opt.IncludeDevice, opt.IncludeNotes
	return m
}

func (m *Manifest) count(n counts, skipped int64) {
	m.Rows.Events, m.Rows.Nights, m.Rows.Envelope = n.events, n.nights, n.envelope
	m.EDFFiles = n.edfFiles
	m.SkippedRows = skipped
}

// Run exports into a new directory dir (which must not exist): for each
// tabular format, events.<ext>, nights.<ext> and, with a window,
// envelope.<ext>; for EDF+, one <subject>_<night>.edf per subject-night;
// and manifest.json. Everything is written into a temporary directory
// beside dir, synced, and renamed to dir only when complete: a failed or
// cancelled export (ctx) leaves nothing behind. Files are readable by
// their owner only (0600): they hold health data.
//
// If opt.Progress is set, a progress bar is drawn there; callers pass
// stderr only when it is a terminal.
func Run(ctx context.Context, src Source, dir string, formats []Format, opt Options) (m *Manifest, err error) {
	if err := opt.check(src); err != nil {
		return nil, err
	}
	if len(formats) == 0 {
		return nil, errors.New("export: no format")
	}
	slices.Sort(formats)
	formats = slices.Compact(formats)
	if _, err := os.Lstat(dir); err == nil {
		return nil, fmt.Errorf("export: %s already exists", dir)
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("export: %w", err)
	}
	dir = filepath.Clean(dir)
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "."+filepath.Base(dir)+".partial-")
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	var files []*os.File
	defer func() {
		for _, f := range files {
			f.Close()
		}
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	create := func(name string) (*os.File, error) {
		f, err := os.OpenFile(filepath.Join(tmp, name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, fmt.Errorf("export: %w", err)
		}
		files = append(files, f)
		return f, nil
	}

	m = newManifest(&opt, src, formats)
	meta := manifestMeta(m)
	to := opt.tableOptions()
	var sinks []sink
	var edf *edfSink
	type tableFile struct {
		file   *os.File
		table  string
		format Format
	}
	var tables []tableFile
	for _, f := range formats {
		if f == FormatEDF {
			if edf, err = newEDFSink(tmp, windowOrZero(opt.Window), opt.EnvelopeRate, nil); err != nil {
				return nil, err
			}
			sinks = append(sinks, edf)
			continue
		}
		ts := &tableSink{}
		ef, err := create(TableEvents + "." + f.Ext())
		if err != nil {
			return nil, err
		}
		if ts.events, err = newRowWriter(f, ef, TableEvents, eventColumns(to), meta); err != nil {
			return nil, err
		}
		nf, err := create(TableNights + "." + f.Ext())
		if err != nil {
			return nil, err
		}
		if ts.nights, err = newRowWriter(f, nf, TableNights, nightColumns(to), meta); err != nil {
			return nil, err
		}
		tables = append(tables, tableFile{ef, TableEvents, f}, tableFile{nf, TableNights, f})
		if opt.Window != nil {
			wf, err := create(TableEnvelope + "." + f.Ext())
			if err != nil {
				return nil, err
			}
			if ts.envelope, err = newRowWriter(f, wf, TableEnvelope, windowColumns(to), meta); err != nil {
				return nil, err
			}
			tables = append(tables, tableFile{wf, TableEnvelope, f})
		}
		sinks = append(sinks, ts)
	}
	if edf != nil {
		defer edf.abort()
	}
	x := newExporter(&opt, src, sinks)
	if opt.Progress != nil {
		x.prog = startProgress(opt.Progress, opt.From, opt.To)
		defer func() { x.prog.stop(err == nil) }()
	}
	if err = x.run(ctx); err != nil {
		return nil, err
	}
	if edf != nil {
		x.n.edfFiles = int64(edf.Files())
	}
	m.count(x.n, x.q.skipped)
	for _, t := range tables {
		rows := map[string]int64{TableEvents: x.n.events, TableNights: x.n.nights, TableEnvelope: x.n.envelope}[t.table]
		if err = t.file.Sync(); err != nil {
			return nil, fmt.Errorf("export: %w", err)
		}
		st, err := t.file.Stat()
		if err != nil {
			return nil, fmt.Errorf("export: %w", err)
		}
		m.Files = append(m.Files, ManifestFile{Path: filepath.Base(t.file.Name()), Table: t.table, Format: t.format, Rows: rows, Bytes: st.Size()})
	}
	if edf != nil {
		entries, err := os.ReadDir(tmp)
		if err != nil {
			return nil, fmt.Errorf("export: %w", err)
		}
		for _, e := range entries {
			if filepath.Ext(e.Name()) != ".edf" {
				continue
			}
			info, err := e.Info()
			if err != nil {
				return nil, fmt.Errorf("export: %w", err)
			}
			m.Files = append(m.Files, ManifestFile{Path: e.Name(), Format: FormatEDF, Bytes: info.Size()})
		}
	}
	mf, err := create("manifest.json")
	if err != nil {
		return nil, err
	}
	enc := json.NewEncoder(mf)
	enc.SetIndent("", "  ")
	if err = enc.Encode(m); err != nil {
		return nil, fmt.Errorf("export: manifest: %w", err)
	}
	if err = mf.Sync(); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	if err = ctx.Err(); err != nil {
		return nil, err
	}
	for _, f := range files {
		if cerr := f.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("export: %w", cerr)
		}
	}
	files = nil
	if err != nil {
		return nil, err
	}
	if err = os.Rename(tmp, dir); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	syncDir(filepath.Dir(dir))
	return m, nil
}

// syncDir makes a rename durable; failure only weakens durability, so it
// is not reported.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

func windowOrZero(w *Window) Window {
	if w == nil {
		return Window{}
	}
	return *w
}

// manifestMeta is the Parquet key-value metadata: the manifest as far as
// it is known before writing (no counts), so a lone Parquet file still
// says where it came from.
func manifestMeta(m *Manifest) map[string]string {
	b, err := json.Marshal(m)
	if err != nil {
		return nil
	}
	return map[string]string{"crampwatch.export": string(b)}
}

// Stream writes one table in one tabular format to w as it is produced,
// for the HTTP handler: nothing is held but the row being written. It
// returns the manifest (with no Files) when done. On error, what was
// written to w is incomplete and the caller must make that visible (the
// handler aborts the response).
func Stream(ctx context.Context, src Source, w io.Writer, table string, format Format, opt Options) (*Manifest, error) {
	if table != TableEnvelope {
		// Windows cost a query per event: only fetch them for their table.
		opt.Window = nil
	}
	if err := opt.check(src); err != nil {
		return nil, err
	}
	if format == FormatEDF {
		return nil, errors.New("export: EDF+ is not a table; use StreamEDF")
	}
	m := newManifest(&opt, src, []Format{format})
	meta := manifestMeta(m)
	to := opt.tableOptions()
	ts := &tableSink{}
	var err error
	switch table {
	case TableEvents:
		ts.events, err = newRowWriter(format, w, table, eventColumns(to), meta)
	case TableNights:
		ts.nights, err = newRowWriter(format, w, table, nightColumns(to), meta)
	case TableEnvelope:
		if opt.Window == nil {
			return nil, errors.New("export: the envelope table needs a window")
		}
		ts.envelope, err = newRowWriter(format, w, table, windowColumns(to), meta)
	default:
		return nil, fmt.Errorf("export: table %q: want events, nights or envelope", table)
	}
	if err != nil {
		return nil, err
	}
	x := newExporter(&opt, src, []sink{ts})
	if err := x.run(ctx); err != nil {
		return nil, err
	}
	m.count(x.n, x.q.skipped)
	return m, nil
}

// StreamEDF writes the EDF+ files of an export one by one as they are
// completed: each is built in tmpDir, passed to file (which must copy it
// and may then return), and removed. It returns the manifest (Files lists
// the EDF+ files by name).
func StreamEDF(ctx context.Context, src Source, tmpDir string, opt Options, file func(name string, r io.Reader) error) (*Manifest, error) {
	if err := opt.check(src); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(tmpDir, "crampwatch-export-")
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	defer os.RemoveAll(dir)
	m := newManifest(&opt, src, []Format{FormatEDF})
	done := func(path string) error {
		f, err := os.Open(path)
		if err != nil {
			return fmt.Errorf("export: %w", err)
		}
		defer os.Remove(path)
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return fmt.Errorf("export: %w", err)
		}
		if err := file(filepath.Base(path), f); err != nil {
			return err
		}
		m.Files = append(m.Files, ManifestFile{Path: filepath.Base(path), Format: FormatEDF, Bytes: st.Size()})
		return nil
	}
	edf, err := newEDFSink(dir, windowOrZero(opt.Window), opt.EnvelopeRate, done)
	if err != nil {
		return nil, err
	}
	defer edf.abort()
	x := newExporter(&opt, src, []sink{edf})
	if err := x.run(ctx); err != nil {
		return nil, err
	}
	x.n.edfFiles = int64(edf.Files())
	m.count(x.n, x.q.skipped)
	return m, nil
}

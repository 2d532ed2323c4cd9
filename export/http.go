package export

import (
	"archive/zip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/crampwatch/crampwatch/detect"
)

// HandlerConfig configures the export endpoint.
type HandlerConfig struct {
	// Source is where exports read from; required.
	Source Source
	// Pseudonyms derives subjects; required.
	Pseudonyms *Pseudonymizer
	// Nights is the default night cut; requests may override the hour
	// (night_start_hour) and zone (tz).
	Nights Nights
	// Version is recorded in manifests.
	Version string
	// TempDir holds EDF+ files while they are built; empty: os.TempDir().
	TempDir string
	// MaxConcurrent bounds exports running at once (each holds a query on
	// InfluxDB); more are refused with 429. Default 2.
	MaxConcurrent int
	// Logger logs each export; nil: discarded.
	Logger *slog.Logger
	// Now is the clock for a missing "to"; nil: time.Now.
	Now func() time.Time
}

// Handler serves exports over HTTP. Mount it behind the bearer token of
// httpapi:
//
//	api.HandleAuth("GET /api/v1/export/{table}", h)
//
// GET /api/v1/export/{table} with table events, nights or envelope streams
// that table (format=csv, jsonl or parquet); table edf streams a zip of
// EDF+ files, one per subject-night, and manifest.json. docs/export.md
// lists the query parameters. The manifest of a table comes in the HTTP
// trailer X-Crampwatch-Manifest. An export that fails once the response
// has started is aborted (the client sees a broken transfer, never a
// complete-looking file).
type Handler struct {
	cfg HandlerConfig
	sem chan struct{}
}

// NewHandler returns the export handler.
func NewHandler(cfg HandlerConfig) (*Handler, error) {
	if cfg.Source == nil || cfg.Pseudonyms == nil {
		return nil, errors.New("export: handler needs a source and a pseudonym key")
	}
	if err := cfg.Nights.Validate(); err != nil {
		return nil, err
	}
	if cfg.MaxConcurrent <= 0 {
		cfg.MaxConcurrent = 2
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Handler{cfg: cfg, sem: make(chan struct{}, cfg.MaxConcurrent)}, nil
}

// options builds export options from the query string.
func (h *Handler) options(r *http.Request) (Options, Format, error) {
	q := r.URL.Query()
	opt := Options{
		Nights:     h.cfg.Nights,
		Pseudonyms: h.cfg.Pseudonyms,
		Version:    h.cfg.Version,
		Logger:     h.cfg.Logger,
	}
	var errs []error
	format := FormatCSV
	if f := q.Get("format"); f != "" {
		var err error
		if format, err = ParseFormat(f); err != nil {
			errs = append(errs, err)
		}
	}
	if v := q.Get("tz"); v != "" {
		loc, err := time.LoadLocation(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("tz %q: %w", v, err))
		} else {
			opt.Nights.Location = loc
		}
	}
	if v := q.Get("night_start_hour"); v != "" {
		hour, err := strconv.Atoi(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("night_start_hour %q: not a number", v))
		}
		opt.Nights.StartHour = hour
	}
	var err error
	if v := q.Get("from"); v == "" {
		errs = append(errs, errors.New("from is required"))
	} else if opt.From, err = opt.Nights.ParseTime(v, false); err != nil {
		errs = append(errs, err)
	}
	opt.To = h.cfg.Now().UTC()
	if v := q.Get("to"); v != "" {
		if opt.To, err = opt.Nights.ParseTime(v, true); err != nil {
			errs = append(errs, err)
		}
	}
	opt.Devices = splitList(q["device"])
	opt.Subjects = splitList(q["subject"])
	for _, k := range splitList(q["kind"]) {
		opt.Kinds = append(opt.Kinds, detect.Kind(k))
	}
	for _, b := range []struct {
		name string
		dst  *bool
	}{{"include_device", &opt.IncludeDevice}, {"include_notes", &opt.IncludeNotes}} {
		if v := q.Get(b.name); v != "" {
			if *b.dst, err = strconv.ParseBool(v); err != nil {
				errs = append(errs, fmt.Errorf("%s %q: want true or false", b.name, v))
			}
		}
	}
	before, after := q.Get("window_before"), q.Get("window_after")
	if before != "" || after != "" {
		w := &Window{}
		if w.Before, err = parseSeconds(before); err != nil {
			errs = append(errs, fmt.Errorf("window_before: %w", err))
		}
		if w.After, err = parseSeconds(after); err != nil {
			errs = append(errs, fmt.Errorf("window_after: %w", err))
		}
		opt.Window = w
	}
	if len(errs) > 0 {
		return opt, format, errors.Join(errs...)
	}
	return opt, format, opt.check(h.cfg.Source)
}

// parseSeconds reads a duration as Go writes it ("30s") or in seconds ("30").
func parseSeconds(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		return d, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 || f > 3600 {
		return 0, fmt.Errorf("%q: want seconds (0-3600) or a duration like 30s", s)
	}
	return time.Duration(f * float64(time.Second)), nil
}

// splitList accepts repeated parameters and comma-separated lists.
func splitList(vs []string) []string {
	var out []string
	for _, v := range vs {
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
	}
	return out
}

// startedWriter tracks whether any byte of the body went out.
type startedWriter struct {
	http.ResponseWriter
	started bool
}

func (w *startedWriter) Write(p []byte) (int, error) {
	if len(p) > 0 {
		w.started = true
	}
	return w.ResponseWriter.Write(p)
}

// ServeHTTP runs one export.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	table := r.PathValue("table")
	if table == "" {
		table = r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:]
	}
	if table != TableEvents && table != TableNights && table != TableEnvelope && table != "edf" {
		http.Error(w, "unknown table: want events, nights, envelope or edf", http.StatusNotFound)
		return
	}
	opt, format, err := h.options(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if table == TableEnvelope && opt.Window == nil {
		http.Error(w, "the envelope table needs window_before and/or window_after", http.StatusBadRequest)
		return
	}
	select {
	case h.sem <- struct{}{}:
		defer func() { <-h.sem }()
	default:
		w.Header().Set("Retry-After", "10")
		http.Error(w, "too many exports running", http.StatusTooManyRequests)
		return
	}
	start := time.Now()
	sw := &startedWriter{ResponseWriter: w}
	var m *Manifest
	if table == "edf" {
		m, err = h.serveEDF(r, sw, opt)
	} else {
		m, err = h.serveTable(r, sw, table, format, opt)
	}
	if err != nil {
		h.cfg.Logger.Warn("export failed", "table", table, "format", format, "err", err, "started", sw.started)
		if !sw.started {
			for _, k := range []string{"Content-Disposition", "Trailer", "X-Content-Type-Options"} {
				w.Header().Del(k)
			}
			http.Error(w, "export failed: "+err.Error(), http.StatusBadGateway)
			return
		}
		// Half a file must not pass for a whole one: break the transfer.
		panic(http.ErrAbortHandler)
	}
	h.cfg.Logger.Info("export served", "table", table, "format", format,
		"events", m.Rows.Events, "nights", m.Rows.Nights, "envelope", m.Rows.Envelope,
		"edf_files", m.EDFFiles, "duration", time.Since(start))
}

func (h *Handler) serveTable(r *http.Request, w *startedWriter, table string, format Format, opt Options) (*Manifest, error) {
	w.Header().Set("Content-Type", format.ContentType())
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s.%s"`, table, format.Ext()))
	w.Header().Set("Trailer", "X-Crampwatch-Manifest")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	m, err := Stream(r.Context(), h.cfg.Source, w, table, format, opt)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	w.Header().Set("X-Crampwatch-Manifest", string(b))
	return m, nil
}

func (h *Handler) serveEDF(r *http.Request, w *startedWriter, opt Options) (*Manifest, error) {
	w.Header().Set("Content-Type", "application/zip")
	w.Header().Set("Content-Disposition", `attachment; filename="crampwatch-edf.zip"`)
	zw := zip.NewWriter(w)
	now := h.cfg.Now()
	m, err := StreamEDF(r.Context(), h.cfg.Source, h.cfg.TempDir, opt, func(name string, f io.Reader) error {
		zf, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Deflate, Modified: now})
		if err != nil {
			return err
		}
		_, err = io.Copy(zf, f)
		return err
	})
	if err != nil {
		return nil, err
	}
	zf, err := zw.CreateHeader(&zip.FileHeader{Name: "manifest.json", Method: zip.Deflate, Modified: now})
	if err != nil {
		return nil, err
	}
	enc := json.NewEncoder(zf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(m); err != nil {
		return nil, err
	}
	return m, zw.Close()
}

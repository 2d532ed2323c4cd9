package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/crampwatch/crampwatch/config"
	"github.com/crampwatch/crampwatch/detect"
	"github.com/crampwatch/crampwatch/export"
	"github.com/crampwatch/crampwatch/store"
)

// listFlag collects a repeatable flag that also takes comma-separated lists.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(s string) error {
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			*l = append(*l, v)
		}
	}
	return nil
}

// exportConfig is everything "crampwatch export" can be told.
type exportConfig struct {
	configFile string
	logLevel   string
	out        string
	formats    string
	from, to   string
	devices    listFlag
	subjects   listFlag
	kinds      listFlag
	nightHour  int
	timeZone   string
	before     time.Duration
	after      time.Duration
	device     bool
	notes      bool
	keyFile    string
	progress   string

	influx          store.Config
	influxTokenFile string
	journalPath     string
}

func runExport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := exportConfig{nightHour: export.DefaultNightStartHour, timeZone: "Local", formats: "csv", progress: "auto", logLevel: "warn"}
	fs := flag.NewFlagSet("crampwatch export", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: crampwatch export --out DIR --from TIME [flags]")
		fmt.Fprintln(stderr, "\nExports events, per-night summaries and (with a window) the envelope around events, with")
		fmt.Fprintln(stderr, "pseudonymous subjects, as CSV, JSON Lines, Parquet and/or EDF+. Reads InfluxDB when")
		fmt.Fprintln(stderr, "--influx-url is set, else the journal. The pseudonym key comes from "+export.KeyEnv)
		fmt.Fprintln(stderr, "or --pseudonym-key-file. Times are RFC 3339 or a night's date (YYYY-MM-DD). docs/export.md")
		fmt.Fprintln(stderr, "documents every column.")
		fs.PrintDefaults()
	}
	fs.StringVar(&c.configFile, "config", "", "YAML file of settings (keys are flag names); env CRAMPWATCH_CONFIG")
	fs.StringVar(&c.logLevel, "log-level", c.logLevel, "debug, info, warn or error")
	fs.StringVar(&c.out, "out", "", "output directory, created by the export (must not exist)")
	fs.StringVar(&c.formats, "format", c.formats, "comma-separated formats: csv, jsonl, parquet, edf")
	fs.StringVar(&c.from, "from", "", "first onset to export: RFC 3339, or YYYY-MM-DD for the start of that night (required)")
	fs.StringVar(&c.to, "to", "", "end of the export: RFC 3339 (exclusive), or YYYY-MM-DD for the end of that night; default now")
	fs.Var(&c.devices, "device", "export only this device id (repeatable, or comma-separated)")
	fs.Var(&c.subjects, "subject", "export only this subject pseudonym (repeatable, or comma-separated)")
	fs.Var(&c.kinds, "kind", "events table: only this kind: cramp, plm, movement, artifact (repeatable); summaries count all")
	fs.IntVar(&c.nightHour, "night-start-hour", c.nightHour, "local hour at which a night begins (0-23)")
	fs.StringVar(&c.timeZone, "time-zone", c.timeZone, "IANA time zone of the nights, e.g. Europe/Berlin")
	fs.DurationVar(&c.before, "window-before", 0, "export the envelope from this long before each event's onset (0 with --window-after 0: no windows)")
	fs.DurationVar(&c.after, "window-after", 0, "... until this long after each event's end")
	fs.BoolVar(&c.device, "include-device", false, "add device ids to the tables (off: subjects only)")
	fs.BoolVar(&c.notes, "include-notes", false, "add the diary's free-text notes")
	fs.StringVar(&c.keyFile, "pseudonym-key-file", "", "file holding the pseudonym key (default: env "+export.KeyEnv+")")
	fs.StringVar(&c.progress, "progress", c.progress, "progress bar on stderr: auto (when a terminal), always, never")
	c.influx = store.DefaultConfig()
	fs.StringVar(&c.influx.URL, "influx-url", "", "InfluxDB URL; empty: read the journal")
	fs.StringVar(&c.influx.Token, "influx-token", "", `InfluxDB token (secret; 1.8: "user:password"); prefer --influx-token-file`)
	fs.StringVar(&c.influxTokenFile, "influx-token-file", "", "file holding the InfluxDB token")
	fs.StringVar(&c.influx.Org, "influx-org", "", "InfluxDB organisation (ignored by 1.8)")
	fs.StringVar(&c.influx.Bucket, "influx-bucket", "", `InfluxDB bucket (1.8: "database/retention-policy")`)
	fs.StringVar(&c.journalPath, "journal", "crampwatch-journal.jsonl", "event journal to read when --influx-url is empty")
	// Device ids and notes leave only on an explicit command-line flag,
	// never through the environment or a config file: parse the command
	// line alone first to see what it says.
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	onCommandLine := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { onCommandLine[f.Name] = true })
	loader := config.Loader{FileFlag: "config", Secrets: []string{"influx-token"}}
	if err := loader.Parse(fs, args); err != nil {
		fmt.Fprintln(stderr, err)
		return errUsage
	}
	for _, name := range []string{"include-device", "include-notes"} {
		if fs.Lookup(name).Value.String() == "true" && !onCommandLine[name] {
			return fmt.Errorf("--%s must be given on the command line, not in %s or a config file", name, config.EnvName(name))
		}
	}
	if fs.NArg() != 0 || c.out == "" || c.from == "" {
		fs.Usage()
		return errUsage
	}
	log, err := newLogger(stderr, c.logLevel, "text")
	if err != nil {
		return err
	}

	loc, err := time.LoadLocation(c.timeZone)
	if err != nil {
		return fmt.Errorf("--time-zone: %w", err)
	}
	nights := export.Nights{StartHour: c.nightHour, Location: loc}
	if err := nights.Validate(); err != nil {
		return err
	}
	key, err := export.LoadKey(c.keyFile, nil)
	if err != nil {
		return err
	}
	pseud, err := export.NewPseudonymizer(key)
	if err != nil {
		return err
	}
	opt := export.Options{
		Nights: nights, Devices: c.devices, Subjects: c.subjects, IncludeDevice: c.device, IncludeNotes: c.notes,
		Pseudonyms: pseud, Version: version(), Logger: log,
	}
	if opt.From, err = nights.ParseTime(c.from, false); err != nil {
		return fmt.Errorf("--from: %w", err)
	}
	opt.To = time.Now().UTC()
	if c.to != "" {
		if opt.To, err = nights.ParseTime(c.to, true); err != nil {
			return fmt.Errorf("--to: %w", err)
		}
	}
	for _, k := range c.kinds {
		opt.Kinds = append(opt.Kinds, detect.Kind(k))
	}
	if c.before > 0 || c.after > 0 {
		opt.Window = &export.Window{Before: c.before, After: c.after}
	}
	var formats []export.Format
	for _, f := range strings.Split(c.formats, ",") {
		ff, err := export.ParseFormat(strings.TrimSpace(f))
		if err != nil {
			return fmt.Errorf("--format: %w", err)
		}
		formats = append(formats, ff)
	}
	switch c.progress {
	case "always":
		opt.Progress = stderr
	case "auto":
		if f, ok := stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			opt.Progress = stderr
		}
	case "never":
	default:
		return fmt.Errorf("--progress %q: want auto, always or never", c.progress)
	}

	var src export.Source
	if c.influx.URL != "" {
		if c.influx.Token, err = config.ReadSecret(c.influx.Token, c.influxTokenFile); err != nil {
			return fmt.Errorf("--influx-token-file: %w", err)
		}
		if c.influx.Bucket == "" {
			return errors.New("--influx-bucket is required with --influx-url")
		}
		c.influx.Logger = log
		db, err := store.New(c.influx, nil)
		if err != nil {
			return err
		}
		defer db.Close(context.Background())
		src = export.NewInfluxSource(db)
	} else {
		if _, err := os.Stat(c.journalPath); err != nil {
			return fmt.Errorf("no --influx-url, and the journal: %w", err)
		}
		src = export.NewJournalSource(c.journalPath)
	}
	m, err := export.Run(ctx, src, c.out, formats, opt)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return errors.New("cancelled: nothing was written")
		}
		return err
	}
	fmt.Fprintf(stdout, "exported %d events, %d nights, %d envelope points, %d EDF+ files from %s to %s\n",
		m.Rows.Events, m.Rows.Nights, m.Rows.Envelope, m.EDFFiles, m.Source, c.out)
	return nil
}

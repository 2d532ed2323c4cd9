package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/crampwatch/crampwatch/config"
	"github.com/crampwatch/crampwatch/export"
	"github.com/crampwatch/crampwatch/report"
	"github.com/crampwatch/crampwatch/store"
	"github.com/crampwatch/crampwatch/wire"
)

// reportConfig is everything "crampwatch report" can be told.
type reportConfig struct {
	configFile string
	logLevel   string
	night      string
	timeZone   string
	tz         string
	nightHour  int
	device     string
	subject    string
	keyFile    string
	showDevice bool
	window     time.Duration
	out        string

	influx          store.Config
	influxTokenFile string
	journalPath     string
}

func runReport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := reportConfig{nightHour: report.DefaultNightStartHour, timeZone: "Local", logLevel: "warn", window: report.DefaultWindow}
	fs := flag.NewFlagSet("crampwatch report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: crampwatch report (--device ID | --subject PSEUDONYM) [--night YYYY-MM-DD] [flags]")
		fmt.Fprintln(stderr, "\nWrites one night of one wearer as a picture (PNG) and a self-contained HTML page: the EMG")
		fmt.Fprintln(stderr, "envelope per muscle with cramps shaded and PLMs marked, a timeline of events, and the night's")
		fmt.Fprintln(stderr, "numbers. Reads InfluxDB when --influx-url is set, else the journal (events only). With a")
		fmt.Fprintln(stderr, "pseudonym key ("+export.KeyEnv+" or --pseudonym-key-file) the page names the subject")
		fmt.Fprintln(stderr, "pseudonym instead of the device id. docs/report.md explains every number.")
		fs.PrintDefaults()
	}
	fs.StringVar(&c.configFile, "config", "", "YAML file of settings (keys are flag names); env CRAMPWATCH_CONFIG")
	fs.StringVar(&c.logLevel, "log-level", c.logLevel, "debug, info, warn or error")
	fs.StringVar(&c.night, "night", "", "the night, by the local date it began (YYYY-MM-DD); default: last night")
	fs.StringVar(&c.timeZone, "time-zone", c.timeZone, "IANA time zone of the wearer, e.g. Europe/Berlin")
	fs.StringVar(&c.tz, "tz", "", "short for --time-zone")
	fs.IntVar(&c.nightHour, "night-start-hour", c.nightHour, "local hour at which a night begins (0-23)")
	fs.StringVar(&c.device, "device", "", "device id of the wearer")
	fs.StringVar(&c.subject, "subject", "", "subject pseudonym of the wearer (needs the pseudonym key), instead of --device")
	fs.StringVar(&c.keyFile, "pseudonym-key-file", "", "file holding the pseudonym key (default: env "+export.KeyEnv+")")
	fs.BoolVar(&c.showDevice, "show-device", false, "name the device id on the page even when a pseudonym key is set")
	fs.DurationVar(&c.window, "window", c.window, "envelope averaging window (whole seconds)")
	fs.StringVar(&c.out, "out", "", "output path without extension: writes OUT.png and OUT.html; default night-DATE")
	c.influx = store.DefaultConfig()
	fs.StringVar(&c.influx.URL, "influx-url", "", "InfluxDB URL; empty: read the journal")
	fs.StringVar(&c.influx.Token, "influx-token", "", `InfluxDB token (secret; 1.8: "user:password"); prefer --influx-token-file`)
	fs.StringVar(&c.influxTokenFile, "influx-token-file", "", "file holding the InfluxDB token")
	fs.StringVar(&c.influx.Org, "influx-org", "", "InfluxDB organisation (ignored by 1.8)")
	fs.StringVar(&c.influx.Bucket, "influx-bucket", "", `InfluxDB bucket (1.8: "database/retention-policy")`)
	fs.StringVar(&c.journalPath, "journal", "crampwatch-journal.jsonl", "event journal to read when --influx-url is empty")
	loader := config.Loader{FileFlag: "config", Secrets: []string{"influx-token"}}
	if err := loader.Parse(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		fmt.Fprintln(stderr, err)
		return errUsage
	}
	if fs.NArg() != 0 || (c.device == "") == (c.subject == "") {
		fmt.Fprintln(stderr, "crampwatch report: give exactly one of --device and --subject")
		fs.Usage()
		return errUsage
	}
	log, err := newLogger(stderr, c.logLevel, "text")
	if err != nil {
		return err
	}
	if c.tz != "" {
		c.timeZone = c.tz
	}
	loc, err := time.LoadLocation(c.timeZone)
	if err != nil {
		return fmt.Errorf("--time-zone: %w", err)
	}
	if c.nightHour < 0 || c.nightHour > 23 {
		return fmt.Errorf("--night-start-hour %d: want 0-23", c.nightHour)
	}
	if c.night == "" {
		c.night = report.LastNight(time.Now(), loc, c.nightHour)
	}
	if _, _, err := report.NightWindow(c.night, loc, c.nightHour); err != nil {
		return fmt.Errorf("--night: %w", err)
	}
	if c.device != "" && !wire.ValidDevice(c.device) {
		return fmt.Errorf("--device %q: want [A-Za-z0-9_-]{1,64}", c.device)
	}

	// The pseudonym is export's, so a report and an export name a wearer
	// alike. Without a key the page names the device.
	var pseud *export.Pseudonymizer
	if key, err := export.LoadKey(c.keyFile, nil); err == nil {
		if pseud, err = export.NewPseudonymizer(key); err != nil {
			return err
		}
	} else if c.subject != "" || c.keyFile != "" {
		return err
	}

	var src report.Source
	if c.influx.URL != "" {
		if c.influx.Token, err = config.ReadSecret(c.influx.Token, c.influxTokenFile); err != nil {
			return fmt.Errorf("--influx-token-file: %w", err)
		}
		if c.influx.Bucket == "" {
			return errors.New("--influx-bucket is required with --influx-url")
		}
		c.influx.Logger = log
		is, err := report.NewInfluxSource(c.influx)
		if err != nil {
			return err
		}
		defer is.Close(context.Background())
		src = is
	} else {
		if _, err := os.Stat(c.journalPath); err != nil {
			return fmt.Errorf("no --influx-url, and the journal: %w", err)
		}
		src = report.JournalSource{Path: c.journalPath}
	}

	device, who := c.device, c.device
	if c.subject != "" {
		device, err = report.FindDevice(ctx, src, c.night, loc, c.nightHour, func(d string) bool { return pseud.Subject(d) == c.subject })
		if err != nil {
			return fmt.Errorf("--subject %s: %w", c.subject, err)
		}
		who = c.subject
	} else if pseud != nil && !c.showDevice {
		who = pseud.Subject(device)
	}
	if c.out == "" {
		c.out = "night-" + c.night
	}
	opt := report.Options{
		Night: c.night, Location: loc, StartHour: c.nightHour, Device: device, Who: who, Window: c.window,
		PNGPath: c.out + ".png", HTMLPath: c.out + ".html",
	}
	r, err := report.Write(ctx, src, opt)
	if r == nil {
		return err
	}
	if err != nil {
		// Written, without the rows that could not be read; the page says so.
		log.Warn("report written with unreadable rows left out", "err", err)
	}
	s := r.Summary
	fmt.Fprintf(stdout, "night %s of %s: %d cramps, %d PLMs, %d movements; wrote %s and %s\n",
		c.night, who, s.Cramps, s.PLMs, s.Movements, opt.PNGPath, opt.HTMLPath)
	return nil
}

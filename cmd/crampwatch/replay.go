package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/crampwatch/crampwatch/detect"
	"github.com/crampwatch/crampwatch/edf"
	"github.com/crampwatch/crampwatch/eventpub"
	"github.com/crampwatch/crampwatch/ingest"
	"github.com/crampwatch/crampwatch/pipeline"
	"github.com/crampwatch/crampwatch/replay"
	"github.com/crampwatch/crampwatch/wire"
)

func runReplay(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("crampwatch replay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: crampwatch replay [flags] recording.csv|recording.edf   (- reads standard input)")
		fmt.Fprintln(stderr, "\nThe CSV header names an optional time column (time, t, timestamp or time_s: seconds,")
		fmt.Fprintln(stderr, "Unix or relative) and one column per channel labelled like the wire contract (calf_left).")
		fmt.Fprintln(stderr, "EDF and EDF+ signals labelled like a channel (\"EMG calf-left\") are replayed; map other")
		fmt.Fprintln(stderr, "labels with --channel 'LABEL=calf_left'.")
		fmt.Fprintln(stderr, "Events are printed as JSON Lines (the same form as the MQTT events topic).")
		fs.PrintDefaults()
	}
	var opt replay.Options
	var unit, start, device string
	var format string
	labels := labelFlag{}
	fs.Float64Var(&opt.Rate, "rate", 0, "sample rate in Hz; required without a time column (CSV only)")
	fs.StringVar(&unit, "unit", "uV", "unit of the samples: uV or mV (EDF: also V; overrides the header's dimension)")
	fs.StringVar(&start, "start", "", "time of the first sample (RFC 3339) when times are relative or absent; EDF: replaces the header's start")
	fs.StringVar(&device, "device", "replay", "device id reported in the events")
	fs.StringVar(&format, "format", "", "csv or edf (default: edf for a .edf file name, else csv)")
	fs.Var(labels, "channel", "EDF: map a signal label to a channel, 'EMG 1=calf_left' (repeatable)")
	strict := fs.Bool("strict", false, "stop at the first bad row instead of skipping it (CSV only)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errUsage
	}
	if format == "" {
		format = "csv"
		if strings.EqualFold(filepath.Ext(fs.Arg(0)), ".edf") {
			format = "edf"
		}
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var startAt time.Time
	if start != "" {
		t, err := time.Parse(time.RFC3339Nano, start)
		if err != nil {
			return fmt.Errorf("--start: %w", err)
		}
		startAt = t
	}
	if !wire.ValidDevice(device) {
		return fmt.Errorf("--device %q: want [A-Za-z0-9_-]{1,64}", device)
	}
	switch format {
	case "csv":
		if len(labels) > 0 {
			return errors.New("--channel is for EDF files; CSV headers name the channels")
		}
	case "edf":
		if set["rate"] {
			return errors.New("--rate is for CSV files: an EDF header gives the rate")
		}
	default:
		return fmt.Errorf("--format %q: want csv or edf", format)
	}
	in := io.Reader(os.Stdin)
	if name := fs.Arg(0); name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	}
	if format == "edf" {
		return replayEDF(ctx, in, labels, unit, set["unit"], startAt, device, stdout, stderr)
	}
	switch unit {
	case "uV":
		opt.Unit = wire.Microvolt
	case "mV":
		opt.Unit = wire.Millivolt
	default:
		return fmt.Errorf("--unit %q: want uV or mV", unit)
	}
	opt.Start = startAt
	// Bad rows are skipped and reported, so one corrupt line does not
	// throw away a night; --strict makes the first one fatal.
	var badRows int
	if !*strict {
		opt.BadRow = func(err error) {
			if badRows++; badRows <= maxBadRowsShown {
				fmt.Fprintf(stderr, "%v (row skipped)\n", err)
			}
		}
	}
	r, err := replay.NewCSVReader(in, opt)
	if err != nil {
		return err
	}
	defer func() {
		if badRows > 0 {
			fmt.Fprintf(stderr, "crampwatch replay: skipped %d bad rows\n", badRows)
		}
	}()
	return detectEvents(ctx, r, device, stdout)
}

// detectEvents runs the recording through the pipeline and prints its
// events as JSON Lines.
func detectEvents(ctx context.Context, r frameSource, device string, stdout io.Writer) error {
	out := bufio.NewWriter(stdout)
	defer out.Flush()
	sink := &jsonLinesSink{enc: json.NewEncoder(out)}
	pipe := pipeline.New(detect.DefaultConfig(), nil, slog.New(slog.DiscardHandler), sink)
	if err := replayFrames(ctx, r, device, pipe); err != nil {
		return err
	}
	pipe.EndStreams()
	if err := pipe.Close(ctx); err != nil {
		return err
	}
	return sink.err
}

// replayEDF replays an EDF or EDF+ file: its signals are mapped to
// channels by label (or by --channel), and units come from the header
// unless --unit says otherwise.
func replayEDF(ctx context.Context, in io.Reader, labels labelFlag, unit string, unitSet bool, start time.Time, device string, stdout, stderr io.Writer) error {
	opt := replay.EDFOptions{Labels: labels, Start: start}
	if unitSet {
		switch unit {
		case "uV", "µV":
			opt.Scale = 1
		case "mV":
			opt.Scale = 1000
		case "V":
			opt.Scale = 1e6
		default:
			return fmt.Errorf("--unit %q: want uV, mV or V", unit)
		}
	}
	r, err := replay.NewEDFReader(in, opt)
	if err != nil {
		return err
	}
	for label := range labels {
		if !slices.ContainsFunc(r.Header().Signals, func(s edf.Signal) bool { return s.Label == label }) {
			return fmt.Errorf("--channel %q: no signal with that label in the EDF file", label)
		}
	}
	if ign := r.Ignored(); len(ign) > 0 {
		fmt.Fprintf(stderr, "crampwatch replay: EDF signals not replayed (no channel; see --channel): %q\n", ign)
	}
	return detectEvents(ctx, r, device, stdout)
}

// labelFlag collects --channel 'EDF label=calf_left' mappings.
type labelFlag map[string]wire.Channel

func (l labelFlag) String() string {
	var parts []string
	for k, v := range l {
		parts = append(parts, k+"="+v.String())
	}
	slices.Sort(parts)
	return strings.Join(parts, ",")
}

func (l labelFlag) Set(s string) error {
	label, ch, ok := strings.Cut(s, "=")
	label = strings.TrimSpace(label)
	if !ok || label == "" {
		return fmt.Errorf("%q: want 'EDF label=channel'", s)
	}
	c, err := wire.ParseChannel(strings.TrimSpace(ch))
	if err != nil {
		return err
	}
	if _, dup := l[label]; dup {
		return fmt.Errorf("label %q mapped twice", label)
	}
	l[label] = c
	return nil
}

// frameSource is a recording read frame by frame: replay.CSVReader or
// replay.EDFReader.
type frameSource interface {
	Next(*wire.EMGFrame) error
}

// maxBadRowsShown is how many bad rows replay describes before it only
// counts them.
const maxBadRowsShown = 10

// replayFrames reads frames on one goroutine and detects on this one, so
// parsing and detection share the work of a long recording. Frames travel
// in batches, so the two goroutines meet a few times a second rather than
// ten times per recorded second; three batches circulate between them, so
// memory stays flat however long the file is.
func replayFrames(ctx context.Context, r frameSource, device string, h ingest.Handler) error {
	const batchFrames, batches = 64, 3
	full := make(chan []wire.EMGFrame, batches)
	free := make(chan []wire.EMGFrame, batches)
	for range batches {
		free <- make([]wire.EMGFrame, batchFrames)
	}
	var readErr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(full)
		for b := range free {
			n := 0
			for ; n < len(b); n++ {
				if err := r.Next(&b[n]); err != nil {
					if !errors.Is(err, io.EOF) {
						readErr = err
					}
					break
				}
			}
			if n > 0 {
				full <- b[:n]
			}
			if n < len(b) {
				return
			}
		}
	}()
	var prevEnd int64
	var err error
	for b := range full {
		if err == nil {
			err = ctx.Err()
		}
		for i := range b {
			if err != nil {
				break
			}
			f := &b[i]
			// A jump in the recording's time is a gap, as lost frames are live.
			if prevEnd != 0 && f.T0-prevEnd > wire.SpanMicros(2, f.Rate) {
				h.Gap(device, wire.StreamEMG, 0, prevEnd, f.T0)
			}
			h.EMG(device, f)
			prevEnd = f.End()
		}
		free <- b[:cap(b)]
	}
	close(free)
	wg.Wait()
	if err != nil {
		return err
	}
	return readErr
}

// jsonLinesSink prints every event as one JSON line.
type jsonLinesSink struct {
	mu  sync.Mutex
	enc *json.Encoder
	err error
}

func (s *jsonLinesSink) Event(e detect.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		s.err = s.enc.Encode(eventpub.FromDetect(&e))
	}
}

func (s *jsonLinesSink) Envelope(detect.Envelope)    {}
func (s *jsonLinesSink) Motion(detect.Motion)        {}
func (s *jsonLinesSink) Health(ingest.Health)        {}
func (s *jsonLinesSink) Close(context.Context) error { return nil }

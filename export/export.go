package export

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/crampwatch/crampwatch/detect"
	"github.com/crampwatch/crampwatch/wire"
)

// Window is the stretch of envelope exported around each event: from
// Before the onset to After the end.
type Window struct {
	Before, After time.Duration
}

// Options says what to export and how.
type Options struct {
	// From and To bound the onsets of the events: [From, To).
	From, To time.Time
	// Devices limits the export to these device ids; empty: all.
	Devices []string
	// Subjects limits the export to these pseudonyms; empty: all.
	Subjects []string
	// Kinds limits the events table (and windows, and EDF+ annotations) to
	// these kinds; empty: all. Night summaries always count every kind.
	Kinds []detect.Kind
	// Nights says when nights begin; the zero value starts them at 00:00
	// UTC, so set it (DefaultNights).
	Nights Nights
	// Window, if set, exports the envelope around every exported event.
	Window *Window
	// IncludeDevice adds device ids to every table. Off by default: the
	// subject pseudonym is what a research export should carry.
	IncludeDevice bool
	// IncludeNotes adds the diary's free-text notes, which may name
	// people, places or medication.
	IncludeNotes bool
	// Pseudonyms derives subjects from device ids; required.
	Pseudonyms *Pseudonymizer
	// EnvelopeRate is the envelope's rate in Hz, for EDF+ signals; 0: the
	// detector's default (10 Hz).
	EnvelopeRate float64
	// MaxHealthGap is the longest time between two health reports that
	// still counts as recording; 0: one minute (reports come every 10 s).
	MaxHealthGap time.Duration
	// Version is the tool version recorded in the manifest.
	Version string
	// Progress, if set, gets a progress bar (see Run).
	Progress io.Writer
	// Logger receives warnings (malformed source rows); nil: discarded.
	Logger *slog.Logger
	// Now stamps the manifest; nil: time.Now.
	Now func() time.Time
}

// check validates the options for reading src and fills in defaults.
func (o *Options) check(src Source) error {
	var errs []error
	if o.Window != nil && !src.hasEnvelope() {
		errs = append(errs, fmt.Errorf("export: envelope windows need InfluxDB; the %s has no envelope", src.Name()))
	}
	if o.Pseudonyms == nil {
		errs = append(errs, errors.New("export: no pseudonym key"))
	}
	if o.From.IsZero() || o.To.IsZero() || !o.From.Before(o.To) {
		errs = append(errs, fmt.Errorf("export: time range %v .. %v is empty", o.From, o.To))
	}
	for _, d := range o.Devices {
		if !wire.ValidDevice(d) {
			errs = append(errs, fmt.Errorf("export: device id %q: want [A-Za-z0-9_-]{1,64}", d))
		}
	}
	for _, k := range o.Kinds {
		switch k {
		case detect.KindCramp, detect.KindPLM, detect.KindMovement, detect.KindArtifact:
		default:
			errs = append(errs, fmt.Errorf("export: kind %q: want cramp, plm, movement or artifact", k))
		}
	}
	if err := o.Nights.Validate(); err != nil {
		errs = append(errs, err)
	}
	if w := o.Window; w != nil && (w.Before < 0 || w.After < 0 || w.Before > time.Hour || w.After > time.Hour) {
		errs = append(errs, fmt.Errorf("export: window %v before, %v after: want 0 to 1h each", w.Before, w.After))
	}
	if o.EnvelopeRate == 0 {
		o.EnvelopeRate = detect.DefaultConfig().EnvelopeRate
	}
	if o.MaxHealthGap <= 0 {
		o.MaxHealthGap = time.Minute
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	o.From, o.To = o.From.UTC(), o.To.UTC()
	return errors.Join(errs...)
}

func (o *Options) tableOptions() tableOptions {
	return tableOptions{device: o.IncludeDevice, notes: o.IncludeNotes}
}

// counts are the rows written, per table, and the EDF+ files.
type counts struct {
	events, nights, envelope, edfFiles int64
}

// exporter runs one export: it reads the source night by night and hands
// rows to the sinks.
type exporter struct {
	opt      *Options
	src      Source
	sinks    []sink
	q        query
	subjects map[string]string // device -> pseudonym, one entry per device
	wantSubj map[string]bool
	n        counts
	prog     *progress
	// per-night scratch, reused
	latencies []float64
	alertIDs  map[string]bool
}

func newExporter(opt *Options, src Source, sinks []sink) *exporter {
	x := &exporter{
		opt: opt, src: src, sinks: sinks,
		q: query{
			from: opt.From, to: opt.To, devices: opt.Devices,
			nights: opt.Nights, maxGap: opt.MaxHealthGap,
		},
		subjects: map[string]string{},
		alertIDs: map[string]bool{},
	}
	if len(opt.Subjects) > 0 {
		x.wantSubj = map[string]bool{}
		for _, s := range opt.Subjects {
			x.wantSubj[s] = true
		}
	}
	return x
}

func (x *exporter) subject(device string) string {
	s, ok := x.subjects[device]
	if !ok {
		s = x.opt.Pseudonyms.Subject(device)
		x.subjects[device] = s
	}
	return s
}

func (x *exporter) wantKind(k detect.Kind) bool {
	return len(x.opt.Kinds) == 0 || slices.Contains(x.opt.Kinds, k)
}

// run exports everything. Sinks are finished only on success.
func (x *exporter) run(ctx context.Context) error {
	for dn, err := range x.src.nights(ctx, &x.q) {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		subj := x.subject(dn.device)
		if x.wantSubj != nil && !x.wantSubj[subj] {
			continue
		}
		if err := x.night(ctx, dn, subj); err != nil {
			return err
		}
		if x.prog != nil {
			x.prog.night(dn.from)
		}
	}
	if x.q.skipped > 0 {
		x.opt.Logger.Warn("export: source rows skipped: malformed", "rows", x.q.skipped)
	}
	for _, s := range x.sinks {
		if err := s.finish(); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// nightAcc sums up one device-night.
type nightAcc struct {
	row      NightRow
	artEnd   time.Time // end of the union of artifact intervals so far
	artTotal time.Duration
}

func (x *exporter) night(ctx context.Context, dn *deviceNight, subj string) error {
	head := nightHead{subject: subj, night: dn.night, from: dn.from, to: dn.to}
	if x.opt.Window != nil && x.src.hasEnvelope() && x.hasEDF() {
		chs, err := x.src.channels(ctx, dn.device, dn.from.Add(-x.opt.Window.Before), dn.to.Add(x.opt.Window.After))
		if err != nil {
			return err
		}
		head.channels = chs
	}
	for _, s := range x.sinks {
		if err := s.beginNight(&head); err != nil {
			return err
		}
	}
	acc := nightAcc{row: NightRow{Subject: subj, Night: dn.night, From: truncMilli(dn.from), To: truncMilli(dn.to)}}
	if x.opt.IncludeDevice {
		acc.row.Device = dn.device
	}
	x.latencies = x.latencies[:0]
	clear(x.alertIDs)
	var row EventRow
	for e, err := range dn.events {
		if err != nil {
			return err
		}
		x.eventRow(&row, &e, subj, dn)
		x.accumulate(&acc, &e, &row)
		if !x.wantKind(e.Kind) {
			continue
		}
		for _, s := range x.sinks {
			if err := s.event(&row); err != nil {
				return err
			}
		}
		x.n.events++
		if x.prog != nil {
			x.prog.event()
		}
		if x.opt.Window != nil && x.src.hasEnvelope() {
			if err := x.windows(ctx, &e, &row); err != nil {
				return err
			}
		}
	}
	x.summarise(&acc, dn)
	for _, s := range x.sinks {
		if err := s.endNight(&acc.row); err != nil {
			return err
		}
	}
	x.n.nights++
	return nil
}

func (x *exporter) hasEDF() bool {
	for _, s := range x.sinks {
		if _, ok := s.(*edfSink); ok {
			return true
		}
	}
	return false
}

// eventRow fills r from e. Times are cut to milliseconds, the precision of
// every format; durations and latencies keep the source's precision.
func (x *exporter) eventRow(r *EventRow, e *detect.Event, subj string, dn *deviceNight) {
	onsetUS := e.Onset.UnixMicro()
	*r = EventRow{
		Subject:    subj,
		EventKey:   subj + "-" + string(e.Kind) + "-" + e.Channel.String() + "-" + strconv.FormatInt(onsetUS, 10),
		Kind:       string(e.Kind),
		State:      string(e.State),
		Muscle:     e.Channel.Muscle.String(),
		Side:       e.Channel.Side.String(),
		Onset:      truncMilli(e.Onset),
		End:        truncMilli(e.End),
		Night:      dn.night,
		DurationS:  e.DurationS,
		PeakUV:     e.PeakUV,
		MeanUV:     e.MeanUV,
		Confidence: e.Confidence,
	}
	if x.opt.IncludeDevice {
		r.Device = e.Device
	}
	if e.MedianFreqHz > 0 {
		r.MedianFreqHz = some(e.MedianFreqHz)
	}
	if !e.ConfirmedAt.IsZero() {
		r.DetectionLatencyS = some(e.ConfirmedAt.Sub(e.Onset).Seconds())
	}
	if e.Cause != "" {
		r.Cause = some(e.Cause)
	}
	if dn.loop == nil || e.Kind != detect.KindCramp {
		return
	}
	f := dn.loop.cramp(e.ID(), e.Onset)
	r.Alerted = some(f.alerted)
	r.Acknowledged = some(f.acked)
	if f.alerted {
		r.AlertLatencyS = some(f.alertLatencyS)
	}
	if f.acked {
		r.AckAction = some(f.ackAction)
	}
	if d := f.diary; d != nil {
		r.DiaryPain = d.pain
		r.DiaryRemedies = some(d.remedies)
		if x.opt.IncludeNotes && d.note != "" {
			r.DiaryNote = some(d.note)
		}
	}
	if f.alerted {
		x.alertIDs[f.alertID] = true
		x.latencies = append(x.latencies, f.alertLatencyS)
	}
}

// accumulate adds one event to the night's summary; every kind counts,
// whatever the events table is limited to.
func (x *exporter) accumulate(acc *nightAcc, e *detect.Event, r *EventRow) {
	n := &acc.row
	switch e.Kind {
	case detect.KindCramp:
		n.Cramps++
		n.CrampTotalS += e.DurationS
		if !n.CrampLongestS.OK || e.DurationS > n.CrampLongestS.V {
			n.CrampLongestS = some(e.DurationS)
		}
	case detect.KindPLM:
		n.PLM++
	case detect.KindMovement:
		n.Movements++
	case detect.KindArtifact:
		// Artifacts on several channels at once (a sensor gap hits them
		// all) count once: the union of their intervals.
		start, end := e.Onset, e.End
		if start.Before(acc.artEnd) {
			start = acc.artEnd
		}
		if end.After(start) {
			acc.artTotal += end.Sub(start)
		}
		if end.After(acc.artEnd) {
			acc.artEnd = end
		}
	}
}

func (x *exporter) summarise(acc *nightAcc, dn *deviceNight) {
	n := &acc.row
	n.ArtifactMin = acc.artTotal.Minutes()
	if dn.recording.OK {
		h := dn.recording.V.Hours()
		n.RecordingH = some(h)
		if h > 0 {
			n.CrampsPerH = some(float64(n.Cramps) / h)
			n.PLMIndex = some(float64(n.PLM) / h)
		}
	}
	if dn.loop != nil {
		n.Alerts = some(int64(len(x.alertIDs)))
		if m, ok := median(x.latencies); ok {
			n.AlertLatencyMedianS = some(m)
		}
	}
}

// windows exports the envelope around one event.
func (x *exporter) windows(ctx context.Context, e *detect.Event, r *EventRow) error {
	w := x.opt.Window
	wr := WindowRow{Subject: r.Subject, Device: r.Device, EventKey: r.EventKey}
	for p, err := range x.src.envelope(ctx, e.Device, e.Onset.Add(-w.Before), e.End.Add(w.After+time.Millisecond)) {
		if err != nil {
			return err
		}
		wr.Channel = p.Channel.String()
		wr.Time = truncMilli(p.Time)
		wr.OffsetS = math.Round(p.Time.Sub(e.Onset).Seconds()*1e6) / 1e6
		wr.RMSUV, wr.BaselineUV = p.RMSUV, p.BaselineUV
		for _, s := range x.sinks {
			if err := s.window(&wr); err != nil {
				return err
			}
		}
		x.n.envelope++
	}
	return nil
}

package report

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"time"

	"github.com/crampwatch/crampwatch/detect"
	"github.com/crampwatch/crampwatch/wire"
)

// Query selects what a report is about.
type Query struct {
	Device   string    // device id, [A-Za-z0-9_-]{1,64}
	From, To time.Time // the night's window, [From, To)
	// Window is the width of the envelope averaging windows; default 30 s.
	Window time.Duration
}

// DefaultWindow is the default envelope averaging window: at 30 s a nine
// hour night is about a thousand points per channel, enough to see every
// cramp and few enough for a small picture.
const DefaultWindow = 30 * time.Second

func (q Query) window() time.Duration {
	if q.Window <= 0 {
		return DefaultWindow
	}
	return q.Window
}

// Source loads one device's night. InfluxSource and JournalSource implement it.
type Source interface {
	// Load returns the device's data in q's window. An error together with
	// non-nil Data means some rows could not be read; the rest are in Data
	// and the page says so.
	Load(ctx context.Context, q Query) (*Data, error)
	// Devices lists the devices that have events in [from, to), for
	// finding a subject's device by its pseudonym.
	Devices(ctx context.Context, from, to time.Time) ([]string, error)
	// Name describes the source for the page, e.g. "InfluxDB".
	Name() string
}

// Data is everything a night report shows, as loaded from a source.
type Data struct {
	Device   string
	From, To time.Time // the night's window
	// Events holds one entry per event (a cramp's final report), sorted by
	// onset. A cramp whose end was never recorded has State ongoing.
	Events []detect.Event
	// Envelope holds one series per EMG channel, sorted by channel; nil when
	// the source has no envelope (the journal, or envelope writing off).
	Envelope []Series
	// Window is the width of the envelope averaging windows.
	Window time.Duration
	// Recording lists when the device was sending data, as well as the
	// source can tell; RecordingBasis says how it was found (BasisUnknown:
	// not at all, and Recording is empty).
	Recording      []Span
	RecordingBasis string
	// Alerts holds the alert engine's decisions (sent and suppressed), by
	// time; AlertsKnown is false when the source does not record them.
	Alerts      []Alert
	AlertsKnown bool
	// Notes are things the reader must know about the data: what is
	// missing, rows that could not be read.
	Notes []string
}

// Series is one channel's envelope averaged over windows.
type Series struct {
	Channel wire.Channel
	Points  []Point // by time
}

// Point is the mean envelope over one window that had data.
type Point struct {
	Time       time.Time // start of the window
	RMSUV      float64   // mean RMS envelope, µV
	BaselineUV float64   // mean resting baseline, µV; NaN if not written
}

// Span is an interval [From, To).
type Span struct {
	From, To time.Time
}

// Duration returns To - From.
func (s Span) Duration() time.Duration { return s.To.Sub(s.From) }

// Alert is one decision of the alert engine about one message, as kept in
// the alerts measurement (docs/alerts.md).
type Alert struct {
	Time     time.Time // sample time of the decision
	AlertID  string    // the episode: every message about one cramp episode shares it
	Type     string    // alert, escalation, tens_prompt or ended
	Outcome  string    // sent or suppressed
	Reason   string    // suppression reason; empty when sent
	Channel  wire.Channel
	EventID  string  // the cramp the decision is about
	LatencyS float64 // decision time minus the cramp's onset, seconds
}

// Recording bases: how Data.Recording was found.
const (
	// BasisHealth: the intervals between consecutive device health reports
	// (one every 10 s of sample time while data flows) at most MaxHealthGap
	// apart in which frames arrived. This is how export counts recording
	// hours too, so the report and the export agree.
	BasisHealth = "device health reports"
	// BasisEnvelope: the envelope windows with data, when health reports
	// are missing.
	BasisEnvelope = "envelope windows with data"
	// BasisUnknown: the source does not say when the sensors were on (the
	// journal); recording hours and per-hour rates are n/a.
	BasisUnknown = "unknown"
)

// MaxHealthGap is the longest time between two device health reports that
// still counts as recording, as in export.
const MaxHealthGap = time.Minute

// spansFromWindows merges sorted window start times into spans of
// consecutive windows: a window with no data is a gap in the recording.
func spansFromWindows(starts []time.Time, w time.Duration) []Span {
	var out []Span
	for _, t := range starts {
		if n := len(out); n > 0 && !t.After(out[n-1].To) {
			out[n-1].To = maxTime(out[n-1].To, t.Add(w))
			continue
		}
		out = append(out, Span{From: t, To: t.Add(w)})
	}
	return out
}

// clip limits spans to [from, to).
func clip(spans []Span, from, to time.Time) []Span {
	out := spans[:0:0]
	for _, s := range spans {
		s.From, s.To = maxTime(s.From, from), minTime(s.To, to)
		if s.To.After(s.From) {
			out = append(out, s)
		}
	}
	return out
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// sortEvents orders events by onset, then kind and channel, as
// store.QueryEvents does, so both sources give the same order.
func sortEvents(events []detect.Event) {
	slices.SortFunc(events, func(a, b detect.Event) int {
		return cmp.Or(a.Onset.Compare(b.Onset),
			strings.Compare(a.Device, b.Device),
			strings.Compare(string(a.Kind), string(b.Kind)),
			strings.Compare(a.Channel.String(), b.Channel.String()))
	})
}

// compareChannels orders channels by side, then muscle: the left leg's
// panels together, then the right leg's.
func compareChannels(a, b wire.Channel) int {
	return cmp.Or(cmp.Compare(a.Side, b.Side), cmp.Compare(a.Muscle, b.Muscle))
}

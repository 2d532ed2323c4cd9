package export

import (
	"time"
)

// Opt is a value that may be missing ("n/a" in CSV, null in JSON Lines
// and Parquet).
type Opt[T any] struct {
	V  T
	OK bool
}

// some returns a present value.
func some[T any](v T) Opt[T] { return Opt[T]{V: v, OK: true} }

// EventRow is one row of the events table: one detected event, with what
// the wearer's loop recorded about it. docs/export.md documents each field
// as a column.
type EventRow struct {
	Subject  string // pseudonym of the device
	Device   string // device id; empty unless Options.IncludeDevice
	EventKey string // {subject}-{kind}-{muscle}_{side}-{onset in Unix µs}
	Kind     string
	State    string // "ongoing" or "ended"
	Muscle   string
	Side     string
	Onset    time.Time // UTC, millisecond precision
	End      time.Time // UTC, millisecond precision
	Night    string    // YYYY-MM-DD, the local date the night began

	DurationS         float64
	PeakUV            float64
	MeanUV            float64
	MedianFreqHz      Opt[float64] // missing when the detector did not know it
	Confidence        float64
	DetectionLatencyS Opt[float64] // confirmation minus onset
	Cause             Opt[string]  // artifacts only

	// The wearer's loop; all missing when the source has no such records
	// (the journal), and for kinds that are never alerted.
	Alerted       Opt[bool]
	AlertLatencyS Opt[float64]
	Acknowledged  Opt[bool]
	AckAction     Opt[string]
	DiaryPain     Opt[int64]
	DiaryRemedies Opt[string] // comma-separated; "" when the entry named none
	DiaryNote     Opt[string] // only with Options.IncludeNotes
}

// NightRow is one row of the per-night summary table: one subject, one
// night.
type NightRow struct {
	Subject string
	Device  string // empty unless Options.IncludeDevice
	Night   string // YYYY-MM-DD
	// From and To bound the part of the night this row covers: the whole
	// night unless the export's time range cuts it.
	From, To time.Time

	RecordingH          Opt[float64] // hours with data from the device
	Cramps              int64
	CrampsPerH          Opt[float64]
	CrampTotalS         float64
	CrampLongestS       Opt[float64]
	PLM                 int64
	PLMIndex            Opt[float64] // PLM per hour of recording
	Movements           int64
	ArtifactMin         float64
	Alerts              Opt[int64]
	AlertLatencyMedianS Opt[float64]
}

// WindowRow is one envelope point in the window around an event.
type WindowRow struct {
	Subject    string
	Device     string // empty unless Options.IncludeDevice
	EventKey   string
	Channel    string // <muscle>_<side>
	Time       time.Time
	OffsetS    float64 // Time minus the event's onset, seconds
	RMSUV      float64
	BaselineUV float64
}

// colType is the type of a column's values.
type colType uint8

const (
	tString colType = iota
	tFloat
	tInt
	tBool
	tTime
)

// value is one cell. A zero-cost struct rather than an interface, so that
// writing a row allocates nothing.
type value struct {
	null bool
	s    string
	f    float64
	i    int64
	b    bool
	t    time.Time
}

// column describes one column of a table of R.
type column[R any] struct {
	name     string
	typ      colType
	optional bool
	get      func(r *R) value
}

func vStr(s string) value        { return value{s: s} }
func vFloat(f float64) value     { return value{f: f} }
func vInt(i int64) value         { return value{i: i} }
func vTime(t time.Time) value    { return value{t: t} }
func vOptF(o Opt[float64]) value { return value{null: !o.OK, f: o.V} }
func vOptI(o Opt[int64]) value   { return value{null: !o.OK, i: o.V} }
func vOptB(o Opt[bool]) value    { return value{null: !o.OK, b: o.V} }
func vOptS(o Opt[string]) value  { return value{null: !o.OK, s: o.V} }

// tableOptions says which optional columns a table has.
type tableOptions struct {
	device bool
	notes  bool
}

// eventColumns returns the columns of the events table, in order.
func eventColumns(o tableOptions) []column[EventRow] {
	cols := []column[EventRow]{
		{name: "subject", typ: tString, get: func(r *EventRow) value { return vStr(r.Subject) }},
	}
	if o.device {
		cols = append(cols, column[EventRow]{name: "device", typ: tString, get: func(r *EventRow) value { return vStr(r.Device) }})
	}
	cols = append(cols, []column[EventRow]{
		{name: "event_key", typ: tString, get: func(r *EventRow) value { return vStr(r.EventKey) }},
		{name: "night", typ: tString, get: func(r *EventRow) value { return vStr(r.Night) }},
		{name: "kind", typ: tString, get: func(r *EventRow) value { return vStr(r.Kind) }},
		{name: "state", typ: tString, get: func(r *EventRow) value { return vStr(r.State) }},
		{name: "muscle", typ: tString, get: func(r *EventRow) value { return vStr(r.Muscle) }},
		{name: "side", typ: tString, get: func(r *EventRow) value { return vStr(r.Side) }},
		{name: "onset_utc", typ: tTime, get: func(r *EventRow) value { return vTime(r.Onset) }},
		{name: "end_utc", typ: tTime, get: func(r *EventRow) value { return vTime(r.End) }},
		{name: "duration_s", typ: tFloat, get: func(r *EventRow) value { return vFloat(r.DurationS) }},
		{name: "peak_uv", typ: tFloat, get: func(r *EventRow) value { return vFloat(r.PeakUV) }},
		{name: "mean_uv", typ: tFloat, get: func(r *EventRow) value { return vFloat(r.MeanUV) }},
		{name: "median_freq_hz", typ: tFloat, optional: true, get: func(r *EventRow) value { return vOptF(r.MedianFreqHz) }},
		{name: "confidence", typ: tFloat, get: func(r *EventRow) value { return vFloat(r.Confidence) }},
		{name: "detection_latency_s", typ: tFloat, optional: true, get: func(r *EventRow) value { return vOptF(r.DetectionLatencyS) }},
		{name: "cause", typ: tString, optional: true, get: func(r *EventRow) value { return vOptS(r.Cause) }},
		{name: "alerted", typ: tBool, optional: true, get: func(r *EventRow) value { return vOptB(r.Alerted) }},
		{name: "alert_latency_s", typ: tFloat, optional: true, get: func(r *EventRow) value { return vOptF(r.AlertLatencyS) }},
		{name: "acknowledged", typ: tBool, optional: true, get: func(r *EventRow) value { return vOptB(r.Acknowledged) }},
		{name: "ack_action", typ: tString, optional: true, get: func(r *EventRow) value { return vOptS(r.AckAction) }},
		{name: "diary_pain_0_10", typ: tInt, optional: true, get: func(r *EventRow) value { return vOptI(r.DiaryPain) }},
		{name: "diary_remedies", typ: tString, optional: true, get: func(r *EventRow) value { return vOptS(r.DiaryRemedies) }},
	}...)
	if o.notes {
		cols = append(cols, column[EventRow]{name: "diary_note", typ: tString, optional: true, get: func(r *EventRow) value { return vOptS(r.DiaryNote) }})
	}
	return cols
}

// nightColumns returns the columns of the nights table, in order.
func nightColumns(o tableOptions) []column[NightRow] {
	cols := []column[NightRow]{
		{name: "subject", typ: tString, get: func(r *NightRow) value { return vStr(r.Subject) }},
	}
	if o.device {
		cols = append(cols, column[NightRow]{name: "device", typ: tString, get: func(r *NightRow) value { return vStr(r.Device) }})
	}
	return append(cols, []column[NightRow]{
		{name: "night", typ: tString, get: func(r *NightRow) value { return vStr(r.Night) }},
		{name: "from_utc", typ: tTime, get: func(r *NightRow) value { return vTime(r.From) }},
		{name: "to_utc", typ: tTime, get: func(r *NightRow) value { return vTime(r.To) }},
		{name: "recording_h", typ: tFloat, optional: true, get: func(r *NightRow) value { return vOptF(r.RecordingH) }},
		{name: "cramps", typ: tInt, get: func(r *NightRow) value { return vInt(r.Cramps) }},
		{name: "cramps_per_h", typ: tFloat, optional: true, get: func(r *NightRow) value { return vOptF(r.CrampsPerH) }},
		{name: "cramp_total_s", typ: tFloat, get: func(r *NightRow) value { return vFloat(r.CrampTotalS) }},
		{name: "cramp_longest_s", typ: tFloat, optional: true, get: func(r *NightRow) value { return vOptF(r.CrampLongestS) }},
		{name: "plm", typ: tInt, get: func(r *NightRow) value { return vInt(r.PLM) }},
		{name: "plm_index_per_h", typ: tFloat, optional: true, get: func(r *NightRow) value { return vOptF(r.PLMIndex) }},
		{name: "movements", typ: tInt, get: func(r *NightRow) value { return vInt(r.Movements) }},
		{name: "artifact_min", typ: tFloat, get: func(r *NightRow) value { return vFloat(r.ArtifactMin) }},
		{name: "alerts", typ: tInt, optional: true, get: func(r *NightRow) value { return vOptI(r.Alerts) }},
		{name: "alert_latency_median_s", typ: tFloat, optional: true, get: func(r *NightRow) value { return vOptF(r.AlertLatencyMedianS) }},
	}...)
}

// windowColumns returns the columns of the envelope windows table.
func windowColumns(o tableOptions) []column[WindowRow] {
	cols := []column[WindowRow]{
		{name: "subject", typ: tString, get: func(r *WindowRow) value { return vStr(r.Subject) }},
	}
	if o.device {
		cols = append(cols, column[WindowRow]{name: "device", typ: tString, get: func(r *WindowRow) value { return vStr(r.Device) }})
	}
	return append(cols, []column[WindowRow]{
		{name: "event_key", typ: tString, get: func(r *WindowRow) value { return vStr(r.EventKey) }},
		{name: "channel", typ: tString, get: func(r *WindowRow) value { return vStr(r.Channel) }},
		{name: "time_utc", typ: tTime, get: func(r *WindowRow) value { return vTime(r.Time) }},
		{name: "offset_s", typ: tFloat, get: func(r *WindowRow) value { return vFloat(r.OffsetS) }},
		{name: "rms_uv", typ: tFloat, get: func(r *WindowRow) value { return vFloat(r.RMSUV) }},
		{name: "baseline_uv", typ: tFloat, get: func(r *WindowRow) value { return vFloat(r.BaselineUV) }},
	}...)
}

// Table names, also the base names of the files.
const (
	TableEvents   = "events"
	TableNights   = "nights"
	TableEnvelope = "envelope"
)

package store

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/influxdata/influxdb-client-go/v2/api/write"

	"github.com/crampwatch/crampwatch/detect"
	"github.com/crampwatch/crampwatch/ingest"
	"github.com/crampwatch/crampwatch/wire"
)

// Measurement names; docs/schema.md documents them.
const (
	MeasurementEvents   = "events"
	MeasurementEnvelope = "envelope"
	MeasurementMotion   = "motion"
	MeasurementHealth   = "device_health"
)

// The encoders below write InfluxDB line protocol straight into a queue
// chunk, with microsecond timestamps (the client is configured for
// precision=us). Writing line protocol ourselves instead of building
// write.Points keeps the per-point cost allocation-free, and the encoded
// lines are what a later on-disk spool will store as is.

// lineBuf appends one line of line protocol.
type lineBuf struct {
	b      []byte
	fields int
}

func (l *lineBuf) tag(key, value string) {
	l.b = append(l.b, ',')
	l.b = append(l.b, key...)
	l.b = append(l.b, '=')
	l.b = appendTagValue(l.b, value)
}

func (l *lineBuf) fieldKey(key string) {
	if l.fields == 0 {
		l.b = append(l.b, ' ')
	} else {
		l.b = append(l.b, ',')
	}
	l.fields++
	l.b = appendKey(l.b, key)
	l.b = append(l.b, '=')
}

// float writes a float field; NaN and infinities have no line protocol
// form, so such a field is left out.
func (l *lineBuf) float(key string, v float64) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return
	}
	l.fieldKey(key)
	l.b = strconv.AppendFloat(l.b, v, 'f', -1, 64)
}

func (l *lineBuf) int(key string, v int64) {
	l.fieldKey(key)
	l.b = strconv.AppendInt(l.b, v, 10)
	l.b = append(l.b, 'i')
}

func (l *lineBuf) str(key, v string) {
	l.fieldKey(key)
	l.b = append(l.b, '"')
	l.b = appendStringValue(l.b, v)
	l.b = append(l.b, '"')
}

func (l *lineBuf) boolean(key string, v bool) {
	l.fieldKey(key)
	if v {
		l.b = append(l.b, 't')
	} else {
		l.b = append(l.b, 'f')
	}
}

// end terminates the line with a timestamp in Unix microseconds.
func (l *lineBuf) end(us int64) {
	l.b = append(l.b, ' ')
	l.b = strconv.AppendInt(l.b, us, 10)
	l.b = append(l.b, '\n')
}

// validTag reports whether v can be a tag value: line protocol has no empty
// tag values, and a trailing backslash would escape the separator after it.
func validTag(v string) bool {
	return v != "" && v[len(v)-1] != '\\'
}

// appendTagValue escapes commas, equals signs and spaces; control characters
// (which line protocol cannot carry in a tag) become escaped spaces.
func appendTagValue(b []byte, v string) []byte {
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch c {
		case ',', '=', ' ':
			b = append(b, '\\', c)
		case '\n', '\r', '\t':
			b = append(b, '\\', ' ')
		default:
			b = append(b, c)
		}
	}
	return b
}

// appendKey escapes a tag or field key; ours are constants without special
// characters, but WritePoint passes keys from other packages through here.
func appendKey(b []byte, k string) []byte { return appendTagValue(b, k) }

// appendMeasurement escapes a measurement name (commas and spaces).
func appendMeasurement(b []byte, m string) []byte {
	for i := 0; i < len(m); i++ {
		c := m[i]
		switch c {
		case ',', ' ':
			b = append(b, '\\', c)
		case '\n', '\r', '\t':
			b = append(b, '\\', ' ')
		default:
			b = append(b, c)
		}
	}
	return b
}

// appendStringValue escapes a string field value. Newlines are replaced by
// spaces: they are legal inside quotes in line protocol, but some parsers
// and tools split lines before they look at quotes.
func appendStringValue(b []byte, v string) []byte {
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n', '\r':
			b = append(b, ' ')
		default:
			b = append(b, c)
		}
	}
	return b
}

// errInvalidPoint is returned for points that cannot be written at all.
var errInvalidPoint = errors.New("invalid point")

// appendEvent encodes an event of measurement "events". Both reports of a
// cramp carry the same tags and timestamp (the onset), and the same set of
// fields, so the ended point overwrites every field of the ongoing one.
func appendEvent(b []byte, e *detect.Event) ([]byte, error) {
	if !validTag(e.Device) || e.Kind == "" || !validTag(string(e.Kind)) || e.Onset.IsZero() {
		return b, fmt.Errorf("%w: event needs a device, a kind and an onset", errInvalidPoint)
	}
	l := lineBuf{b: append(b, MeasurementEvents...)}
	l.tag("device", e.Device)
	l.tag("kind", string(e.Kind))
	l.tag("muscle", e.Channel.Muscle.String())
	l.tag("side", e.Channel.Side.String())
	l.str("state", string(e.State))
	l.float("duration_s", e.DurationS)
	l.float("peak_uv", e.PeakUV)
	l.float("confidence", e.Confidence)
	l.float("mean_uv", e.MeanUV)
	l.float("median_freq_hz", e.MedianFreqHz)
	if !e.ConfirmedAt.IsZero() {
		l.float("latency_s", e.ConfirmedAt.Sub(e.Onset).Seconds())
	}
	if !e.End.IsZero() {
		l.int("end", e.End.UnixMilli())
	}
	l.fieldKey("event_id")
	l.b = append(l.b, '"')
	l.b = appendEventID(l.b, e)
	l.b = append(l.b, '"')
	if e.Cause != "" {
		l.str("cause", e.Cause)
	}
	l.end(e.Onset.UnixMicro())
	return l.b, nil
}

// appendEventID appends detect.Event.ID() without building the string.
func appendEventID(b []byte, e *detect.Event) []byte {
	b = appendStringValue(b, e.Device)
	b = append(b, '-')
	b = appendStringValue(b, string(e.Kind))
	b = append(b, '-')
	b = appendChannel(b, e.Channel)
	b = append(b, '-')
	return strconv.AppendInt(b, e.Onset.UnixMicro(), 10)
}

func appendChannel(b []byte, c wire.Channel) []byte {
	b = append(b, c.Muscle.String()...)
	b = append(b, '_')
	return append(b, c.Side.String()...)
}

// appendEnvelope encodes one point of measurement "envelope".
func appendEnvelope(b []byte, e *detect.Envelope) ([]byte, error) {
	if !validTag(e.Device) || e.Time.IsZero() {
		return b, fmt.Errorf("%w: envelope needs a device and a time", errInvalidPoint)
	}
	l := lineBuf{b: append(b, MeasurementEnvelope...)}
	l.b = append(l.b, ",channel="...)
	l.b = appendChannel(l.b, e.Channel)
	l.tag("device", e.Device)
	l.tag("muscle", e.Channel.Muscle.String())
	l.tag("side", e.Channel.Side.String())
	l.float("rms_uv", e.RMSUV)
	l.float("baseline_uv", e.BaselineUV)
	if l.fields == 0 {
		return b, fmt.Errorf("%w: envelope has no finite value", errInvalidPoint)
	}
	l.end(e.Time.UnixMicro())
	return l.b, nil
}

// appendMotion encodes one point of measurement "motion".
func appendMotion(b []byte, m *detect.Motion) ([]byte, error) {
	if !validTag(m.Device) || m.Time.IsZero() {
		return b, fmt.Errorf("%w: motion needs a device and a time", errInvalidPoint)
	}
	l := lineBuf{b: append(b, MeasurementMotion...)}
	l.tag("device", m.Device)
	l.tag("side", m.Site.Side.String())
	l.b = append(l.b, ",site="...)
	switch m.Site.Segment {
	case wire.Shank:
		l.b = append(l.b, "shank"...)
	case wire.Thigh:
		l.b = append(l.b, "thigh"...)
	default:
		l.b = append(l.b, "unknown"...)
	}
	l.b = append(l.b, '_')
	l.b = append(l.b, m.Site.Side.String()...)
	l.float("activity_g", m.Activity)
	l.float("tilt_deg", m.TiltDeg)
	if l.fields == 0 {
		return b, fmt.Errorf("%w: motion has no finite value", errInvalidPoint)
	}
	l.end(m.Time.UnixMicro())
	return l.b, nil
}

// appendHealth encodes one point of measurement "device_health". The point
// is stamped with the sample time of the device's newest frame, or with the
// wall-clock time it was last heard from if it has sent no data frame yet.
func appendHealth(b []byte, h *ingest.Health) ([]byte, error) {
	t := h.Time
	if t.IsZero() {
		t = h.LastSeen
	}
	if !validTag(h.Device) || t.IsZero() {
		return b, fmt.Errorf("%w: health needs a device and a time", errInvalidPoint)
	}
	l := lineBuf{b: append(b, MeasurementHealth...)}
	l.tag("device", h.Device)
	if h.BatteryPct >= 0 { // -1: never reported
		l.float("battery_pct", h.BatteryPct)
	}
	l.int("frames_in", clampInt(h.FramesIn))
	l.int("frames_lost", clampInt(h.FramesLost))
	l.int("frames_dup", clampInt(h.FramesDup))
	l.int("rejected", clampInt(h.Rejected))
	l.int("lead_off", int64(len(h.LeadOff)))
	l.fieldKey("lead_off_channels")
	l.b = append(l.b, '"')
	for i, c := range h.LeadOff {
		if i > 0 {
			l.b = append(l.b, ',')
		}
		l.b = appendChannel(l.b, c)
	}
	l.b = append(l.b, '"')
	l.float("lag_s", h.LagSeconds)
	if h.Firmware != "" {
		l.str("firmware", h.Firmware)
	}
	l.end(t.UnixMicro())
	return l.b, nil
}

// clampInt maps a cumulative counter to line protocol's int64 (InfluxDB 1.x
// has no unsigned fields).
func clampInt(v uint64) int64 {
	if v > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(v)
}

// appendPoint encodes a point built by another package (alerts, acks,
// diary). Tags are written sorted, as InfluxDB prefers; a point without a
// time is stamped with now, its enqueue time, rather than with the later
// time the server receives it.
func appendPoint(b []byte, p *write.Point, now time.Time) ([]byte, error) {
	if p == nil || p.Name() == "" {
		return b, fmt.Errorf("%w: point without a measurement", errInvalidPoint)
	}
	l := lineBuf{b: appendMeasurement(b, p.Name())}
	tags := p.TagList()
	if !sort.SliceIsSorted(tags, func(i, j int) bool { return tags[i].Key < tags[j].Key }) {
		p.SortTags()
		tags = p.TagList()
	}
	for _, t := range tags {
		if t.Key == "" || !validTag(t.Value) || strings.HasSuffix(t.Key, `\`) {
			return b, fmt.Errorf("%w: %s: tag %q=%q", errInvalidPoint, p.Name(), t.Key, t.Value)
		}
		l.b = append(l.b, ',')
		l.b = appendKey(l.b, t.Key)
		l.b = append(l.b, '=')
		l.b = appendTagValue(l.b, t.Value)
	}
	for _, f := range p.FieldList() {
		if f.Key == "" {
			return b, fmt.Errorf("%w: %s: empty field key", errInvalidPoint, p.Name())
		}
		switch v := f.Value.(type) {
		case float64:
			l.float(f.Key, v)
		case int64:
			l.int(f.Key, v)
		case uint64:
			l.int(f.Key, clampInt(v))
		case string:
			l.str(f.Key, v)
		case bool:
			l.boolean(f.Key, v)
		default:
			return b, fmt.Errorf("%w: %s: field %q has type %T", errInvalidPoint, p.Name(), f.Key, f.Value)
		}
	}
	if l.fields == 0 {
		return b, fmt.Errorf("%w: %s: no fields", errInvalidPoint, p.Name())
	}
	t := p.Time()
	if t.IsZero() {
		t = now
	}
	l.end(t.UnixMicro())
	return l.b, nil
}

package eventpub

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/crampwatch/crampwatch/detect"
	"github.com/crampwatch/crampwatch/wire"
)

// TimeLayout is how event times are written in JSON: RFC 3339 in UTC with
// exactly three fractional digits, which every JSON consumer (including
// JavaScript's Date) parses. The exact microsecond times travel alongside in
// the *_us fields.
const TimeLayout = "2006-01-02T15:04:05.000Z07:00"

// Event is the JSON representation of a detected event: the payload on
// {prefix}/{device}/events and one line of the local journal. docs/schema.md
// documents it for app developers.
type Event struct {
	ID     string       `json:"id"`
	Device string       `json:"device"`
	Kind   detect.Kind  `json:"kind"`
	State  detect.State `json:"state"`
	Muscle string       `json:"muscle"`
	Side   string       `json:"side"`
	// Onset, End and ConfirmedAt are RFC 3339 UTC with milliseconds
	// (TimeLayout), device clock. ConfirmedAt is empty if unknown.
	Onset       string `json:"onset"`
	End         string `json:"end"`
	ConfirmedAt string `json:"confirmed_at,omitempty"`
	// OnsetUS, EndUS and ConfirmedAtUS are the same times as Unix
	// microseconds. They make the record lossless: ID and the InfluxDB
	// timestamp of the event use the onset in microseconds.
	OnsetUS       int64   `json:"onset_us"`
	EndUS         int64   `json:"end_us"`
	ConfirmedAtUS int64   `json:"confirmed_at_us,omitempty"`
	DurationS     float64 `json:"duration_s"`
	PeakUV        float64 `json:"peak_uv"`
	MeanUV        float64 `json:"mean_uv"`
	MedianFreqHz  float64 `json:"median_freq_hz"`
	Confidence    float64 `json:"confidence"`
	Cause         string  `json:"cause,omitempty"`
}

// FromDetect converts a detected event to its JSON form. JSON cannot carry
// NaN or infinities, so a non-finite number (a detector bug) is written as 0
// rather than losing the whole event.
func FromDetect(e *detect.Event) Event {
	j := Event{
		ID:           e.ID(),
		Device:       e.Device,
		Kind:         e.Kind,
		State:        e.State,
		Muscle:       e.Channel.Muscle.String(),
		Side:         e.Channel.Side.String(),
		Onset:        formatTime(e.Onset),
		End:          formatTime(e.End),
		OnsetUS:      micros(e.Onset),
		EndUS:        micros(e.End),
		DurationS:    finite(e.DurationS),
		PeakUV:       finite(e.PeakUV),
		MeanUV:       finite(e.MeanUV),
		MedianFreqHz: finite(e.MedianFreqHz),
		Confidence:   finite(e.Confidence),
		Cause:        e.Cause,
	}
	if !e.ConfirmedAt.IsZero() {
		j.ConfirmedAt = formatTime(e.ConfirmedAt)
		j.ConfirmedAtUS = micros(e.ConfirmedAt)
	}
	return j
}

// Detect converts the JSON form back to a detected event. Times come from
// the *_us fields when present, else from the RFC 3339 strings (which then
// limits them to the precision written). It rejects unknown kinds, states,
// muscles and sides, and a missing device or onset.
func (j *Event) Detect() (detect.Event, error) {
	e := detect.Event{
		Device:       j.Device,
		Kind:         j.Kind,
		State:        j.State,
		DurationS:    j.DurationS,
		PeakUV:       j.PeakUV,
		MeanUV:       j.MeanUV,
		MedianFreqHz: j.MedianFreqHz,
		Confidence:   j.Confidence,
		Cause:        j.Cause,
	}
	if e.Device == "" {
		return detect.Event{}, errors.New("event: missing device")
	}
	switch e.Kind {
	case detect.KindCramp, detect.KindPLM, detect.KindMovement, detect.KindArtifact:
	default:
		return detect.Event{}, fmt.Errorf("event: unknown kind %q", e.Kind)
	}
	switch e.State {
	case detect.StateOngoing, detect.StateEnded:
	default:
		return detect.Event{}, fmt.Errorf("event: unknown state %q", e.State)
	}
	ch, err := wire.ParseChannel(j.Muscle + "_" + j.Side)
	if err != nil {
		return detect.Event{}, fmt.Errorf("event: %w", err)
	}
	e.Channel = ch
	if e.Onset, err = parseTime("onset", j.Onset, j.OnsetUS); err != nil {
		return detect.Event{}, err
	}
	if e.Onset.IsZero() {
		return detect.Event{}, errors.New("event: missing onset")
	}
	if e.End, err = parseTime("end", j.End, j.EndUS); err != nil {
		return detect.Event{}, err
	}
	if e.ConfirmedAt, err = parseTime("confirmed_at", j.ConfirmedAt, j.ConfirmedAtUS); err != nil {
		return detect.Event{}, err
	}
	return e, nil
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(TimeLayout)
}

// micros maps the zero time.Time ("unknown") to 0 rather than to a large
// negative number.
func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

// parseTime prefers the exact microseconds; a zero time stays the zero
// time.Time so that "unknown" survives a round trip.
func parseTime(name, s string, us int64) (time.Time, error) {
	if us != 0 {
		return time.UnixMicro(us).UTC(), nil
	}
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("event: %s: %w", name, err)
	}
	return t.UTC(), nil
}

func finite(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	return v
}

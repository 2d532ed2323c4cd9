package report

import (
	"math"
	"slices"
	"time"

	"github.com/crampwatch/crampwatch/alerts"
	"github.com/crampwatch/crampwatch/detect"
)

// Summary holds a night's numbers. A number that the data cannot give is
// NaN (floats) or marked unknown (AlertsKnown), and shown as "n/a".
type Summary struct {
	// RecordingHours is the time the device was sending, from
	// Data.Recording; RecordingBasis says how that was found.
	RecordingHours float64
	RecordingBasis string

	Cramps int
	// OngoingCramps counts cramps whose end was never recorded (the device
	// went offline mid-cramp); their duration is up to confirmation.
	OngoingCramps int
	CrampsPerHour float64 // Cramps / RecordingHours
	TotalCrampS   float64 // sum of cramp durations, seconds
	LongestCrampS float64 // longest cramp, seconds; 0 without cramps

	PLMs int
	// PLMIndex is PLMs per hour of recording. Sleep scoring divides by hours
	// of sleep, which crampwatch does not know, so this is a lower bound of
	// the clinical PLM index.
	PLMIndex float64

	Movements int
	// ArtifactMinutes is the time covered by at least one artifact (overlaps
	// on several channels count once), minutes.
	ArtifactMinutes float64

	// AlertsKnown is false when the source keeps no alert records; the
	// alert counts are then 0 and mean nothing.
	AlertsKnown bool
	Alerts      int // gentle alerts sent, one per alerted episode
	Escalations int // escalations sent
	TENSPrompts int // TENS prompts sent
	Suppressed  int // messages that were due but suppressed (cooldown, cap, joined episode ...)
	// MedianAlertLatencyS is the median time from cramp onset to the gentle
	// alert, seconds, over the alerts sent; NaN without alert records.
	MedianAlertLatencyS float64
	// MedianConfirmS is the median time from cramp onset to the detector's
	// confirmation, seconds: the alert latency as the detector sees it,
	// also known from the journal. NaN without cramps.
	MedianConfirmS float64
}

// Summarize computes the night's numbers from d.
func Summarize(d *Data) Summary {
	s := Summary{
		RecordingBasis:      d.RecordingBasis,
		AlertsKnown:         d.AlertsKnown,
		MedianAlertLatencyS: math.NaN(),
	}
	var rec time.Duration
	for _, sp := range d.Recording {
		rec += sp.Duration()
	}
	s.RecordingHours = rec.Hours()

	var confirm []float64
	var artifacts []Span
	for _, e := range d.Events {
		switch e.Kind {
		case detect.KindCramp:
			s.Cramps++
			if e.State == detect.StateOngoing {
				s.OngoingCramps++
			}
			s.TotalCrampS += e.DurationS
			s.LongestCrampS = max(s.LongestCrampS, e.DurationS)
			if !e.ConfirmedAt.IsZero() {
				confirm = append(confirm, e.ConfirmedAt.Sub(e.Onset).Seconds())
			}
		case detect.KindPLM:
			s.PLMs++
		case detect.KindMovement:
			s.Movements++
		case detect.KindArtifact:
			artifacts = append(artifacts, Span{From: e.Onset, To: e.End})
		}
	}
	s.ArtifactMinutes = union(artifacts).Minutes()
	s.MedianConfirmS = median(confirm)
	s.CrampsPerHour = perHour(s.Cramps, s.RecordingHours)
	s.PLMIndex = perHour(s.PLMs, s.RecordingHours)

	if d.AlertsKnown {
		var lat []float64
		for _, a := range d.Alerts {
			if a.Outcome != alerts.OutcomeSent {
				s.Suppressed++
				continue
			}
			switch a.Type {
			case alerts.TypeAlert:
				s.Alerts++
				lat = append(lat, a.LatencyS)
			case alerts.TypeEscalation:
				s.Escalations++
			case alerts.TypeTENSPrompt:
				s.TENSPrompts++
			}
		}
		s.MedianAlertLatencyS = median(lat)
	}
	return s
}

// perHour is n per hour of h hours; NaN when nothing was recorded.
func perHour(n int, h float64) float64 {
	if h <= 0 {
		return math.NaN()
	}
	return float64(n) / h
}

// median of xs (the mean of the two middle values for an even count); NaN
// for none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	m := len(s) / 2
	if len(s)%2 == 1 {
		return s[m]
	}
	return (s[m-1] + s[m]) / 2
}

// union returns the total time covered by at least one of spans.
func union(spans []Span) time.Duration {
	s := slices.Clone(spans)
	slices.SortFunc(s, func(a, b Span) int { return a.From.Compare(b.From) })
	var total time.Duration
	var cur Span // the run of overlapping spans being merged; zero: none yet
	for _, sp := range s {
		if !sp.To.After(sp.From) {
			continue
		}
		if cur.To.IsZero() || sp.From.After(cur.To) {
			total += cur.Duration()
			cur = sp
			continue
		}
		cur.To = maxTime(cur.To, sp.To)
	}
	return total + cur.Duration()
}

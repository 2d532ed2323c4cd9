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
	// Data.Recording; RecordingBasis says how that was found. NaN when the
	// source cannot tell (BasisUnknown).
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
	// Alerts counts the alert episodes of the night's cramps in which a
	// buzzing message (alert, escalation or TENS prompt) was sent: the
	// times the wearer was woken. Cramps on both legs at once share one.
	Alerts int
	// AlertedCramps counts the cramps covered by those episodes.
	AlertedCramps int
	Escalations   int // escalations sent
	TENSPrompts   int // TENS prompts sent
	Suppressed    int // messages that were due but suppressed (cooldown, cap, joined episode ...)
	// MedianAlertLatencyS is the median over alerted cramps of the time from
	// onset to the first buzzing message of the episode (for a cramp that
	// joined a running episode, to when it joined), seconds; NaN when none.
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
	if d.RecordingBasis == BasisUnknown {
		s.RecordingHours = math.NaN()
	}

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
		summarizeAlerts(&s, d)
	}
	return s
}

// summarizeAlerts counts alerts per cramp as export does: a cramp is
// alerted when a buzzing message of its episode was sent.
func summarizeAlerts(s *Summary, d *Data) {
	alertOf := map[string]string{}      // event id -> alert id
	joined := map[string]time.Time{}    // event id -> when it joined a running episode
	firstBuzz := map[string]time.Time{} // alert id -> first buzzing message sent
	for _, a := range d.Alerts {
		if a.Outcome != alerts.OutcomeSent {
			s.Suppressed++
		}
		if a.AlertID == "" || a.EventID == "" {
			continue
		}
		if _, ok := alertOf[a.EventID]; !ok {
			alertOf[a.EventID] = a.AlertID
		}
		if a.Outcome == alerts.OutcomeSuppressed && a.Reason == alerts.SuppressConcurrent {
			joined[a.EventID] = a.Time
		}
		if a.Outcome != alerts.OutcomeSent {
			continue
		}
		switch a.Type {
		case alerts.TypeEscalation:
			s.Escalations++
		case alerts.TypeTENSPrompt:
			s.TENSPrompts++
		}
		switch a.Type {
		case alerts.TypeAlert, alerts.TypeEscalation, alerts.TypeTENSPrompt:
			if t, ok := firstBuzz[a.AlertID]; !ok || a.Time.Before(t) {
				firstBuzz[a.AlertID] = a.Time
			}
		}
	}
	episodes := map[string]bool{}
	var lat []float64
	for _, e := range d.Events {
		if e.Kind != detect.KindCramp {
			continue
		}
		id, ok := alertOf[e.ID()]
		if !ok {
			continue
		}
		buzz, ok := firstBuzz[id]
		if !ok {
			continue
		}
		if j, ok := joined[e.ID()]; ok && j.After(buzz) {
			buzz = j
		}
		episodes[id] = true
		s.AlertedCramps++
		lat = append(lat, buzz.Sub(e.Onset).Seconds())
	}
	s.Alerts = len(episodes)
	s.MedianAlertLatencyS = median(lat)
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

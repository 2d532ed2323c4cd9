package export

import (
	"slices"
	"time"

	"github.com/crampwatch/crampwatch/alerts"
	"github.com/crampwatch/crampwatch/store"
)

// loopIndex holds the wearer's loop around one night's cramps: alert
// decisions, acknowledgements and diary entries (docs/alerts.md), indexed
// so that each cramp finds its own. An alert id names an episode: one
// cramp, or several that started together and share one alert.
type loopIndex struct {
	alertOf   map[string]string    // event id -> alert id of its episode
	joined    map[string]time.Time // event id -> when it joined a running episode
	firstBuzz map[string]time.Time // alert id -> first buzzing message sent
	ack       map[string]ackInfo   // alert id -> first acknowledgement
	diary     map[string]diaryInfo // alert id -> latest diary entry
}

type ackInfo struct {
	at     time.Time
	action string
}

type diaryInfo struct {
	at       time.Time
	pain     Opt[int64]
	remedies string
	note     string
}

func newLoopIndex() *loopIndex {
	return &loopIndex{
		alertOf:   map[string]string{},
		joined:    map[string]time.Time{},
		firstBuzz: map[string]time.Time{},
		ack:       map[string]ackInfo{},
		diary:     map[string]diaryInfo{},
	}
}

// addAlert indexes one row of measurement "alerts".
func (l *loopIndex) addAlert(r store.Row) {
	alertID, eventID := r.String("alert_id"), r.String("event_id")
	if alertID == "" || eventID == "" {
		return
	}
	if _, ok := l.alertOf[eventID]; !ok {
		l.alertOf[eventID] = alertID
	}
	outcome, typ := r.String("outcome"), r.String("type")
	if outcome == alerts.OutcomeSuppressed && r.String("reason") == alerts.SuppressConcurrent {
		l.joined[eventID] = r.Time
	}
	if outcome == alerts.OutcomeSent && (typ == alerts.TypeAlert || typ == alerts.TypeEscalation || typ == alerts.TypeTENSPrompt) {
		if t, ok := l.firstBuzz[alertID]; !ok || r.Time.Before(t) {
			l.firstBuzz[alertID] = r.Time
		}
	}
}

// addAck indexes one row of measurement "acks".
func (l *loopIndex) addAck(r store.Row) {
	alertID := r.String("alert_id")
	if alertID == "" {
		return
	}
	if a, ok := l.ack[alertID]; !ok || r.Time.Before(a.at) {
		l.ack[alertID] = ackInfo{at: r.Time, action: r.String("action")}
	}
}

// addDiary indexes one row of measurement "diary"; unlinked entries have
// no alert id and belong to no cramp.
func (l *loopIndex) addDiary(r store.Row) {
	alertID := r.String("alert_id")
	if alertID == "" {
		return
	}
	if d, ok := l.diary[alertID]; ok && !r.Time.After(d.at) {
		return
	}
	d := diaryInfo{at: r.Time, remedies: r.String("helped"), note: r.String("note")}
	if p, ok := r.Int("pain"); ok {
		d.pain = some(p)
	}
	l.diary[alertID] = d
}

// loopFacts is what the loop says about one cramp.
type loopFacts struct {
	alertID       string
	alerted       bool
	alertLatencyS float64
	acked         bool
	ackAction     string
	diary         *diaryInfo
}

// cramp looks up the cramp with this event id and onset. A cramp is
// alerted when a buzzing message (alert, escalation, TENS prompt) of its
// episode was sent; for a cramp that joined an episode already running,
// its alert time is when it joined, as the engine counts it.
func (l *loopIndex) cramp(eventID string, onset time.Time) loopFacts {
	var f loopFacts
	alertID, ok := l.alertOf[eventID]
	if !ok {
		return f
	}
	f.alertID = alertID
	if buzz, ok := l.firstBuzz[alertID]; ok {
		at := buzz
		if j, ok := l.joined[eventID]; ok && j.After(at) {
			at = j
		}
		f.alerted, f.alertLatencyS = true, at.Sub(onset).Seconds()
	}
	if a, ok := l.ack[alertID]; ok {
		f.acked, f.ackAction = true, a.action
	}
	if d, ok := l.diary[alertID]; ok {
		f.diary = &d
	}
	return f
}

// median returns the median of xs (which it sorts), false if empty.
func median(xs []float64) (float64, bool) {
	if len(xs) == 0 {
		return 0, false
	}
	slices.Sort(xs)
	n := len(xs)
	if n%2 == 1 {
		return xs[n/2], true
	}
	return (xs[n/2-1] + xs[n/2]) / 2, true
}

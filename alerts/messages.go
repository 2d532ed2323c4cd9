package alerts

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/crampwatch/crampwatch/wire"
)

// Advice is said with every alert, whatever the muscle.
const Advice = "Breathe slowly, apply warmth."

// Hint returns the stretch that relieves a cramp of muscle m.
func Hint(m wire.Muscle) string {
	switch m {
	case wire.Calf:
		return "Straighten the leg and pull the toes towards the shin."
	case wire.Hamstring:
		return "Straighten the leg and lift it slightly."
	case wire.Quadriceps:
		return "Bend the knee and bring the heel towards the buttock."
	case wire.Tibialis:
		// The shin muscle lifts the foot, so it is stretched the other way
		// round from the calf.
		return "Point the foot and toes gently downwards, away from the shin."
	}
	return "Gently stretch the cramping muscle."
}

// Message types on the alert and tens topics, also the webhook's event types.
const (
	TypeAlert      = "alert"       // gentle alert when a cramp is confirmed
	TypeEscalation = "escalation"  // stronger alert: the cramp persists unacknowledged
	TypeEnded      = "ended"       // the cramp (all cramps of the alert) is over
	TypeTENSPrompt = "tens_prompt" // prompt to start the wearer's TENS unit, on the tens topic
)

// Levels tell the wearer's device how to get attention.
const (
	LevelGentle = "gentle"
	LevelStrong = "strong"
	LevelInfo   = "info" // no vibration, no sound
)

// CrampRef names one cramp inside an alert.
type CrampRef struct {
	EventID string `json:"event_id"`
	Muscle  string `json:"muscle"`
	Side    string `json:"side"`
	Hint    string `json:"hint"`
}

// AlertMessage is published on {prefix}/{device}/alert (types alert,
// escalation and ended) and posted to the webhook.
type AlertMessage struct {
	Type   string `json:"type"`
	Level  string `json:"level"`
	ID     string `json:"id"` // alert id: the id an acknowledgement must echo
	Device string `json:"device"`
	// EventID, Muscle, Side and Hint describe the cramp that opened the alert.
	EventID string `json:"event_id"`
	Muscle  string `json:"muscle"`
	Side    string `json:"side"`
	Hint    string `json:"hint"`
	Advice  string `json:"advice,omitempty"`
	// Onset is the cramp's onset; Time is the sample time of this message.
	Onset time.Time `json:"onset"`
	Time  time.Time `json:"t"`
	// LatencyS is Time-Onset: how long after onset the wearer heard of it.
	LatencyS float64 `json:"latency_s"`
	// Cramps lists every cramp the alert covers (both legs when they cramp
	// together). Only in escalation and ended messages.
	Cramps []CrampRef `json:"cramps,omitempty"`
	// DurationS is the length of the whole episode (ended only).
	DurationS float64 `json:"duration_s,omitempty"`
	// Acked says whether the wearer answered (ended only).
	Acked *bool `json:"acked,omitempty"`
}

// TENSPrompt is published on {prefix}/{device}/tens and posted to the
// webhook. It asks; the wearer decides on their own device. It never starts
// stimulation and carries only the clinician's preset and bounds.
type TENSPrompt struct {
	Type     string    `json:"type"` // always tens_prompt
	Level    string    `json:"level"`
	ID       string    `json:"id"` // the alert id, echoed by tens_started / tens_declined
	Device   string    `json:"device"`
	EventID  string    `json:"event_id"`
	Muscle   string    `json:"muscle"`
	Side     string    `json:"side"`
	Onset    time.Time `json:"onset"`
	Time     time.Time `json:"t"`
	LatencyS float64   `json:"latency_s"`
	Preset   string    `json:"preset"`
	MinMA    float64   `json:"min_ma"`
	MaxMA    float64   `json:"max_ma"`
	StartMA  float64   `json:"start_ma"`
	// MaxDurationS is the longest session the clinician allows.
	MaxDurationS float64 `json:"max_duration_s"`
	Text         string  `json:"text"`
	// Answers are the acknowledgement actions the prompt expects.
	Answers []string `json:"answers"`
}

// Ack actions a wearer may send.
const (
	ActionOK           = "ok"            // seen, stop escalating
	ActionSnooze       = "snooze"        // hold escalation for SnoozeFor, then continue
	ActionDismiss      = "dismiss"       // stop escalating, no TENS prompt
	ActionTENSStarted  = "tens_started"  // the wearer started their TENS unit
	ActionTENSDeclined = "tens_declined" // the wearer does not want TENS now
)

func validAction(a string) bool {
	switch a {
	case ActionOK, ActionSnooze, ActionDismiss, ActionTENSStarted, ActionTENSDeclined:
		return true
	}
	return false
}

// Ack is the wearer's answer on {prefix}/{device}/ack.
type Ack struct {
	ID     string `json:"id"`
	Action string `json:"action"`
}

// Remedy is something that helped, as the diary names it.
type Remedy string

// The remedies a diary entry may list.
const (
	RemedyStretch    Remedy = "stretch"
	RemedyHeat       Remedy = "heat"
	RemedyMassage    Remedy = "massage"
	RemedyWalk       Remedy = "walk"
	RemedyWater      Remedy = "water"
	RemedyMagnesium  Remedy = "magnesium"
	RemedyTENS       Remedy = "tens"
	RemedyMedication Remedy = "medication"
)

// remedies lists every remedy in a fixed order; read only.
var remedies = [...]Remedy{RemedyStretch, RemedyHeat, RemedyMassage, RemedyWalk, RemedyWater, RemedyMagnesium, RemedyTENS, RemedyMedication}

// AllRemedies returns every remedy in a fixed order.
func AllRemedies() []Remedy {
	r := remedies // a copy: callers must not change the table
	return r[:]
}

func validRemedy(r Remedy) bool {
	for _, k := range remedies {
		if r == k {
			return true
		}
	}
	return false
}

// DiaryEntry is a symptom diary entry on {prefix}/{device}/diary.
type DiaryEntry struct {
	// Pain is 0 (none) to 10 (worst); nil if not given.
	Pain *int `json:"pain,omitempty"`
	// Helped lists what relieved the cramp.
	Helped []Remedy `json:"helped,omitempty"`
	Note   string   `json:"note,omitempty"`
	// T is when the cramp happened (or the entry was written), Unix
	// microseconds; 0 means the time the service received the entry.
	T int64 `json:"t,omitempty"`
	// ID optionally names the alert (or EventID the event) the entry is
	// about; without either the entry goes to the nearest cramp of the night.
	ID      string `json:"id,omitempty"`
	EventID string `json:"event_id,omitempty"`
}

// Limits on inbound messages.
const (
	MaxInboundBytes = 4096 // ack or diary payload
	MaxNoteBytes    = 1000 // diary free text
)

// Reason is a stable, metric-label-safe name for why an ack or diary entry was rejected.
type Reason string

// Rejection reasons for acknowledgements and diary entries.
const (
	ReasonOversize      Reason = "oversize"
	ReasonBadDevice     Reason = "bad_device"
	ReasonBadJSON       Reason = "bad_json"
	ReasonMissingID     Reason = "missing_id"
	ReasonUnknownID     Reason = "unknown_id"
	ReasonUnknownDevice Reason = "unknown_device" // this engine has never seen the device (another instance may own it)
	ReasonBadAction     Reason = "bad_action"
	ReasonBadPain       Reason = "bad_pain"
	ReasonUnknownRemedy Reason = "unknown_remedy"
	ReasonBadNote       Reason = "bad_note"
	ReasonBadTime       Reason = "bad_time"
	ReasonEmpty         Reason = "empty"
	ReasonClosed        Reason = "closed"
)

// RejectError is a rejected acknowledgement or diary entry.
type RejectError struct {
	Reason Reason
	Detail string
}

func (e *RejectError) Error() string { return fmt.Sprintf("%s: %s", e.Reason, e.Detail) }

func reject(r Reason, format string, args ...any) *RejectError {
	return &RejectError{Reason: r, Detail: fmt.Sprintf(format, args...)}
}

// ParseAck decodes and checks an acknowledgement payload. It does not know
// which ids exist; the engine checks that.
func ParseAck(payload []byte) (Ack, error) {
	var a Ack
	if len(payload) > MaxInboundBytes {
		return a, reject(ReasonOversize, "%d bytes, limit %d", len(payload), MaxInboundBytes)
	}
	if err := json.Unmarshal(payload, &a); err != nil {
		return a, reject(ReasonBadJSON, "%v", err)
	}
	if a.ID == "" {
		return a, reject(ReasonMissingID, "ack without id")
	}
	if len(a.ID) > 200 {
		return a, reject(ReasonUnknownID, "id of %d bytes", len(a.ID))
	}
	if !validAction(a.Action) {
		return a, reject(ReasonBadAction, "action %q: want ok, snooze, dismiss, tens_started or tens_declined", clip(a.Action))
	}
	return a, nil
}

// diaryWire is the diary payload as sent; pain is a number so that 3.5 is
// rejected with a reason rather than a JSON type error.
type diaryWire struct {
	Pain    *float64 `json:"pain"`
	Helped  []string `json:"helped"`
	Note    string   `json:"note"`
	T       int64    `json:"t"`
	ID      string   `json:"id"`
	EventID string   `json:"event_id"`
}

// ParseDiary decodes and checks a diary payload.
func ParseDiary(payload []byte) (DiaryEntry, error) {
	var d DiaryEntry
	if len(payload) > MaxInboundBytes {
		return d, reject(ReasonOversize, "%d bytes, limit %d", len(payload), MaxInboundBytes)
	}
	var w diaryWire
	dec := json.NewDecoder(bytes.NewReader(payload))
	if err := dec.Decode(&w); err != nil {
		return d, reject(ReasonBadJSON, "%v", err)
	}
	if w.Pain != nil {
		p := *w.Pain
		if p != math.Trunc(p) || p < 0 || p > 10 {
			return d, reject(ReasonBadPain, "pain %v: want a whole number 0..10", p)
		}
		n := int(p)
		d.Pain = &n
	}
	for _, h := range w.Helped {
		r := Remedy(strings.ToLower(strings.TrimSpace(h)))
		if !validRemedy(r) {
			return d, reject(ReasonUnknownRemedy, "helped %q: want stretch, heat, massage, walk, water, magnesium, tens or medication", clip(h))
		}
		dup := false
		for _, have := range d.Helped {
			dup = dup || have == r
		}
		if !dup {
			d.Helped = append(d.Helped, r)
		}
	}
	if len(w.Note) > MaxNoteBytes || !utf8.ValidString(w.Note) {
		return d, reject(ReasonBadNote, "note: want valid UTF-8 of at most %d bytes", MaxNoteBytes)
	}
	d.Note = strings.TrimSpace(w.Note)
	if w.T < 0 {
		return d, reject(ReasonBadTime, "t %d: want Unix microseconds", w.T)
	}
	d.T = w.T
	if len(w.ID) > 200 || len(w.EventID) > 200 {
		return d, reject(ReasonUnknownID, "id too long")
	}
	d.ID, d.EventID = w.ID, w.EventID
	if d.Pain == nil && len(d.Helped) == 0 && d.Note == "" {
		return d, reject(ReasonEmpty, "diary entry without pain, helped or note")
	}
	return d, nil
}

// clip shortens hostile strings before they go into error details.
func clip(s string) string {
	const max = 40
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}

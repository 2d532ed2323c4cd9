package alerts

import (
	"context"
	"time"

	"github.com/crampwatch/crampwatch/wire"
)

// Recorder keeps every alert decision, acknowledgement and diary entry, e.g.
// in InfluxDB (store.AlertRecorder). The engine calls it from its own
// goroutine, one record at a time, so implementations may block up to the
// context's deadline.
type Recorder interface {
	RecordAlert(ctx context.Context, r AlertRecord) error
	RecordAck(ctx context.Context, r AckRecord) error
	RecordDiary(ctx context.Context, r DiaryRecord) error
}

// Outcomes of an alert decision.
const (
	OutcomeSent       = "sent"
	OutcomeSuppressed = "suppressed"
)

// Suppression reasons: why a message that was due was not sent.
const (
	SuppressCooldown   = "cooldown"       // gentle alert within Cooldown of the last alerted cramp
	SuppressHourlyCap  = "hourly_cap"     // MaxPerHour reached
	SuppressQuietHours = "quiet_hours"    // escalation or TENS prompt in quiet hours
	SuppressConcurrent = "concurrent"     // the cramp joined an alert already running (e.g. both legs)
	SuppressNoPreset   = "no_tens_preset" // TENS prompt due but no preset configured
	SuppressOutOfBound = "out_of_bounds"  // TENS intensity outside the bounds (never with a valid Config)
)

// AlertRecord is one decision about one message: sent or suppressed.
type AlertRecord struct {
	Device  string
	Type    string // TypeAlert, TypeEscalation, TypeTENSPrompt or TypeEnded
	Outcome string // OutcomeSent or OutcomeSuppressed
	Reason  string // suppression reason, empty when sent
	AlertID string
	EventID string
	Channel wire.Channel
	Onset   time.Time // cramp onset, sample time
	Time    time.Time // sample time of the decision
	// LatencyS is Time-Onset in seconds.
	LatencyS float64
	// DurationS is the episode's length (ended only).
	DurationS float64
	// Acked says whether the wearer had answered (ended only).
	Acked bool
	// TENS is the preset that was offered (tens_prompt only).
	TENS TENSConfig
}

// AckRecord is one accepted acknowledgement.
type AckRecord struct {
	Device  string
	AlertID string
	EventID string
	Action  string
	Channel wire.Channel
	Onset   time.Time
	// Time is when the ack was applied: the device's newest sample time, so
	// it is on the same clock as the alert it answers.
	Time time.Time
	// LatencyS is Time-Onset; SinceAlertS is Time minus the first message the
	// wearer got for this alert (0 if none was sent).
	LatencyS, SinceAlertS float64
}

// DiaryRecord is one accepted diary entry and the cramp it was linked to.
type DiaryRecord struct {
	Device string
	Time   time.Time // the entry's t, or its receipt time
	Night  string    // the night it belongs to, YYYY-MM-DD of the evening it began
	Entry  DiaryEntry
	// Linked is false when no cramp of that night was on record.
	Linked  bool
	AlertID string
	EventID string
	Channel wire.Channel
	Onset   time.Time
	// OffsetS is Time-Onset of the linked cramp.
	OffsetS float64
}

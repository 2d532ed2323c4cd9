package detect

import (
	"fmt"
	"time"

	"github.com/crampwatch/crampwatch/wire"
)

// Kind is the class of a detected event, as in the product spec.
type Kind string

// The event kinds.
const (
	KindCramp    Kind = "cramp"
	KindPLM      Kind = "plm"
	KindMovement Kind = "movement"
	KindArtifact Kind = "artifact"
)

// State says whether an event is still going on.
type State string

// A cramp is reported when confirmed (StateOngoing) and again when it ends
// (StateEnded). Other kinds are reported once, already ended.
const (
	StateOngoing State = "ongoing"
	StateEnded   State = "ended"
)

// Event is one detected event. All times are sample times (device clock).
type Event struct {
	Device string
	Kind   Kind
	State  State
	// Channel is the muscle and side the event belongs to. For leg-level events
	// (movement, a lead-off of the IMU) it is the EMG channel with the largest
	// burst on that leg.
	Channel wire.Channel
	Onset   time.Time
	// End is the end of the event; for an ongoing cramp it is the sample time of
	// confirmation.
	End time.Time
	// ConfirmedAt is the sample time at which the detector confirmed the event;
	// ConfirmedAt-Onset is the alert latency a wearer experiences.
	ConfirmedAt  time.Time
	DurationS    float64 // End-Onset in seconds
	PeakUV       float64 // peak envelope (RMS) amplitude, microvolts
	MeanUV       float64 // mean envelope amplitude over the event, microvolts
	MedianFreqHz float64 // median frequency of the EMG spectrum during the event, 0 if unknown
	Confidence   float64 // 0..1
	// Cause names what an artifact was: lead_off, flat_line, saturation,
	// mains_hum or gap. Empty for other kinds.
	Cause string
}

// ID returns a stable identifier of the event: the ongoing and ended reports
// of one cramp share it, so sinks can overwrite one with the other.
func (e *Event) ID() string {
	return fmt.Sprintf("%s-%s-%s-%d", e.Device, e.Kind, e.Channel, e.Onset.UnixMicro())
}

// Envelope is one point of a channel's signal envelope, emitted at the
// configured envelope rate (default 10 Hz).
type Envelope struct {
	Device     string
	Channel    wire.Channel
	Time       time.Time
	RMSUV      float64 // RMS of the band-passed EMG over the last window, microvolts
	BaselineUV float64 // resting baseline of this channel, microvolts
}

// Motion is one point of an IMU site's motion features, emitted at the envelope rate.
type Motion struct {
	Device   string
	Site     wire.Site
	Time     time.Time
	Activity float64 // high-passed acceleration magnitude, g (RMS over the window)
	TiltDeg  float64 // change of the segment's orientation from its resting orientation, degrees
}

// Output receives what a Detector produces. Calls come from the goroutine
// that feeds the Detector; implementations must not block for long.
type Output interface {
	Event(Event)
	Envelope(Envelope)
	Motion(Motion)
}

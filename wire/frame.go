// Package wire implements wire contract v1: the frames that sensors publish
// over MQTT (EMG, IMU, status), their JSON and compact binary encodings, the
// topic layout, and the validation every frame passes before it is used.
//
// Decoders never panic on hostile input; every rejection is an *Error that
// carries a Reason, so callers can count rejections per reason.
package wire

import (
	"fmt"
	"strings"
)

// Stream identifies which of a device's topics a message belongs to.
type Stream uint8

// The streams of wire contract v1.
const (
	StreamEMG Stream = iota + 1
	StreamIMU
	StreamStatus
	StreamAck
	StreamDiary
	StreamAlert
	StreamTENS
	StreamEvents
)

var streamNames = [...]string{
	StreamEMG:    "emg",
	StreamIMU:    "imu",
	StreamStatus: "status",
	StreamAck:    "ack",
	StreamDiary:  "diary",
	StreamAlert:  "alert",
	StreamTENS:   "tens",
	StreamEvents: "events",
}

// String returns the topic level of the stream, e.g. "emg".
func (s Stream) String() string {
	if int(s) < len(streamNames) && streamNames[s] != "" {
		return streamNames[s]
	}
	return fmt.Sprintf("stream(%d)", uint8(s))
}

// ParseStream maps a topic level such as "emg" to its Stream.
func ParseStream(level string) (Stream, bool) {
	for i, n := range streamNames {
		if n != "" && n == level {
			return Stream(i), true
		}
	}
	return 0, false
}

// Muscle is one of the muscles an EMG electrode pair can sit on.
type Muscle uint8

// The muscles of wire contract v1.
const (
	Calf Muscle = iota + 1
	Hamstring
	Quadriceps
	Tibialis
)

var muscleNames = [...]string{Calf: "calf", Hamstring: "hamstring", Quadriceps: "quadriceps", Tibialis: "tibialis"}

// String returns the contract name of the muscle, e.g. "calf".
func (m Muscle) String() string {
	if int(m) < len(muscleNames) && muscleNames[m] != "" {
		return muscleNames[m]
	}
	return "unknown"
}

// Side is the leg a sensor is on.
type Side uint8

// Left and Right legs.
const (
	Left Side = iota + 1
	Right
)

// String returns "left" or "right".
func (s Side) String() string {
	switch s {
	case Left:
		return "left"
	case Right:
		return "right"
	}
	return "unknown"
}

// Other returns the opposite leg.
func (s Side) Other() Side {
	if s == Left {
		return Right
	}
	return Left
}

// Channel is one EMG channel, labelled "<muscle>_<side>" on the wire.
type Channel struct {
	Muscle Muscle
	Side   Side
}

// String returns the wire label, e.g. "calf_left".
func (c Channel) String() string { return c.Muscle.String() + "_" + c.Side.String() }

// ParseChannel parses a wire label such as "calf_left".
func ParseChannel(label string) (Channel, error) {
	m, s, ok := strings.Cut(label, "_")
	if !ok {
		return Channel{}, fmt.Errorf("channel %q: want <muscle>_<side>", label)
	}
	var c Channel
	for i, n := range muscleNames {
		if n != "" && n == m {
			c.Muscle = Muscle(i)
		}
	}
	switch s {
	case "left":
		c.Side = Left
	case "right":
		c.Side = Right
	}
	if c.Muscle == 0 || c.Side == 0 {
		return Channel{}, fmt.Errorf("channel %q: unknown muscle or side", label)
	}
	return c, nil
}

// Segment is the body segment an IMU is strapped to.
type Segment uint8

// Shank (lower leg) and Thigh.
const (
	Shank Segment = iota + 1
	Thigh
)

// Site is where an IMU sits, labelled "<segment>_<side>" on the wire, e.g. "shank_left".
type Site struct {
	Segment Segment
	Side    Side
}

// String returns the wire label, e.g. "shank_left".
func (s Site) String() string {
	seg := "unknown"
	switch s.Segment {
	case Shank:
		seg = "shank"
	case Thigh:
		seg = "thigh"
	}
	return seg + "_" + s.Side.String()
}

// ParseSite parses a wire label such as "shank_left".
func ParseSite(label string) (Site, error) {
	g, sd, ok := strings.Cut(label, "_")
	if !ok {
		return Site{}, fmt.Errorf("site %q: want <segment>_<side>", label)
	}
	var s Site
	switch g {
	case "shank":
		s.Segment = Shank
	case "thigh":
		s.Segment = Thigh
	}
	switch sd {
	case "left":
		s.Side = Left
	case "right":
		s.Side = Right
	}
	if s.Segment == 0 || s.Side == 0 {
		return Site{}, fmt.Errorf("site %q: unknown segment or side", label)
	}
	return s, nil
}

// Unit is the unit EMG samples were sent in.
type Unit uint8

// Microvolt and Millivolt.
const (
	Microvolt Unit = iota + 1
	Millivolt
)

// String returns "uV" or "mV".
func (u Unit) String() string {
	switch u {
	case Microvolt:
		return "uV"
	case Millivolt:
		return "mV"
	}
	return "unknown"
}

// EMGFrame is one frame of multi-channel EMG. After decoding, Data is always
// in microvolts whatever Unit the device sent; Unit records what it sent.
type EMGFrame struct {
	Seq      uint32    // per device and stream, +1 per frame, wraps
	T0       int64     // time of the first sample, Unix microseconds, device clock
	Rate     float64   // samples per second per channel, 250..4000
	Unit     Unit      // unit on the wire
	Channels []Channel // one label per row of Data
	Data     [][]float64
}

// Len returns the number of samples per channel.
func (f *EMGFrame) Len() int {
	if len(f.Data) == 0 {
		return 0
	}
	return len(f.Data[0])
}

// End returns the time just after the last sample, Unix microseconds.
func (f *EMGFrame) End() int64 { return f.T0 + SpanMicros(f.Len(), f.Rate) }

// IMUFrame is one frame of IMU data from one site.
type IMUFrame struct {
	Seq  uint32
	T0   int64   // Unix microseconds, device clock
	Rate float64 // samples per second, 10..1000
	Site Site
	Acc  [][3]float64 // acceleration in g
	Gyr  [][3]float64 // angular rate in degrees per second
}

// Len returns the number of samples.
func (f *IMUFrame) Len() int { return len(f.Acc) }

// End returns the time just after the last sample, Unix microseconds.
func (f *IMUFrame) End() int64 { return f.T0 + SpanMicros(f.Len(), f.Rate) }

// StatusFrame is a device's health report, often retained.
type StatusFrame struct {
	T          int64     // Unix microseconds, device clock
	BatteryPct float64   // 0..100, or -1 if the frame did not carry it
	Firmware   string    // free-form version string, at most 64 bytes
	LeadOff    []Channel // channels whose electrodes report lead-off
	RSSI       float64   // radio signal strength in dBm, 0 if unknown
}

// SpanMicros is the duration of n samples at rate, in microseconds.
func SpanMicros(n int, rate float64) int64 {
	if rate <= 0 {
		return 0
	}
	return int64(float64(n) * 1e6 / rate)
}

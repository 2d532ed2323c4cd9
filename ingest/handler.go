package ingest

import (
	"time"

	"github.com/crampwatch/crampwatch/wire"
)

// Handler receives one device's frames in order, without duplicates. The
// router calls it from one goroutine per shard, and a device always maps to
// the same shard, so calls for one device never overlap. Frames are only
// valid during the call: the router reuses their buffers.
type Handler interface {
	EMG(device string, f *wire.EMGFrame)
	IMU(device string, f *wire.IMUFrame)
	Status(device string, s *wire.StatusFrame)
	// Gap reports lost frames on a stream: lost frames between the end of the
	// last frame seen (from) and the start of the next one (to), Unix microseconds.
	Gap(device string, stream wire.Stream, lost int, from, to int64)
	// Health reports the device's link state, every HealthInterval of sample
	// time and after every status frame.
	Health(h Health)
}

// Health is a device's link and battery state, reported periodically.
type Health struct {
	Device     string
	Time       time.Time // sample time of the newest frame
	BatteryPct float64   // -1 if never reported
	Firmware   string
	LeadOff    []wire.Channel
	FramesIn   uint64    // frames accepted since start
	FramesLost uint64    // frames missing by sequence number
	FramesDup  uint64    // duplicates dropped
	FramesLate uint64    // frames dropped because they arrived after being counted as lost
	Rejected   uint64    // frames rejected as malformed
	LastSeen   time.Time // wall-clock time the service last heard from the device
	LagSeconds float64   // wall clock minus sample time of the newest frame
}

package ingest

import (
	"math"
	"runtime"
	"time"

	"github.com/crampwatch/crampwatch/wire"
)

// Config tunes a Router. The zero value of every field means its default.
type Config struct {
	// Prefix is the topic prefix, default wire.DefaultPrefix.
	Prefix string
	// Shards is the number of worker goroutines, default runtime.GOMAXPROCS(0).
	// A device always maps to one shard (a hash of its id).
	Shards int
	// QueueLen bounds each shard's queue of messages, default 1024.
	QueueLen int
	// MaxPayload is the largest payload accepted, default wire.DefaultMaxPayload.
	MaxPayload int
	// MaxDevices bounds the per-device state, default 10000. Messages from
	// new devices past it are rejected with ReasonTooManyDevices.
	MaxDevices int
	// HealthInterval is the sample time between Health reports of a device,
	// default 10 s.
	HealthInterval time.Duration
	// ReorderWindow is how many frames of a stream are held while waiting
	// for a missing one, default 8. A negative value disables reordering:
	// a missing frame is given up as soon as a later one arrives.
	ReorderWindow int
	// ReorderHold is how much sample time the held frames may span past a
	// missing frame before it is given up, default 1 s.
	ReorderHold time.Duration
	// IdleTimeout is the wall-clock time after which a silent device's state
	// is dropped (freeing its MaxDevices slot), default 2 h. When it sends
	// again its stream starts afresh. Negative disables eviction.
	IdleTimeout time.Duration
	// QueueWait is how long Handle waits for room in a full shard queue
	// before it drops the message. The default, 0, never waits. The service
	// sets it so that a backlog (a broker delivering a persistent session's
	// queued frames after an outage) slows the MQTT delivery goroutine down
	// to the detectors' pace instead of being dropped: the broker holds what
	// does not fit, and a message is acknowledged only once it is queued.
	QueueWait time.Duration
	// DeviceRate limits each device's live messages (EMG, IMU and status
	// together) to this many per wall-clock second, with bursts of
	// DeviceBurst; messages over the limit are dropped before they are
	// decoded and counted as rate_limited. Default 100 (a device sends 10
	// to 40); negative disables the limit. Messages passed to Feed and
	// frames of a device that is catching up (see CatchUpLag) are exempt.
	DeviceRate float64
	// DeviceBurst is the token bucket's size, default 10 s of DeviceRate: a
	// live device that flushes its buffer after a network hiccup of a few
	// seconds (frames less than CatchUpLag old, so not exempt) must fit.
	DeviceBurst int
	// CatchUpLag exempts a device from DeviceRate while its newest frame,
	// delivered in order, was more than this far behind the wall clock,
	// default 10 s: after an outage the broker delivers the frames it kept
	// much faster than they were recorded, and none of them may be lost.
	// A flood runs ahead of the wall clock or repeats old frames, so it is
	// never exempt.
	CatchUpLag time.Duration
	// ClockJump is how far a frame may start after the end of the frame
	// before it, with no sequence number missing, before the router reports
	// a discontinuity (a Gap with lost = 0): the device clock stepped
	// forward. Default ReorderHold.
	ClockJump time.Duration
}

// Defaults for Config fields left zero.
const (
	DefaultQueueLen       = 1024
	DefaultMaxDevices     = 10000
	DefaultHealthInterval = 10 * time.Second
	DefaultReorderWindow  = 8
	DefaultReorderHold    = time.Second
	DefaultIdleTimeout    = 2 * time.Hour
	DefaultDeviceRate     = 100
	DefaultDeviceBurstS   = 10 // seconds of DeviceRate
	DefaultCatchUpLag     = 10 * time.Second
)

// withDefaults returns cfg with every zero field set to its default.
func (cfg Config) withDefaults() Config {
	if cfg.Prefix == "" {
		cfg.Prefix = wire.DefaultPrefix
	}
	if cfg.Shards <= 0 {
		cfg.Shards = runtime.GOMAXPROCS(0)
	}
	if cfg.QueueLen <= 0 {
		cfg.QueueLen = DefaultQueueLen
	}
	if cfg.MaxPayload <= 0 {
		cfg.MaxPayload = wire.DefaultMaxPayload
	}
	if cfg.MaxDevices <= 0 {
		cfg.MaxDevices = DefaultMaxDevices
	}
	if cfg.HealthInterval <= 0 {
		cfg.HealthInterval = DefaultHealthInterval
	}
	switch {
	case cfg.ReorderWindow == 0:
		cfg.ReorderWindow = DefaultReorderWindow
	case cfg.ReorderWindow < 0:
		cfg.ReorderWindow = 0
	}
	if cfg.ReorderHold <= 0 {
		cfg.ReorderHold = DefaultReorderHold
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.QueueWait < 0 {
		cfg.QueueWait = 0
	}
	switch {
	case cfg.DeviceRate == 0:
		cfg.DeviceRate = DefaultDeviceRate
	case cfg.DeviceRate < 0 || math.IsNaN(cfg.DeviceRate):
		cfg.DeviceRate = 0
	}
	if cfg.DeviceBurst <= 0 {
		cfg.DeviceBurst = max(1, int(DefaultDeviceBurstS*cfg.DeviceRate))
	}
	if cfg.CatchUpLag <= 0 {
		cfg.CatchUpLag = DefaultCatchUpLag
	}
	if cfg.ClockJump <= 0 {
		cfg.ClockJump = cfg.ReorderHold
	}
	return cfg
}

// seqConfig derives the sequencer settings. A stream that sends only frames
// it cannot deliver (late, or with times going backwards) for this many
// frames in a row is restarted at the newest frame: its device's counter or
// clock jumped back for good, and dropping everything until it catches up
// would silence the wearer's sensor for as long.
func (cfg Config) seqConfig() seqConfig {
	return seqConfig{
		window: cfg.ReorderWindow,
		hold:   cfg.ReorderHold.Microseconds(),
		resync: 2*cfg.ReorderWindow + 16,
		jump:   cfg.ClockJump.Microseconds(),
	}
}

package ingest

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crampwatch/crampwatch/wire"
)

// Reasons the router adds to wire's rejection reasons.
const (
	// ReasonTooManyDevices rejects a message from a new device when
	// Config.MaxDevices devices already have state.
	ReasonTooManyDevices wire.Reason = "too_many_devices"
	// ReasonRateLimited drops a live message of a device that exceeds
	// Config.DeviceRate, before it is decoded.
	ReasonRateLimited wire.Reason = "rate_limited"
	// ReasonUnknown labels a decoder error that carried no wire.Reason; it
	// should never be seen, and is counted rather than hidden if it is.
	ReasonUnknown wire.Reason = "unknown"
)

// Metrics are the router's Prometheus metrics, all prefixed
// crampwatch_ingest_. One Metrics serves one Router.
type Metrics struct {
	frames       *prometheus.CounterVec
	rejected     *prometheus.CounterVec
	lost         prometheus.Counter
	duplicate    prometheus.Counter
	late         prometheus.Counter
	resets       prometheus.Counter
	unrouted     prometheus.Counter
	queueDropped prometheus.Counter
	queueWaits   prometheus.Counter
	clockJumps   prometheus.Counter
	queueDepth   *prometheus.GaugeVec
	lag          prometheus.Histogram
	devices      prometheus.Gauge
	evicted      prometheus.Counter

	// Children resolved once, so the hot path does no label lookups.
	framesEMG, framesIMU, framesStatus prometheus.Counter
}

// NewMetrics creates the router's metrics and registers them with reg; a nil
// reg leaves them unregistered (tests, tools).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	const ns, sub = "crampwatch", "ingest"
	m := &Metrics{
		frames: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "frames_total",
			Help: "Frames delivered in order to the pipeline, by stream (emg, imu, status).",
		}, []string{"stream"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "rejected_total",
			Help: "Messages rejected as malformed or not acceptable, by reason.",
		}, []string{"reason"}),
		lost: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "lost_frames_total",
			Help: "Frames missing by sequence number (never arrived, arrived too late, or rejected).",
		}),
		duplicate: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "duplicate_frames_total",
			Help: "Frames dropped because their sequence number was already delivered or held (QoS 1 redelivery).",
		}),
		late: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "late_frames_total",
			Help: "Frames dropped because they arrived after their sequence number was given up as lost.",
		}),
		resets: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "stream_resets_total",
			Help: "Device streams restarted: reboots (sequence number back, time forward) and resynchronisations.",
		}),
		unrouted: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "unrouted_total",
			Help: "Valid topics that are not the router's (ack, diary, alert, ...), ignored.",
		}),
		queueDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "queue_dropped_total",
			Help: "Messages dropped because their shard's queue was full.",
		}),
		queueWaits: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "queue_waits_total",
			Help: "Messages Handle had to wait for room in a full shard queue (backpressure towards the broker).",
		}),
		clockJumps: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "clock_jumps_total",
			Help: "Frames that followed their predecessor by sequence number but started more than Config.ClockJump after it ended (device clock stepped forward).",
		}),
		queueDepth: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "queue_depth",
			Help: "Messages waiting in each shard's queue.",
		}, []string{"shard"}),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: ns, Subsystem: sub, Name: "lag_seconds",
			Help:    "Wall clock at decode minus the sample time of the frame's last sample.",
			Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300},
		}),
		devices: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "devices",
			Help: "Devices with ingest state.",
		}),
		evicted: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "devices_evicted_total",
			Help: "Device states dropped after Config.IdleTimeout of silence.",
		}),
	}
	m.framesEMG = m.frames.WithLabelValues(wire.StreamEMG.String())
	m.framesIMU = m.frames.WithLabelValues(wire.StreamIMU.String())
	m.framesStatus = m.frames.WithLabelValues(wire.StreamStatus.String())
	// Create every reason up front so dashboards show zeros, not gaps.
	for _, r := range wire.Reasons() {
		m.rejected.WithLabelValues(string(r))
	}
	m.rejected.WithLabelValues(string(ReasonTooManyDevices))
	m.rejected.WithLabelValues(string(ReasonRateLimited))
	if reg != nil {
		reg.MustRegister(m.frames, m.rejected, m.lost, m.duplicate, m.late, m.resets, m.unrouted,
			m.queueDropped, m.queueWaits, m.clockJumps, m.queueDepth, m.lag, m.devices, m.evicted)
	}
	return m
}

func (m *Metrics) reject(r wire.Reason) { m.rejected.WithLabelValues(string(r)).Inc() }

func (m *Metrics) shardDepth(i int) prometheus.Gauge {
	return m.queueDepth.WithLabelValues(strconv.Itoa(i))
}

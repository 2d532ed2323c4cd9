package alerts

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics counts what the alert engine decides and delivers.
type Metrics struct {
	messages   *prometheus.CounterVec
	suppressed *prometheus.CounterVec
	latency    *prometheus.HistogramVec
	acks       *prometheus.CounterVec
	ackRejects *prometheus.CounterVec
	diary      *prometheus.CounterVec
	diaryRej   *prometheus.CounterVec
	delivery   *prometheus.CounterVec
	// discPending counts Home Assistant discovery configs waiting for a
	// moment when no wearer message is queued.
	discPending prometheus.Gauge
	// state counts devices whose alert state was saved, loaded or rejected
	// across a restart.
	state *prometheus.CounterVec
}

// NewMetrics creates the engine's metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crampwatch_alert_messages_total",
			Help: "Messages sent to wearers, by type (alert, escalation, tens_prompt, ended).",
		}, []string{"type"}),
		suppressed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crampwatch_alert_suppressed_total",
			Help: "Messages that were due but not sent, by type and reason.",
		}, []string{"type", "reason"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "crampwatch_alert_latency_seconds",
			Help:    "Sample time from cramp onset to the message, by type.",
			Buckets: []float64{1, 2, 3, 4, 5, 7.5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300},
		}, []string{"type"}),
		acks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crampwatch_alert_acks_total",
			Help: "Accepted acknowledgements by action.",
		}, []string{"action"}),
		ackRejects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crampwatch_alert_acks_rejected_total",
			Help: "Rejected acknowledgements by reason.",
		}, []string{"reason"}),
		diary: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crampwatch_diary_entries_total",
			Help: "Accepted diary entries, by whether they were linked to a cramp.",
		}, []string{"linked"}),
		diaryRej: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crampwatch_diary_rejected_total",
			Help: "Rejected diary entries by reason.",
		}, []string{"reason"}),
		delivery: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crampwatch_alert_deliveries_total",
			Help: "Outbound deliveries by channel (mqtt, webhook, record, discovery) and result (ok, error, dropped).",
		}, []string{"channel", "result"}),
		discPending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "crampwatch_alert_discovery_pending",
			Help: "Home Assistant discovery configs waiting to be published; they go out only while no wearer message is queued.",
		}),
		state: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crampwatch_alert_state_devices_total",
			Help: "Devices whose alert state was kept across a restart, by result (saved, loaded, rejected: file unusable, device started afresh).",
		}, []string{"result"}),
	}
	reg.MustRegister(m.messages, m.suppressed, m.latency, m.acks, m.ackRejects, m.diary, m.diaryRej, m.delivery, m.discPending, m.state)
	return m
}

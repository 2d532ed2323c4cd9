package mqttclient

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the broker connection's Prometheus metrics, prefixed
// crampwatch_mqtt_.
type Metrics struct {
	connects       prometheus.Counter
	connectionLost prometheus.Counter
	reconnects     prometheus.Counter
	publishErrors  prometheus.Counter
	unexpected     prometheus.Counter
	connected      prometheus.Gauge
}

// NewMetrics creates the metrics and registers them with reg; a nil reg
// leaves them unregistered.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	const ns, sub = "crampwatch", "mqtt"
	m := &Metrics{
		connects: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "connects_total",
			Help: "Successful connections to the broker, the first one included.",
		}),
		connectionLost: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "connection_lost_total",
			Help: "Connections to the broker lost unexpectedly.",
		}),
		reconnects: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "reconnects_total",
			Help: "Reconnection attempts after a lost connection.",
		}),
		publishErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "publish_errors_total",
			Help: "Publishes that failed or were not confirmed before their context ended.",
		}),
		unexpected: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "unexpected_messages_total",
			Help: "Messages received that no subscription routes (e.g. a stale subscription of the persistent session); acknowledged and dropped.",
		}),
		connected: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "connected",
			Help: "Connections to the broker that are up (one per client; the service runs a subscriber and a publisher).",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.connects, m.connectionLost, m.reconnects, m.publishErrors, m.unexpected, m.connected)
	}
	return m
}

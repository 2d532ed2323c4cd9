// Package sinkmetrics holds the Prometheus metrics that every sink (InfluxDB,
// local journal, MQTT event publisher) reports under one set of names, so an
// operator can compare sinks in one dashboard panel: points written, write
// errors, points dropped, and queue depth, labelled by sink and measurement;
// and, for a sink with an on-disk spool, its size, the points spooled and
// the points a full spool turned away.
//
// The sinks live in different packages but must share one collector per
// metric name: registering the same name twice fails in Prometheus. New
// therefore reuses a collector that another sink already registered with the
// same Registerer.
package sinkmetrics

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics is the set of collectors shared by the sinks. Create it with New.
type Metrics struct {
	written *prometheus.CounterVec
	errs    *prometheus.CounterVec
	dropped *prometheus.CounterVec
	depth   *prometheus.GaugeVec

	// The spool metrics concern sinks with a durable on-disk spool (only
	// InfluxDB so far); a sink without one never creates their series.
	spoolBytes *prometheus.GaugeVec
	spooled    *prometheus.CounterVec
	spoolFull  *prometheus.CounterVec
}

// New creates the sink metrics and registers them with reg. If another sink
// already registered them with reg, their collectors are reused. A nil reg
// creates unregistered metrics, which is useful in tests.
func New(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		written: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crampwatch_sink_points_written_total",
			Help: "Points (events, envelope points, ...) a sink wrote successfully, by sink and measurement.",
		}, []string{"sink", "measurement"}),
		errs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crampwatch_sink_errors_total",
			Help: "Failed write attempts of a sink, by sink and measurement; a retried batch counts once per attempt.",
		}, []string{"sink", "measurement"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crampwatch_sink_dropped_total",
			Help: "Points a sink gave up on (queue full, rejected by the server, unsent at shutdown), by sink and measurement.",
		}, []string{"sink", "measurement"}),
		depth: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "crampwatch_sink_queue_depth",
			Help: "Points waiting in a sink's queue.",
		}, []string{"sink"}),
		spoolBytes: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "crampwatch_sink_spool_bytes",
			Help: "Bytes a sink holds in its on-disk spool, waiting to be replayed.",
		}, []string{"sink"}),
		spooled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crampwatch_sink_spooled_points_total",
			Help: "Points a sink could not write and put in its on-disk spool, by sink and measurement.",
		}, []string{"sink", "measurement"}),
		spoolFull: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crampwatch_sink_spool_full_total",
			Help: "Points a sink's full spool turned away or evicted to make room for events, by sink and measurement.",
		}, []string{"sink", "measurement"}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	if m.written, err = register(reg, m.written); err != nil {
		return nil, err
	}
	if m.errs, err = register(reg, m.errs); err != nil {
		return nil, err
	}
	if m.dropped, err = register(reg, m.dropped); err != nil {
		return nil, err
	}
	if m.depth, err = register(reg, m.depth); err != nil {
		return nil, err
	}
	if m.spoolBytes, err = register(reg, m.spoolBytes); err != nil {
		return nil, err
	}
	if m.spooled, err = register(reg, m.spooled); err != nil {
		return nil, err
	}
	if m.spoolFull, err = register(reg, m.spoolFull); err != nil {
		return nil, err
	}
	return m, nil
}

// register registers c, or returns the collector already registered under
// the same descriptor.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	if err == nil {
		return c, nil
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	return c, fmt.Errorf("sinkmetrics: register: %w", err)
}

// Sink returns the metrics of one sink, e.g. "influxdb".
func (m *Metrics) Sink(name string) *Sink {
	return &Sink{m: m, name: name, depth: m.depth.WithLabelValues(name)}
}

// Sink is the view of Metrics for one sink. Its methods are safe for
// concurrent use.
type Sink struct {
	m     *Metrics
	name  string
	depth prometheus.Gauge
}

// Written adds n points of measurement written successfully.
func (s *Sink) Written(measurement string, n int) {
	s.m.written.WithLabelValues(s.name, measurement).Add(float64(n))
}

// Error counts one failed write attempt that carried points of measurement.
func (s *Sink) Error(measurement string) {
	s.m.errs.WithLabelValues(s.name, measurement).Inc()
}

// Dropped adds n points of measurement that the sink gave up on.
func (s *Sink) Dropped(measurement string, n int) {
	s.m.dropped.WithLabelValues(s.name, measurement).Add(float64(n))
}

// Counters returns the written, error and dropped counters of one
// measurement, so a hot path can increment them without a label lookup.
func (s *Sink) Counters(measurement string) (written, errs, dropped prometheus.Counter) {
	return s.m.written.WithLabelValues(s.name, measurement),
		s.m.errs.WithLabelValues(s.name, measurement),
		s.m.dropped.WithLabelValues(s.name, measurement)
}

// SetDepth sets the queue depth gauge.
func (s *Sink) SetDepth(n int) { s.depth.Set(float64(n)) }

// SetSpoolBytes sets the size of the sink's on-disk spool.
func (s *Sink) SetSpoolBytes(n int64) {
	s.m.spoolBytes.WithLabelValues(s.name).Set(float64(n))
}

// Spooled adds n points of measurement put in the spool.
func (s *Sink) Spooled(measurement string, n int) {
	s.m.spooled.WithLabelValues(s.name, measurement).Add(float64(n))
}

// SpoolFull adds n points of measurement that the full spool turned away
// or evicted.
func (s *Sink) SpoolFull(measurement string, n int) {
	s.m.spoolFull.WithLabelValues(s.name, measurement).Add(float64(n))
}

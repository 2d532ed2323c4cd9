package sinkmetrics

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func TestSinksShareOneRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	a, err := New(reg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(reg) // a second sink package registering the same names
	if err != nil {
		t.Fatalf("second New: %v", err)
	}
	a.Sink("journal").Written("events", 2)
	b.Sink("eventpub").Written("events", 3)
	b.Sink("journal").Written("events", 1)
	w, _, _ := a.Sink("journal").Counters("events")
	if got := value(t, w); got != 3 {
		t.Errorf("journal written = %v, want 3 (both Metrics share the collector)", got)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "crampwatch_sink_points_written_total" && len(mf.GetMetric()) != 2 {
			t.Errorf("%d series, want 2", len(mf.GetMetric()))
		}
	}
}

func TestConflictingRegistrationFails(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "crampwatch_sink_errors_total", Help: "other"}))
	if _, err := New(reg); err == nil {
		t.Error("New succeeded despite a conflicting collector")
	}
}

func TestNilRegisterer(t *testing.T) {
	m, err := New(nil)
	if err != nil {
		t.Fatal(err)
	}
	s := m.Sink("x")
	s.Error("events")
	s.Dropped("events", 2)
	s.SetDepth(4)
	_, e, d := s.Counters("events")
	if value(t, e) != 1 || value(t, d) != 2 {
		t.Error("counters not counting without a registry")
	}
}

func value(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func TestSpoolMetricsOnlyForSpoolingSinks(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := New(reg)
	if err != nil {
		t.Fatal(err)
	}
	m.Sink("journal").Written("events", 1)
	s := m.Sink("influxdb")
	s.SetSpoolBytes(4096)
	s.Spooled("envelope", 7)
	s.Spooled("envelope", 3)
	s.SpoolFull("motion", 2)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, mt := range mf.GetMetric() {
			labels := ""
			for _, l := range mt.GetLabel() {
				labels += l.GetName() + "=" + l.GetValue() + ","
			}
			v := mt.GetCounter().GetValue()
			if mt.GetGauge() != nil {
				v = mt.GetGauge().GetValue()
			}
			got[mf.GetName()+"{"+labels+"}"] = v
		}
	}
	for name, want := range map[string]float64{
		"crampwatch_sink_spool_bytes{sink=influxdb,}":                               4096,
		"crampwatch_sink_spooled_points_total{measurement=envelope,sink=influxdb,}": 10,
		"crampwatch_sink_spool_full_total{measurement=motion,sink=influxdb,}":       2,
	} {
		if got[name] != want {
			t.Errorf("%s = %v, want %v", name, got[name], want)
		}
	}
	if _, ok := got["crampwatch_sink_spool_bytes{sink=journal,}"]; ok {
		t.Error("a sink without a spool exports a spool gauge")
	}
}

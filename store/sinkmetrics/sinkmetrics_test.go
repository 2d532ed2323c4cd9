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

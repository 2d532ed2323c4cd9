package store

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/influxdata/influxdb-client-go/v2/api/write"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/crampwatch/crampwatch/detect"
	"github.com/crampwatch/crampwatch/ingest"
	"github.com/crampwatch/crampwatch/pipeline"
)

var _ pipeline.Sink = (*Influx)(nil)

// fakeInflux answers /ping and /api/v2/write like InfluxDB, recording the
// bodies; status, if set, decides the status of each write in turn.
type fakeInflux struct {
	mu       sync.Mutex
	bodies   []string
	queries  []string // raw query strings of the write URLs
	statuses []int    // consumed one per write; 204 when empty
	hang     bool     // writes wait until the client gives up
	down     bool     // writes fail with 503, as a server that is starting or overloaded
	started  int      // write requests received
	srv      *httptest.Server
}

func newFakeInflux(t *testing.T) *fakeInflux {
	f := &fakeInflux{}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ping":
			w.WriteHeader(http.StatusNoContent)
			return
		case "/api/v2/write":
		default:
			http.NotFound(w, r)
			return
		}
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.started++
		hang := f.hang
		status := http.StatusNoContent
		if f.down {
			status = http.StatusServiceUnavailable
		} else if len(f.statuses) > 0 {
			status, f.statuses = f.statuses[0], f.statuses[1:]
		}
		f.mu.Unlock()
		if hang {
			<-r.Context().Done()
			return
		}
		if status == http.StatusNoContent {
			f.mu.Lock()
			f.bodies = append(f.bodies, string(body))
			f.queries = append(f.queries, r.URL.RawQuery)
			f.mu.Unlock()
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		if status != http.StatusNoContent {
			io.WriteString(w, `{"code":"invalid","message":"partial write: field type conflict"}`)
		}
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeInflux) writes() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.bodies...)
}

func lines(body string) []string { return strings.Split(strings.TrimSuffix(body, "\n"), "\n") }

func testConfig(url string) Config {
	cfg := DefaultConfig()
	cfg.URL = url
	cfg.Bucket = "db/rp"
	cfg.Org = "-"
	cfg.FlushInterval = time.Hour // tests flush by filling batches or closing
	cfg.Logger = slog.New(slog.DiscardHandler)
	return cfg
}

func newInflux(t *testing.T, cfg Config, reg prometheus.Registerer) *Influx {
	t.Helper()
	s, err := New(cfg, reg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// metric returns the value of a sink metric of the influxdb sink.
func metric(t testing.TB, reg *prometheus.Registry, name, measurement string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["sink"] != sinkName || labels["measurement"] != measurement {
				continue
			}
			if m.GetGauge() != nil {
				return m.GetGauge().GetValue()
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

func envelopeAt(i int) detect.Envelope {
	return detect.Envelope{Device: "d1", Channel: calfLeft, Time: onset.Add(time.Duration(i) * 100 * time.Millisecond), RMSUV: float64(i), BaselineUV: 2}
}

func TestInfluxEventsBeforeBulk(t *testing.T) {
	f := newFakeInflux(t)
	reg := prometheus.NewRegistry()
	s := newInflux(t, testConfig(f.srv.URL), reg)
	for i := range 3 {
		s.Envelope(envelopeAt(i))
	}
	s.Health(ingest.Health{Device: "d1", Time: onset, BatteryPct: 50})
	ongoing := endedCramp()
	ongoing.State = detect.StateOngoing
	s.Event(ongoing)
	s.Event(endedCramp())
	s.WritePoint(write.NewPointWithMeasurement("alerts").AddTag("device", "d1").AddField("level", 1).SetTime(onset))
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	w := f.writes()
	if len(w) != 2 {
		t.Fatalf("got %d writes, want 2 (events, then bulk): %q", len(w), w)
	}
	first, second := lines(w[0]), lines(w[1])
	if len(first) != 3 || !strings.Contains(first[0], `state="ongoing"`) || !strings.Contains(first[1], `state="ended"`) ||
		!strings.HasPrefix(first[2], "alerts,") {
		t.Errorf("first write is not ongoing, ended, alert:\n%s", w[0])
	}
	if len(second) != 4 || !strings.HasPrefix(second[0], "envelope,") || !strings.HasPrefix(second[3], "device_health,") {
		t.Errorf("second write is not the envelope and health points:\n%s", w[1])
	}
	if q := f.queries[0]; !strings.Contains(q, "precision=us") || !strings.Contains(q, "bucket=db%2Frp") {
		t.Errorf("write URL query %q lacks precision=us or the bucket", q)
	}
	for meas, want := range map[string]float64{"events": 2, "envelope": 3, "device_health": 1, "alerts": 1} {
		if got := metric(t, reg, "crampwatch_sink_points_written_total", meas); got != want {
			t.Errorf("written{%s} = %v, want %v", meas, got, want)
		}
	}
}

func TestInfluxFullBatchIsSentWithoutWaiting(t *testing.T) {
	f := newFakeInflux(t)
	cfg := testConfig(f.srv.URL)
	cfg.BatchSize = 3
	s := newInflux(t, cfg, nil)
	for i := range 7 {
		s.Envelope(envelopeAt(i))
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(f.writes()) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("full batches not sent before the flush interval: %d writes", len(f.writes()))
		}
		time.Sleep(time.Millisecond)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	w := f.writes()
	if len(w) != 3 || len(lines(w[0])) != 3 || len(lines(w[1])) != 3 || len(lines(w[2])) != 1 {
		t.Errorf("writes %q, want batches of 3, 3, 1", w)
	}
	// Order within the measurement is kept across batches.
	if !strings.Contains(lines(w[2])[0], "rms_uv=6,") {
		t.Errorf("last batch %q, want the 7th point", w[2])
	}
}

func TestInfluxPeriodicFlush(t *testing.T) {
	f := newFakeInflux(t)
	cfg := testConfig(f.srv.URL)
	cfg.FlushInterval = 20 * time.Millisecond
	s := newInflux(t, cfg, nil)
	defer s.Close(context.Background())
	s.Event(endedCramp())
	deadline := time.Now().Add(5 * time.Second)
	for len(f.writes()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("event not flushed by the flush interval")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestInfluxRetriesTransientErrors(t *testing.T) {
	f := newFakeInflux(t)
	f.statuses = []int{http.StatusServiceUnavailable, http.StatusTooManyRequests}
	reg := prometheus.NewRegistry()
	s := newInflux(t, testConfig(f.srv.URL), reg)
	s.Event(endedCramp())
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if w := f.writes(); len(w) != 1 || len(lines(w[0])) != 1 {
		t.Errorf("writes %q, want the event once", w)
	}
	if got := metric(t, reg, "crampwatch_sink_errors_total", "events"); got != 2 {
		t.Errorf("errors = %v, want 2", got)
	}
	if got := metric(t, reg, "crampwatch_sink_points_written_total", "events"); got != 1 {
		t.Errorf("written = %v, want 1", got)
	}
	if got := metric(t, reg, "crampwatch_sink_dropped_total", "events"); got != 0 {
		t.Errorf("dropped = %v, want 0", got)
	}
}

func TestInfluxDropsRejectedBatch(t *testing.T) {
	f := newFakeInflux(t)
	f.statuses = []int{http.StatusBadRequest}
	reg := prometheus.NewRegistry()
	s := newInflux(t, testConfig(f.srv.URL), reg)
	s.Event(endedCramp())
	s.Envelope(envelopeAt(0))
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The events batch was rejected and not retried; the envelope batch
	// after it went through.
	if w := f.writes(); len(w) != 1 || !strings.HasPrefix(w[0], "envelope,") {
		t.Errorf("writes %q, want only the envelope batch", w)
	}
	if got := metric(t, reg, "crampwatch_sink_dropped_total", "events"); got != 1 {
		t.Errorf("dropped{events} = %v, want 1", got)
	}
	if got := metric(t, reg, "crampwatch_sink_errors_total", "events"); got != 1 {
		t.Errorf("errors{events} = %v, want 1", got)
	}
}

func TestInfluxQueueFullDropsBulkKeepsEvents(t *testing.T) {
	f := newFakeInflux(t)
	cfg := testConfig(f.srv.URL)
	cfg.QueueSize = 5
	cfg.EventQueueSize = 2
	reg := prometheus.NewRegistry()
	s := newInflux(t, cfg, reg)
	for i := range 8 {
		s.Envelope(envelopeAt(i))
	}
	s.Event(endedCramp())
	s.Event(endedCramp())
	s.Event(endedCramp()) // over the event bound
	if got := depth(t, reg); got != 7 {
		t.Errorf("queue depth = %v, want 7 (5 envelope + 2 events)", got)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, meas string
		want       float64
	}{
		{"crampwatch_sink_points_written_total", "envelope", 5},
		{"crampwatch_sink_dropped_total", "envelope", 3},
		{"crampwatch_sink_points_written_total", "events", 2},
		{"crampwatch_sink_dropped_total", "events", 1},
	} {
		if got := metric(t, reg, tc.name, tc.meas); got != tc.want {
			t.Errorf("%s{%s} = %v, want %v", tc.name, tc.meas, got, tc.want)
		}
	}
	// After Close, points are counted as dropped and never panic.
	s.Event(endedCramp())
	s.Envelope(envelopeAt(0))
	if got := metric(t, reg, "crampwatch_sink_dropped_total", "events"); got != 2 {
		t.Errorf("dropped{events} after close = %v, want 2", got)
	}
}

func TestInfluxQueueDepthGauge(t *testing.T) {
	f := newFakeInflux(t)
	reg := prometheus.NewRegistry()
	s := newInflux(t, testConfig(f.srv.URL), reg)
	for i := range 4 {
		s.Envelope(envelopeAt(i))
	}
	s.Event(endedCramp())
	if got := depth(t, reg); got != 5 {
		t.Errorf("queue depth = %v, want 5", got)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := depth(t, reg); got != 0 {
		t.Errorf("queue depth after close = %v, want 0", got)
	}
}

func depth(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "crampwatch_sink_queue_depth" {
			for _, m := range mf.GetMetric() {
				if m.GetLabel()[0].GetValue() == sinkName {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	return -1
}

func TestInfluxCloseStopsAtDeadline(t *testing.T) {
	f := newFakeInflux(t)
	f.hang = true
	reg := prometheus.NewRegistry()
	s := newInflux(t, testConfig(f.srv.URL), reg)
	s.Event(endedCramp())
	s.Envelope(envelopeAt(0))
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := s.Close(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Close err = %v, want deadline exceeded", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Close took %v past a 200ms deadline", d)
	}
	if got := metric(t, reg, "crampwatch_sink_dropped_total", "events"); got != 1 {
		t.Errorf("dropped{events} = %v, want 1", got)
	}
	if got := metric(t, reg, "crampwatch_sink_dropped_total", "envelope"); got != 1 {
		t.Errorf("dropped{envelope} = %v, want 1", got)
	}
}

func TestInfluxWrongURL(t *testing.T) {
	// A port nothing listens on: every write fails to connect.
	l := httptest.NewServer(http.NotFoundHandler())
	url := l.URL
	l.Close()
	cfg := testConfig(url)
	cfg.FlushInterval = 10 * time.Millisecond
	reg := prometheus.NewRegistry()
	s := newInflux(t, cfg, reg)
	s.Event(endedCramp())
	deadline := time.Now().Add(5 * time.Second)
	for metric(t, reg, "crampwatch_sink_errors_total", "events") < 2 {
		if time.Now().After(deadline) {
			t.Fatal("failed writes not counted (or not retried)")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := s.Ready(context.Background()); err == nil {
		t.Error("Ready = nil with no server")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := s.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Close err = %v, want deadline exceeded", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Close took %v", d)
	}
	if got := metric(t, reg, "crampwatch_sink_dropped_total", "events"); got != 1 {
		t.Errorf("dropped = %v, want 1", got)
	}
}

func TestInfluxReady(t *testing.T) {
	f := newFakeInflux(t)
	s := newInflux(t, testConfig(f.srv.URL), nil)
	defer s.Close(context.Background())
	if err := s.Ready(context.Background()); err != nil {
		t.Errorf("Ready: %v", err)
	}
}

func TestInfluxSignalSwitches(t *testing.T) {
	f := newFakeInflux(t)
	cfg := testConfig(f.srv.URL)
	cfg.Envelope = false
	cfg.Motion = false
	s := newInflux(t, cfg, nil)
	s.Envelope(envelopeAt(0))
	s.Motion(detect.Motion{Device: "d1", Time: onset, Activity: 1})
	s.Event(endedCramp())
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if w := f.writes(); len(w) != 1 || !strings.HasPrefix(w[0], "events,") || len(lines(w[0])) != 1 {
		t.Errorf("writes %q, want only the event", w)
	}
}

func TestInfluxInvalidPointsCounted(t *testing.T) {
	f := newFakeInflux(t)
	reg := prometheus.NewRegistry()
	s := newInflux(t, testConfig(f.srv.URL), reg)
	s.Event(detect.Event{Kind: detect.KindCramp, Onset: onset}) // no device
	s.Envelope(detect.Envelope{Device: "d1"})                   // no time
	s.WritePoint(write.NewPointWithMeasurement("acks"))         // no fields
	s.WritePoint(nil)
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if w := f.writes(); len(w) != 0 {
		t.Errorf("writes %q, want none", w)
	}
	for meas, want := range map[string]float64{"events": 1, "envelope": 1, "acks": 1, "unknown": 1} {
		if got := metric(t, reg, "crampwatch_sink_errors_total", meas); got != want {
			t.Errorf("errors{%s} = %v, want %v", meas, got, want)
		}
	}
}

func TestNewValidatesConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"no url", Config{Bucket: "b"}},
		{"not http", Config{URL: "ftp://x", Bucket: "b"}},
		{"no host", Config{URL: "http://", Bucket: "b"}},
		{"no bucket", Config{URL: "http://localhost:8086"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if s, err := New(tc.cfg, nil); err == nil {
				s.Close(context.Background())
				t.Error("accepted")
			}
		})
	}
}

func TestConfigLogValueRedactsToken(t *testing.T) {
	var buf strings.Builder
	log := slog.New(slog.NewTextHandler(&buf, nil))
	cfg := testConfig("http://localhost:8086")
	cfg.Token = "admin:s3cret"
	log.Info("config", "influx", cfg)
	if strings.Contains(buf.String(), "s3cret") {
		t.Errorf("token logged: %s", buf.String())
	}
	if !strings.Contains(buf.String(), "redacted") {
		t.Errorf("log lacks the redacted token marker: %s", buf.String())
	}
}

func TestEventsFlux(t *testing.T) {
	from, to := onset, onset.Add(time.Hour)
	q, err := eventsFlux(`db"/rp`, from, to, []string{"d1", "d-2"}, []detect.Kind{detect.KindCramp, detect.KindPLM})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`from(bucket: "db\"/rp")`,
		`range(start: 2025-11-24T01:00:00.123456Z, stop: 2025-11-24T02:00:00.123456Z)`,
		`r._measurement == "events"`,
		`r.device == "d1" or r.device == "d-2"`,
		`r.kind == "cramp" or r.kind == "plm"`,
		`pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")`,
	} {
		if !strings.Contains(q, want) {
			t.Errorf("query lacks %s:\n%s", want, q)
		}
	}
	for _, tc := range []struct {
		name     string
		from, to time.Time
		devices  []string
		kinds    []detect.Kind
	}{
		{"empty range", to, from, nil, nil},
		{"bad device", from, to, []string{`x" or true or "`}, nil},
		{"bad kind", from, to, nil, []detect.Kind{"sneeze"}},
	} {
		if _, err := eventsFlux("b", tc.from, tc.to, tc.devices, tc.kinds); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
}

func BenchmarkInfluxEnvelope(b *testing.B) {
	f := &fakeInflux{}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer f.srv.Close()
	cfg := DefaultConfig()
	cfg.URL, cfg.Bucket = f.srv.URL, "db/rp"
	cfg.Logger = slog.New(slog.DiscardHandler)
	s, err := New(cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	e := envelopeAt(1)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			s.Envelope(e)
		}
	})
	b.StopTimer()
	s.Close(context.Background())
}

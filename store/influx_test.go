package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/influxdata/influxdb-client-go/v2/api/write"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/crampwatch/crampwatch/detect"
	"github.com/crampwatch/crampwatch/httpapi"
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
	noPing   bool     // pings fail with 503 too: the server looks unreachable
	started  int      // write requests received
	srv      *httptest.Server
}

func newFakeInflux(t *testing.T) *fakeInflux {
	f := &fakeInflux{}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ping":
			f.mu.Lock()
			status := http.StatusNoContent
			if f.noPing {
				status = http.StatusServiceUnavailable
			}
			f.mu.Unlock()
			w.WriteHeader(status)
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

// TestReadinessDecision is the readiness decision of Ready, from what the
// ping and the writer saw.
func TestReadinessDecision(t *testing.T) {
	const gib = 1 << 30
	refused := errors.New("dial tcp 127.0.0.1:8086: connect: connection refused")
	unavailable := errors.New("503 Service Unavailable")
	diskErr := errors.New("write /spool/bulk-1.spool: no space left on device")
	type want int
	const (
		ok want = iota
		degraded
		failed
	)
	tests := []struct {
		name  string
		in    readiness
		want  want
		text  string  // the whole message, or its start if it ends with "..."
		cause []error // errors.Is must find each
	}{
		{name: "no spool, server up", in: readiness{}, want: ok},
		{name: "no spool, server down", in: readiness{pingErr: refused}, want: failed,
			text: "unreachable, no spool: points wait in memory: " + refused.Error(), cause: []error{refused}},
		{name: "no spool, server refuses writes", in: readiness{writeErr: unavailable}, want: failed,
			text: "not taking writes, no spool: points wait in memory: 503 Service Unavailable", cause: []error{unavailable}},
		{name: "spool empty, server up", in: readiness{spool: true, spoolMax: gib}, want: ok},
		{name: "spool with room, server down", in: readiness{spool: true, pingErr: refused, spoolBytes: 1 << 20, spoolMax: gib}, want: degraded,
			text: "unreachable, spooling 1048576 bytes (0.1% of limit): " + refused.Error(), cause: []error{refused}},
		{name: "spool with room, down before anything spooled", in: readiness{spool: true, pingErr: refused, spoolMax: gib}, want: degraded,
			text: "unreachable, spooling 0 bytes (0.0% of limit): ..."},
		{name: "spool with room, server refuses writes", in: readiness{spool: true, writeErr: unavailable, spoolBytes: gib / 2, spoolMax: gib}, want: degraded,
			text: "not taking writes, spooling 536870912 bytes (50.0% of limit): 503 Service Unavailable", cause: []error{unavailable}},
		{name: "ping fails and writes fail: unreachable", in: readiness{spool: true, pingErr: refused, writeErr: unavailable, spoolBytes: 10, spoolMax: 100}, want: degraded,
			text: "unreachable, spooling 10 bytes (10.0% of limit): ..."},
		{name: "server up, replaying", in: readiness{spool: true, spoolBytes: 3 << 20, spoolMax: gib}, want: degraded,
			text: "replaying the spool, 3145728 bytes (0.3% of limit) left"},
		{name: "spool full, server down", in: readiness{spool: true, pingErr: refused, spoolFull: true, spoolBytes: gib - 100, spoolMax: gib}, want: failed,
			text: "spool full, points are being dropped: 1073741724 bytes (100.0% of limit); unreachable: " + refused.Error(), cause: []error{refused}},
		{name: "spool full, replay just began", in: readiness{spool: true, spoolFull: true, spoolBytes: gib - 100, spoolMax: gib}, want: failed,
			text: "spool full, points are being dropped: 1073741724 bytes (100.0% of limit); InfluxDB takes writes again, replaying"},
		{name: "spool disk error, server down", in: readiness{spool: true, writeErr: unavailable, spoolErr: diskErr, spoolMax: gib}, want: failed,
			text:  "spool cannot be written, points are being dropped: " + diskErr.Error() + "; not taking writes: 503 Service Unavailable",
			cause: []error{diskErr, unavailable}},
		{name: "disk error beats full", in: readiness{spool: true, pingErr: refused, spoolFull: true, spoolErr: diskErr, spoolBytes: gib, spoolMax: gib}, want: failed,
			text: "spool cannot be written, points are being dropped: ..."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.in.err()
			got := ok
			switch {
			case err == nil:
			case httpapi.IsDegraded(err):
				got = degraded
			default:
				got = failed
			}
			if got != tc.want {
				t.Fatalf("state %d (%v), want %d", got, err, tc.want)
			}
			if err == nil {
				return
			}
			if prefix, cut := strings.CutSuffix(tc.text, "..."); cut {
				if !strings.HasPrefix(err.Error(), prefix) {
					t.Errorf("message %q, want it to start with %q", err, prefix)
				}
			} else if err.Error() != tc.text {
				t.Errorf("message\n got %q\nwant %q", err, tc.text)
			}
			for _, c := range tc.cause {
				if !errors.Is(err, c) {
					t.Errorf("%v does not wrap %v", err, c)
				}
			}
		})
	}
}

// TestSpoolLowWater: a full spool has room again below 7/8 of its bound,
// two segments below it for spools too small for that to be true.
func TestSpoolLowWater(t *testing.T) {
	tests := []struct {
		max, want int64
	}{
		{1 << 30, 7 << 27},                   // default: segments of 64 MiB, 1/16
		{8 << 30, 7 << 30},                   // segments capped at 64 MiB: 1/8 still applies
		{64 << 10, 56 << 10},                 // smallest bound with segments of 1/16
		{16 << 10, 8 << 10},                  // segments of 4 KiB: two of them
		{6 << 10, 0},                         // less than two segments: full until empty
		{1<<30 + 8, 1<<30 + 8 - (1<<27 + 1)}, // the eighth rounds down
	}
	for _, tc := range tests {
		sp := &spool{max: tc.max, segMax: min(max(tc.max/16, minSegment), maxSegment)}
		if got := spoolLowWater(sp); got != tc.want {
			t.Errorf("spoolLowWater(max %d) = %d, want %d", tc.max, got, tc.want)
		}
	}
}

// TestInfluxReadyOutage drives the sink through outages against the fake
// server and checks what Ready says during each and after recovery.
func TestInfluxReadyOutage(t *testing.T) {
	tests := []struct {
		name      string
		spool     bool
		spoolMax  int64 // 0: default
		breakDisk bool  // remove the spool directory
		noPing    bool  // the server does not answer pings either
		degraded  bool
		want      string // start of Ready's message during the outage
	}{
		{name: "no spool", want: "not taking writes, no spool: points wait in memory"},
		{name: "no spool, unreachable", noPing: true, want: "unreachable, no spool"},
		{name: "spool with room", spool: true, degraded: true, want: "not taking writes, spooling "},
		{name: "spool with room, unreachable", spool: true, noPing: true, degraded: true, want: "unreachable, spooling "},
		{name: "spool full", spool: true, spoolMax: 16 << 10, want: "spool full, points are being dropped: "},
		{name: "spool disk error", spool: true, breakDisk: true, want: "spool cannot be written, points are being dropped: "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeInflux(t)
			cfg := testConfig(f.srv.URL)
			cfg.FlushInterval = 10 * time.Millisecond
			cfg.MaxRetryInterval = 50 * time.Millisecond
			cfg.BatchSize = 10
			if tc.spool {
				cfg = spoolConfig(t, f.srv.URL)
				cfg.BatchSize = 10
				if tc.spoolMax > 0 {
					cfg.SpoolMaxBytes = tc.spoolMax
				}
			}
			reg := prometheus.NewRegistry()
			s := newInflux(t, cfg, reg)
			defer s.Close(context.Background())
			ctx := context.Background()
			if err := s.Ready(ctx); err != nil {
				t.Fatalf("Ready before the outage: %v", err)
			}
			if tc.breakDisk {
				if err := os.RemoveAll(cfg.SpoolDir); err != nil {
					t.Fatal(err)
				}
			}
			f.mu.Lock()
			f.down, f.noPing = true, tc.noPing
			f.mu.Unlock()

			nEv, nEnv := 1, 20
			if tc.spoolMax > 0 {
				nEnv = 1000 // about 100 kB: six times the spool
			}
			s.Event(crampAt(0, detect.StateEnded))
			for i := range nEnv {
				s.Envelope(envelopeAt(i))
			}
			var err error
			waitFor(t, "Ready to say "+tc.want, func() bool {
				err = s.Ready(ctx)
				return err != nil && strings.HasPrefix(err.Error(), tc.want)
			})
			if httpapi.IsDegraded(err) != tc.degraded {
				t.Errorf("Ready = %q: degraded %v, want %v", err, !tc.degraded, tc.degraded)
			}
			// The writer has seen the outage too (with noPing Ready can
			// tell before any write failed).
			waitMetric(t, reg, "crampwatch_sink_errors_total", "events", 1)
			if err := s.Ready(ctx); err == nil || httpapi.IsDegraded(err) != tc.degraded || !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("Ready after a failed write = %v, want %q, degraded %v", err, tc.want, tc.degraded)
			}
			if tc.spool && !tc.breakDisk && tc.spoolMax == 0 {
				// Once everything is on disk the message gives its size.
				waitMetric(t, reg, "crampwatch_sink_spooled_points_total", "envelope", float64(nEnv))
				n := metric(t, reg, "crampwatch_sink_spool_bytes", "")
				if err := s.Ready(ctx); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("spooling %d bytes (", int64(n))) {
					t.Errorf("Ready = %v, want the %v bytes of the spool", err, n)
				}
			}
			if tc.spoolMax > 0 {
				// Events evict envelope points: room for a while, but
				// points are still lost, so it stays not ready.
				evicted := metric(t, reg, "crampwatch_sink_spool_full_total", "envelope")
				for range 20 {
					s.Event(crampAt(nEv, detect.StateEnded))
					nEv++
				}
				waitMetric(t, reg, "crampwatch_sink_spooled_points_total", "events", float64(nEv))
				if metric(t, reg, "crampwatch_sink_spool_full_total", "envelope") == evicted {
					t.Error("no envelope point evicted for events: the test does not test eviction")
				}
				if err := s.Ready(ctx); err == nil || httpapi.IsDegraded(err) || !strings.HasPrefix(err.Error(), tc.want) {
					t.Errorf("Ready after an eviction = %v, want %q, not degraded", err, tc.want)
				}
			}

			f.mu.Lock()
			f.down, f.noPing = false, false
			f.mu.Unlock()
			waitMetric(t, reg, "crampwatch_sink_points_written_total", "events", float64(nEv))
			waitFor(t, "Ready after the outage", func() bool {
				err = s.Ready(ctx)
				return err == nil
			})
		})
	}
}

// TestInfluxSpoolLimitGauge: the bound is exported next to the spool's
// size, and a second sink (a restart) shares the collector.
func TestInfluxSpoolLimitGauge(t *testing.T) {
	f := newFakeInflux(t)
	reg := prometheus.NewRegistry()
	for i, max := range []int64{1 << 20, 2 << 20} {
		cfg := spoolConfig(t, f.srv.URL)
		cfg.SpoolMaxBytes = max
		s := newInflux(t, cfg, reg)
		if got := metric(t, reg, "crampwatch_sink_spool_limit_bytes", ""); got != float64(max) {
			t.Errorf("sink %d: spool_limit_bytes = %v, want %d", i, got, max)
		}
		if err := s.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	s := newInflux(t, testConfig(f.srv.URL), prometheus.NewRegistry())
	defer s.Close(context.Background())
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

package store

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/influxdata/influxdb-client-go/v2/api/write"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/crampwatch/crampwatch/detect"
	"github.com/crampwatch/crampwatch/httpapi"
	"github.com/crampwatch/crampwatch/ingest"
	"github.com/crampwatch/crampwatch/internal/testenv"
	"github.com/crampwatch/crampwatch/wire"
)

func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }

// realInflux returns a config for a fresh database on the real test server.
func realInflux(t *testing.T) (Config, testenv.Influx) {
	t.Helper()
	db := testenv.InfluxDB(t)
	cfg := DefaultConfig()
	cfg.URL, cfg.Token, cfg.Org, cfg.Bucket = db.URL, db.Token, db.Org, db.Bucket
	cfg.FlushInterval = 20 * time.Millisecond
	cfg.Logger = slog.New(slog.DiscardHandler)
	return cfg, db
}

func waitMetric(t *testing.T, reg *prometheus.Registry, name, meas string, want float64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for metric(t, reg, name, meas) < want {
		if time.Now().After(deadline) {
			t.Fatalf("%s{%s} = %v, want %v", name, meas, metric(t, reg, name, meas), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRealInfluxEventsRoundTrip(t *testing.T) {
	cfg, _ := realInflux(t)
	reg := prometheus.NewRegistry()
	s := newInflux(t, cfg, reg)
	ch := func(m wire.Muscle, sd wire.Side) wire.Channel { return wire.Channel{Muscle: m, Side: sd} }
	at := func(d time.Duration) time.Time { return onset.Add(d) }

	// Cramp A: the ongoing report reaches the database before the ended one,
	// so the ended point overwrites a stored point.
	aOngoing := detect.Event{
		Device: "dev-01", Kind: detect.KindCramp, State: detect.StateOngoing, Channel: ch(wire.Calf, wire.Left),
		Onset: at(0), End: at(2100 * time.Millisecond), ConfirmedAt: at(2100 * time.Millisecond),
		DurationS: 2.1, PeakUV: 220, MeanUV: 150, MedianFreqHz: 0, Confidence: 0.8,
	}
	aEnded := aOngoing
	aEnded.State = detect.StateEnded
	aEnded.End = at(47*time.Second + 13*time.Microsecond)
	aEnded.DurationS = 47.000013
	aEnded.PeakUV, aEnded.MeanUV, aEnded.MedianFreqHz, aEnded.Confidence = 415.5, 260.25, 68.5, 0.97
	// Cramp B is still going on.
	bOngoing := detect.Event{
		Device: "dev-01", Kind: detect.KindCramp, State: detect.StateOngoing, Channel: ch(wire.Hamstring, wire.Right),
		Onset: at(10 * time.Minute), End: at(10*time.Minute + 3*time.Second), ConfirmedAt: at(10*time.Minute + 3*time.Second),
		DurationS: 3, PeakUV: 180, MeanUV: 120, Confidence: 0.7,
	}
	// Cramp C: ongoing and ended in the same batch.
	cOngoing := detect.Event{
		Device: "dev-02", Kind: detect.KindCramp, State: detect.StateOngoing, Channel: ch(wire.Calf, wire.Right),
		Onset: at(time.Hour), End: at(time.Hour + 2*time.Second), ConfirmedAt: at(time.Hour + 2*time.Second),
		DurationS: 2, PeakUV: 300, MeanUV: 200, Confidence: 0.9,
	}
	cEnded := cOngoing
	cEnded.State = detect.StateEnded
	cEnded.End = at(time.Hour + 90*time.Second)
	cEnded.DurationS = 90
	artifact := detect.Event{
		Device: "dev-02", Kind: detect.KindArtifact, State: detect.StateEnded, Channel: ch(wire.Calf, wire.Right),
		Onset: at(2 * time.Hour), End: at(2*time.Hour + 4*time.Second), DurationS: 4, Cause: "lead_off",
	}
	plm := detect.Event{
		Device: "dev-03", Kind: detect.KindPLM, State: detect.StateEnded, Channel: ch(wire.Tibialis, wire.Left),
		Onset: at(3 * time.Hour), End: at(3*time.Hour + 1500*time.Millisecond), ConfirmedAt: at(3*time.Hour + 40*time.Second),
		DurationS: 1.5, PeakUV: 45.5, MeanUV: 30, MedianFreqHz: 95, Confidence: 0.6,
	}

	s.Event(aOngoing)
	waitMetric(t, reg, "crampwatch_sink_points_written_total", "events", 1)
	for _, e := range []detect.Event{aEnded, bOngoing, cOngoing, cEnded, artifact, plm} {
		s.Event(e)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := metric(t, reg, "crampwatch_sink_points_written_total", "events"); got != 7 {
		t.Errorf("written{events} = %v, want 7", got)
	}

	q := newInflux(t, cfg, nil)
	defer q.Close(context.Background())
	ctx := context.Background()
	from, to := onset.Add(-time.Minute), onset.Add(24*time.Hour)
	all := []detect.Event{aEnded, bOngoing, cEnded, artifact, plm}
	for _, tc := range []struct {
		name     string
		from, to time.Time
		devices  []string
		kinds    []detect.Kind
		want     []detect.Event
	}{
		{"all", from, to, nil, nil, all},
		{"one device", from, to, []string{"dev-02"}, nil, []detect.Event{cEnded, artifact}},
		{"two devices, cramps", from, to, []string{"dev-01", "dev-02"}, []detect.Kind{detect.KindCramp}, []detect.Event{aEnded, bOngoing, cEnded}},
		{"kinds", from, to, nil, []detect.Kind{detect.KindPLM, detect.KindArtifact}, []detect.Event{artifact, plm}},
		{"no match", from, to, []string{"dev-01"}, []detect.Kind{detect.KindPLM}, nil},
		{"onset range is [from, to)", onset.Add(10 * time.Minute), onset.Add(2 * time.Hour), nil, nil, []detect.Event{bOngoing, cEnded}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := q.QueryEvents(ctx, tc.from, tc.to, tc.devices, tc.kinds)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d events, want %d:\n%+v", len(got), len(tc.want), got)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("event %d\n got %+v\nwant %+v", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func TestRealInfluxSignalAndHealthPoints(t *testing.T) {
	cfg, db := realInflux(t)
	cfg.BatchSize = 64            // several batches
	cfg.FlushInterval = time.Hour // so only Close can send the last, partial batch
	reg := prometheus.NewRegistry()
	s := newInflux(t, cfg, reg)
	for i := range 250 {
		s.Envelope(envelopeAt(i))
	}
	for i := range 20 {
		s.Motion(detect.Motion{Device: "d1", Site: wire.Site{Segment: wire.Shank, Side: wire.Left},
			Time: onset.Add(time.Duration(i) * 100 * time.Millisecond), Activity: 0.01 * float64(i), TiltDeg: 5})
	}
	s.Health(ingest.Health{Device: "d1", Time: onset, BatteryPct: 81, Firmware: `fw "2.0"`,
		LeadOff: []wire.Channel{calfLeft}, FramesIn: 1200, FramesLost: 4, LagSeconds: 0.3})
	s.Health(ingest.Health{Device: "d1", Time: onset.Add(time.Minute), BatteryPct: 80, Firmware: `fw "2.0"`,
		FramesIn: 2400, FramesLost: 4, LagSeconds: 0.2})
	s.WritePoint(write.NewPointWithMeasurement("alerts").AddTag("device", "d1").AddField("level", 1).SetTime(onset))
	// Close flushes everything still queued.
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	for meas, want := range map[string]float64{"envelope": 250, "motion": 20, "device_health": 2, "alerts": 1} {
		if got := metric(t, reg, "crampwatch_sink_points_written_total", meas); got != want {
			t.Errorf("written{%s} = %v, want %v", meas, got, want)
		}
	}
	for _, tc := range []struct{ q, want string }{
		{`SELECT count(rms_uv) FROM envelope WHERE device = 'd1' AND channel = 'calf_left'`, `[0,250]`},
		{`SELECT count(activity_g) FROM motion WHERE site = 'shank_left'`, `[0,20]`},
		{`SELECT last(frames_in), last(lead_off), last(firmware) FROM device_health`, `,2400,0,"fw \"2.0\""]`},
		{`SELECT first(lead_off_channels) FROM device_health`, `,"calf_left"]`},
		{`SHOW FIELD KEYS FROM device_health`, `["frames_in","integer"]`},
		{`SELECT count(level) FROM alerts`, `[0,1]`},
	} {
		body, err := testenv.InfluxQLQuery(context.Background(), db.URL, db.Database, tc.q)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(compact(t, body), tc.want) {
			t.Errorf("%s:\n got %s\nwant it to contain %s", tc.q, body, tc.want)
		}
	}
}

// compact re-encodes JSON without spaces and with times as epoch 0 for
// count queries, so expectations can be substrings.
func compact(t *testing.T, body []byte) string {
	t.Helper()
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(v)
	return strings.ReplaceAll(string(b), `"1970-01-01T00:00:00Z"`, "0")
}

func TestRealInfluxReady(t *testing.T) {
	cfg, _ := realInflux(t)
	s := newInflux(t, cfg, nil)
	defer s.Close(context.Background())
	if err := s.Ready(context.Background()); err != nil {
		t.Errorf("Ready: %v", err)
	}
}

// TestRealInfluxReadyDuringOutage stops a real influxd under a sink with a
// spool and checks /readyz as serve wires it (httpapi with Ready as the
// "influxdb" check): 200 and degraded while the spool takes the points,
// ok again once influxd is back and the spool is replayed, and no event
// lost.
func TestRealInfluxReadyDuringOutage(t *testing.T) {
	srv, err := testenv.StartInfluxDB()
	if err != nil {
		t.Fatalf("real InfluxDB is required: %v", err)
	}
	defer srv.Stop()
	const database = "readiness"
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := testenv.InfluxQL(ctx, srv.URL, "", "CREATE DATABASE "+database); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.URL, cfg.Bucket = srv.URL, database+"/autogen"
	cfg.SpoolDir = filepath.Join(t.TempDir(), "spool")
	cfg.FlushInterval = 20 * time.Millisecond
	cfg.MaxRetryInterval = 200 * time.Millisecond
	cfg.Logger = slog.New(slog.DiscardHandler)
	reg := prometheus.NewRegistry()
	s := newInflux(t, cfg, reg)
	defer s.Close(context.Background())
	api := httpapi.New(reg, "", slog.New(slog.DiscardHandler))
	api.AddCheck("influxdb", s.Ready)
	readyz := func() (int, map[string]string) {
		rec := httptest.NewRecorder()
		api.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
		var body map[string]string
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Fatalf("/readyz body %q: %v", rec.Body.String(), err)
		}
		return rec.Code, body
	}
	if code, body := readyz(); code != 200 || body["influxdb"] != "ok" {
		t.Fatalf("/readyz before the outage = %d %v", code, body)
	}

	srv.StopOnly()
	const nEv, nEnv = 30, 300
	for i := range nEv {
		s.Event(crampAt(i, detect.StateEnded))
	}
	for i := range nEnv {
		s.Envelope(envelopeAt(i))
	}
	waitMetric(t, reg, "crampwatch_sink_spooled_points_total", "events", nEv)
	waitMetric(t, reg, "crampwatch_sink_spooled_points_total", "envelope", nEnv)
	code, body := readyz()
	spooled := int64(metric(t, reg, "crampwatch_sink_spool_bytes", ""))
	want := fmt.Sprintf("degraded: unreachable, spooling %d bytes (", spooled)
	if code != 200 || !strings.HasPrefix(body["influxdb"], want) || !strings.Contains(body["influxdb"], "% of limit): ") {
		t.Errorf("/readyz during the outage = %d %v, want 200 and %q...", code, body, want)
	}
	t.Logf("/readyz during the outage: %d %v", code, body)

	if err := srv.Start(); err != nil {
		t.Fatalf("influxd start: %v", err)
	}
	waitFor(t, "the spool to be replayed", func() bool { return metric(t, reg, "crampwatch_sink_spool_bytes", "") == 0 })
	waitFor(t, "/readyz ok after the outage", func() bool {
		code, body = readyz()
		return code == 200 && body["influxdb"] == "ok"
	})
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	n, err := queryCount(ctx, srv.URL, database, "SELECT count(peak_uv) FROM events")
	if err != nil {
		t.Fatal(err)
	}
	if n != nEv {
		t.Errorf("%d events in InfluxDB, want %d", n, nEv)
	}
}

// queryCount runs an InfluxQL query returning one count.
func queryCount(ctx context.Context, base, db, q string) (int, error) {
	body, err := testenv.InfluxQLQuery(ctx, base, db, q)
	if err != nil {
		return 0, err
	}
	var r struct {
		Results []struct {
			Series []struct {
				Values [][]any `json:"values"`
			} `json:"series"`
		} `json:"results"`
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.UseNumber()
	if err := dec.Decode(&r); err != nil {
		return 0, fmt.Errorf("%s: %w", body, err)
	}
	if len(r.Results) != 1 || len(r.Results[0].Series) != 1 || len(r.Results[0].Series[0].Values) != 1 ||
		len(r.Results[0].Series[0].Values[0]) != 2 {
		return 0, fmt.Errorf("unexpected answer %s", body)
	}
	num, _ := r.Results[0].Series[0].Values[0][1].(json.Number)
	n, err := num.Int64()
	if err != nil {
		return 0, fmt.Errorf("unexpected answer %s: %w", body, err)
	}
	return int(n), nil
}

func TestRealInfluxWrongBucket(t *testing.T) {
	cfg, _ := realInflux(t)
	cfg.Bucket = "no_such_database/autogen"
	reg := prometheus.NewRegistry()
	s := newInflux(t, cfg, reg)
	s.Event(endedCramp())
	waitMetric(t, reg, "crampwatch_sink_errors_total", "events", 2) // failed, then retried
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := s.Close(ctx); err == nil {
		t.Error("Close = nil with the event unwritten")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Close took %v past a 200ms deadline", d)
	}
	if got := metric(t, reg, "crampwatch_sink_dropped_total", "events"); got != 1 {
		t.Errorf("dropped{events} = %v, want 1", got)
	}
}

// BenchmarkRealInfluxEnvelopeThroughput measures end-to-end envelope
// writing to the real server: b.N points queued, then Close waits until all
// are written. Reported as points/s.
func BenchmarkRealInfluxEnvelopeThroughput(b *testing.B) {
	db := testenv.InfluxDB(b)
	cfg := DefaultConfig()
	cfg.URL, cfg.Bucket = db.URL, db.Bucket
	cfg.QueueSize = max(b.N, 1)
	cfg.Logger = slog.New(slog.DiscardHandler)
	reg := prometheus.NewRegistry()
	s, err := New(cfg, reg)
	if err != nil {
		b.Fatal(err)
	}
	channels := []wire.Channel{calfLeft, {Muscle: wire.Calf, Side: wire.Right}, {Muscle: wire.Hamstring, Side: wire.Left}, {Muscle: wire.Hamstring, Side: wire.Right}}
	devices := []string{"dev-00", "dev-01", "dev-02", "dev-03", "dev-04", "dev-05", "dev-06", "dev-07"}
	start := time.Now()
	b.ResetTimer()
	for i := range b.N {
		s.Envelope(detect.Envelope{
			Device: devices[i%len(devices)], Channel: channels[(i/len(devices))%len(channels)],
			Time: onset.Add(time.Duration(i/(len(devices)*len(channels))) * 100 * time.Millisecond), RMSUV: float64(i % 500), BaselineUV: 3,
		})
	}
	if err := s.Close(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "points/s")
	if got := metric(b, reg, "crampwatch_sink_points_written_total", "envelope"); got != float64(b.N) {
		b.Fatalf("written %v of %d", got, b.N)
	}
}

package store

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crampwatch/crampwatch/detect"
	firmwaresim "github.com/crampwatch/crampwatch/firmware-sim"
	"github.com/crampwatch/crampwatch/ingest"
	"github.com/crampwatch/crampwatch/internal/testenv"
	"github.com/crampwatch/crampwatch/pipeline"
	"github.com/crampwatch/crampwatch/wire"
)

// restartableSink is the pipeline's InfluxDB sink, replaceable while the
// pipeline runs, as a restart of the service replaces it (the detector
// state is not what this test is about).
type restartableSink struct {
	mu sync.RWMutex
	s  *Influx
}

func (r *restartableSink) Event(e detect.Event) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	r.s.Event(e)
}

func (r *restartableSink) Envelope(e detect.Envelope) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	r.s.Envelope(e)
}

func (r *restartableSink) Motion(m detect.Motion) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	r.s.Motion(m)
}

func (r *restartableSink) Health(h ingest.Health) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	r.s.Health(h)
}

func (r *restartableSink) Close(ctx context.Context) error {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.s.Close(ctx)
}

// restart closes the sink and opens a new one on the same configuration
// (and spool directory).
func (r *restartableSink) restart(ctx context.Context, cfg Config, reg prometheus.Registerer) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.s.Close(ctx); err != nil {
		return fmt.Errorf("close before restart: %w", err)
	}
	s, err := New(cfg, reg)
	if err != nil {
		return err
	}
	r.s = s
	return nil
}

// nightRecord is a pipeline sink that keeps what the night produced, as
// InfluxDB should end up holding it: each event's last report, and each
// envelope and motion point by series and timestamp.
type nightRecord struct {
	mu       sync.Mutex
	events   map[string]detect.Event
	envelope map[string]map[int64]float64 // channel -> µs -> rms_uv
	motion   map[string]map[int64]float64 // site -> µs -> activity_g
}

func (n *nightRecord) Event(e detect.Event) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.events[e.ID()] = e
}

func (n *nightRecord) Envelope(e detect.Envelope) {
	n.mu.Lock()
	defer n.mu.Unlock()
	ch := e.Channel.String()
	if n.envelope[ch] == nil {
		n.envelope[ch] = map[int64]float64{}
	}
	n.envelope[ch][e.Time.UnixMicro()] = e.RMSUV
}

func (n *nightRecord) Motion(m detect.Motion) {
	n.mu.Lock()
	defer n.mu.Unlock()
	site := m.Site.String()
	if n.motion[site] == nil {
		n.motion[site] = map[int64]float64{}
	}
	n.motion[site][m.Time.UnixMicro()] = m.Activity
}

func (n *nightRecord) Health(ingest.Health)        {}
func (n *nightRecord) Close(context.Context) error { return nil }

// seriesStats is the count and sum of one field per tag value.
type seriesStats map[string]struct {
	n   int
	sum float64
}

func querySeriesStats(t *testing.T, base, db, q string) seriesStats {
	t.Helper()
	body, err := testenv.InfluxQLQuery(context.Background(), base, db, q)
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Results []struct {
			Series []struct {
				Tags   map[string]string `json:"tags"`
				Values [][]any           `json:"values"`
			} `json:"series"`
		} `json:"results"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("%s: %v: %s", q, err, body)
	}
	out := seriesStats{}
	for _, res := range r.Results {
		for _, s := range res.Series {
			var tag string
			for _, v := range s.Tags {
				tag = v
			}
			if len(s.Values) != 1 || len(s.Values[0]) != 3 {
				t.Fatalf("%s: unexpected answer %s", q, body)
			}
			nv, _ := s.Values[0][1].(json.Number)
			sv, _ := s.Values[0][2].(json.Number)
			n, err1 := nv.Int64()
			sum, err2 := sv.Float64()
			if err1 != nil || err2 != nil {
				t.Fatalf("%s: unexpected answer %s", q, body)
			}
			out[tag] = struct {
				n   int
				sum float64
			}{int(n), sum}
		}
	}
	return out
}

func checkSeries(t *testing.T, what string, got seriesStats, want map[string]map[int64]float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d series in InfluxDB, the night had %d", what, len(got), len(want))
	}
	for tag, points := range want {
		sum := 0.0
		for _, v := range points {
			sum += v
		}
		g := got[tag]
		if g.n != len(points) {
			t.Errorf("%s %s: %d points in InfluxDB, the night had %d", what, tag, g.n, len(points))
		}
		if math.Abs(g.sum-sum) > 1e-9*math.Max(1, math.Abs(sum)) {
			t.Errorf("%s %s: sum %v in InfluxDB, the night had %v", what, tag, g.sum, sum)
		}
	}
}

// TestRealInfluxOutageSpool runs a simulated night through the production
// path (firmware simulator -> ingest router -> pipeline with the real
// detector -> InfluxDB sink with a spool) and stops the real influxd for
// the middle third of the night, restarting the sink once during the
// outage. Afterwards every event (in its final state) and every envelope
// and motion point of the night must be in the database exactly once.
func TestRealInfluxOutageSpool(t *testing.T) {
	srv, err := testenv.StartInfluxDB()
	if err != nil {
		t.Fatalf("real InfluxDB is required: %v", err)
	}
	defer srv.Stop()
	const database = "outage"
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := testenv.InfluxQL(ctx, srv.URL, "", "CREATE DATABASE "+database); err != nil {
		t.Fatal(err)
	}

	sc := firmwaresim.DefaultScenario()
	sc.Hours = 1
	sc.Encoding = "binary"
	sc.Cramps.PerNight = 6
	sc.Cramps.DurationS = firmwaresim.Range{15, 120}
	start := time.Date(2025, 1, 14, 23, 0, 0, 0, time.UTC)
	night := time.Duration(sc.Hours * float64(time.Hour))
	at := func(f float64) time.Time { return start.Add(time.Duration(f * float64(night))) }
	down, restart, up := at(0.35), at(0.5), at(0.65)

	// A night with a cramp that begins and ends while the database is
	// down, and one before the outage. Truth is known up front.
	const device = "outage-01"
	var dev *firmwaresim.Device
	for seed := int64(1); seed < 300 && dev == nil; seed++ {
		d := firmwaresim.NewDevice(device, sc, seed, start)
		if err := d.Err(); err != nil {
			t.Fatalf("scenario: %v", err)
		}
		inside, before := false, false
		for _, tr := range d.Truth() {
			if tr.Kind != "cramp" {
				continue
			}
			inside = inside || (tr.Onset.After(down.Add(time.Minute)) && tr.End.Before(up.Add(-time.Minute)))
			before = before || tr.End.Before(down.Add(-time.Minute))
		}
		if inside && before {
			dev = d
		}
	}
	if dev == nil {
		t.Fatal("no seed gives a night with a cramp inside the outage")
	}

	reg := prometheus.NewRegistry()
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	cfg := DefaultConfig()
	cfg.URL, cfg.Bucket = srv.URL, database+"/autogen"
	cfg.SpoolDir = filepath.Join(t.TempDir(), "spool")
	cfg.FlushInterval = 100 * time.Millisecond
	cfg.MaxRetryInterval = 500 * time.Millisecond
	cfg.WriteTimeout = 5 * time.Second
	cfg.Logger = log
	first, err := New(cfg, reg)
	if err != nil {
		t.Fatal(err)
	}
	sink := &restartableSink{s: first}
	rec := &nightRecord{events: map[string]detect.Event{}, envelope: map[string]map[int64]float64{}, motion: map[string]map[int64]float64{}}
	pipe := pipeline.New(detect.DefaultConfig(), pipeline.NewMetrics(reg), slog.New(slog.DiscardHandler), sink, rec)
	router := ingest.NewRouter(ingest.Config{}, pipe, ingest.NewMetrics(reg), slog.New(slog.DiscardHandler))

	g := func(name, meas string) float64 { return metric(t, reg, name, meas) }
	phase := 0
	began := time.Now()
	buf := make([]byte, 0, 64<<10)
	for {
		m, ok := dev.Next(buf)
		if !ok {
			break
		}
		end := time.UnixMicro(m.End)
		switch {
		case phase == 0 && end.After(down):
			srv.StopOnly()
			t.Logf("%v: influxd stopped at %s of the night", time.Since(began), end.Sub(start))
			phase++
		case phase == 1 && end.After(restart):
			// Restart the sink while the database is down: the old sink
			// spools its queue, the new one finds the spool and keeps it.
			if err := sink.restart(ctx, cfg, reg); err != nil {
				t.Fatalf("sink restart: %v", err)
			}
			t.Logf("%v: sink restarted at %s of the night, %v envelope points spooled so far",
				time.Since(began), end.Sub(start), g("crampwatch_sink_spooled_points_total", "envelope"))
			phase++
		case phase == 2 && end.After(up):
			// Everything produced so far must have gone to disk by now:
			// the pipeline is behind the feed, so wait for it.
			waitFor(t, "the queue to move to the spool", func() bool {
				return depth(t, reg) == 0 && g("crampwatch_sink_spooled_points_total", "events") >= 2
			})
			if err := srv.Start(); err != nil {
				t.Fatalf("influxd start: %v", err)
			}
			t.Logf("%v: influxd started at %s of the night", time.Since(began), end.Sub(start))
			phase++
		}
		if err := router.Feed(ctx, wire.Topic(wire.DefaultPrefix, device, m.Stream), m.Payload); err != nil {
			t.Fatalf("feed: %v", err)
		}
		buf = m.Payload[:0]
	}
	if err := dev.Err(); err != nil {
		t.Fatalf("simulator: %v", err)
	}
	if phase != 3 {
		t.Fatalf("night ended in phase %d", phase)
	}
	router.Close()
	pipe.EndStreams()
	// Close does not replay a spool; a running service does, so wait.
	waitFor(t, "the spool to be replayed", func() bool {
		return g("crampwatch_sink_spool_bytes", "") == 0 && depth(t, reg) == 0
	})
	if err := pipe.Close(ctx); err != nil {
		t.Fatalf("close pipeline: %v", err)
	}
	t.Logf("%v: night fed, spool replayed, sink closed", time.Since(began))

	for _, meas := range []string{MeasurementEvents, MeasurementEnvelope, MeasurementMotion} {
		if n := g("crampwatch_sink_spooled_points_total", meas); n == 0 {
			t.Errorf("no %s point went through the spool: the outage was not tested", meas)
		}
		if n := g("crampwatch_sink_dropped_total", meas); n != 0 {
			t.Errorf("%v %s points dropped", n, meas)
		}
	}
	// Retries go to the oldest batch, which may be of any measurement.
	failed := 0.0
	for _, meas := range []string{MeasurementEvents, MeasurementEnvelope, MeasurementMotion, MeasurementHealth} {
		failed += g("crampwatch_sink_errors_total", meas)
	}
	if failed == 0 {
		t.Error("no failed write: the outage was not seen")
	}
	if files, _ := filepath.Glob(filepath.Join(cfg.SpoolDir, "*"+spoolExt)); len(files) != 0 {
		t.Errorf("spool not empty: %v", files)
	}

	// Events: each one's final report, exactly.
	q := newInflux(t, Config{URL: srv.URL, Bucket: cfg.Bucket, Logger: slog.New(slog.DiscardHandler)}, nil)
	defer q.Close(context.Background())
	got, err := q.QueryEvents(ctx, start.Add(-time.Hour), start.Add(night+time.Hour), []string{device}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for id := range rec.events {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	byID := map[string]detect.Event{}
	for _, e := range got {
		if _, dup := byID[e.ID()]; dup {
			t.Errorf("event %s in InfluxDB twice", e.ID())
		}
		byID[e.ID()] = e
	}
	if len(got) != len(rec.events) {
		t.Errorf("%d events in InfluxDB, the night had %d", len(got), len(rec.events))
	}
	cramps, during := 0, 0
	for _, id := range ids {
		want := rec.events[id]
		if g, ok := byID[id]; !ok {
			t.Errorf("event %s missing", id)
		} else if !sameEvent(g, want) {
			t.Errorf("event %s\n got %+v\nwant %+v", id, g, want)
		}
		if want.Kind == detect.KindCramp {
			cramps++
			if want.Onset.After(down) && want.End.Before(up) {
				during++
			}
		}
	}
	if during == 0 {
		t.Error("no detected cramp began and ended during the outage")
	}
	t.Logf("%d events (%d cramps, %d during the outage), %v envelope points spooled",
		len(rec.events), cramps, during, g("crampwatch_sink_spooled_points_total", "envelope"))

	// Envelope and motion: every point once, with its value.
	checkSeries(t, "envelope", querySeriesStats(t, srv.URL, database,
		fmt.Sprintf(`SELECT count(rms_uv), sum(rms_uv) FROM envelope WHERE device = '%s' GROUP BY channel`, device)), rec.envelope)
	checkSeries(t, "motion", querySeriesStats(t, srv.URL, database,
		fmt.Sprintf(`SELECT count(activity_g), sum(activity_g) FROM motion WHERE device = '%s' GROUP BY site`, device)), rec.motion)
}

// sameEvent compares events field by field, times by instant (the
// detector's and the query's times may carry different locations).
func sameEvent(a, b detect.Event) bool {
	for _, p := range [][2]*time.Time{{&a.Onset, &b.Onset}, {&a.End, &b.End}, {&a.ConfirmedAt, &b.ConfirmedAt}} {
		if !p[0].Equal(*p[1]) {
			return false
		}
		*p[0], *p[1] = time.Time{}, time.Time{}
	}
	return a == b
}

// testWriter sends log lines to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p[:len(p)-1]))
	return len(p), nil
}

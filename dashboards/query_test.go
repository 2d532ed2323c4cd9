package dashboards

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/crampwatch/crampwatch/alerts"
	"github.com/crampwatch/crampwatch/detect"
	firmwaresim "github.com/crampwatch/crampwatch/firmware-sim"
	"github.com/crampwatch/crampwatch/ingest"
	"github.com/crampwatch/crampwatch/internal/testenv"
	"github.com/crampwatch/crampwatch/pipeline"
	"github.com/crampwatch/crampwatch/store"
	"github.com/crampwatch/crampwatch/wire"
)

func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }

const simDevice = "night-sim-01"

// collector is a pipeline sink that keeps every event's final report.
type collector struct {
	mu     sync.Mutex
	events map[string]detect.Event
}

func (c *collector) Event(e detect.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.events[e.ID()] = e
}
func (c *collector) Envelope(detect.Envelope)        {}
func (c *collector) Motion(detect.Motion)            {}
func (c *collector) Health(ingest.Health)            {}
func (c *collector) Close(ctx context.Context) error { return nil }
func (c *collector) kind(k detect.Kind) (out []detect.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.events {
		if e.Kind == k {
			out = append(out, e)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Onset.Before(out[j].Onset) })
	return out
}

// simNight is a simulated night already stored in InfluxDB.
type simNight struct {
	influx   testenv.Influx
	from, to time.Time
	truth    []firmwaresim.Truth
	got      *collector
}

// simulatedNight runs a short simulated night through the production path
// (firmware simulator -> ingest router -> pipeline with the real detector
// -> InfluxDB sink) into a fresh database, then records the wearer's loop
// (an alert, an acknowledgement and a diary entry per cramp) through the
// store's alert recorder, as the alert engine would.
func simulatedNight(t *testing.T) simNight {
	t.Helper()
	sc := firmwaresim.DefaultScenario()
	sc.Hours = 1.5
	sc.Encoding = "binary"
	sc.Cramps.PerNight = 4
	sc.Cramps.DurationS = firmwaresim.Range{10, 240}
	sc.PLM.WearerFraction = 1
	sc.PLM.SeriesPerNight = 2
	sc.Artifacts.LeadOffPerNight = 2 // the artifact panels need one
	start := time.Date(2025, 1, 14, 23, 0, 0, 0, time.UTC)

	// Pick the first seed whose night has what every panel needs: at least
	// two cramps, a PLM series and an artifact. Truth is known up front, so this is cheap
	// and deterministic.
	var dev *firmwaresim.Device
	for seed := int64(1); seed < 200 && dev == nil; seed++ {
		d := firmwaresim.NewDevice(simDevice, sc, seed, start)
		if err := d.Err(); err != nil {
			t.Fatalf("scenario: %v", err)
		}
		n := map[string]int{}
		for _, tr := range d.Truth() {
			n[tr.Kind]++
		}
		if n["cramp"] >= 2 && n["plm"] >= 4 && n["artifact"] >= 1 {
			dev = d
		}
	}
	if dev == nil {
		t.Fatal("no seed gives a night with cramps and PLMs")
	}

	db := testenv.InfluxDB(t)
	reg := prometheus.NewRegistry()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := store.DefaultConfig()
	cfg.URL, cfg.Token, cfg.Org, cfg.Bucket, cfg.Logger = db.URL, db.Token, db.Org, db.Bucket, log
	sink, err := store.New(cfg, reg)
	if err != nil {
		t.Fatal(err)
	}
	got := &collector{events: map[string]detect.Event{}}
	pipe := pipeline.New(detect.DefaultConfig(), pipeline.NewMetrics(reg), log, sink, got)
	router := ingest.NewRouter(ingest.Config{}, pipe, ingest.NewMetrics(reg), log)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	buf := make([]byte, 0, 64<<10)
	for {
		m, ok := dev.Next(buf)
		if !ok {
			break
		}
		if err := router.Feed(ctx, wire.Topic(wire.DefaultPrefix, simDevice, m.Stream), m.Payload); err != nil {
			t.Fatalf("feed: %v", err)
		}
		buf = m.Payload[:0]
	}
	if err := dev.Err(); err != nil {
		t.Fatalf("simulator: %v", err)
	}
	router.Close()
	pipe.EndStreams()

	rec := store.NewAlertRecorder(sink)
	pain := 4
	for i, e := range got.kind(detect.KindCramp) {
		alertID := fmt.Sprintf("a%d", i)
		confirmed := e.ConfirmedAt
		for _, r := range []alerts.AlertRecord{
			{Device: simDevice, Type: alerts.TypeAlert, Outcome: alerts.OutcomeSent, AlertID: alertID, EventID: e.ID(), Channel: e.Channel,
				Onset: e.Onset, Time: confirmed, LatencyS: confirmed.Sub(e.Onset).Seconds()},
			{Device: simDevice, Type: alerts.TypeEnded, Outcome: alerts.OutcomeSent, AlertID: alertID, EventID: e.ID(), Channel: e.Channel,
				Onset: e.Onset, Time: e.End, LatencyS: e.End.Sub(e.Onset).Seconds(), DurationS: e.DurationS, Acked: true},
		} {
			if err := rec.RecordAlert(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
		ack := confirmed.Add(8 * time.Second)
		if err := rec.RecordAck(ctx, alerts.AckRecord{Device: simDevice, AlertID: alertID, EventID: e.ID(), Action: "ok", Channel: e.Channel,
			Onset: e.Onset, Time: ack, LatencyS: ack.Sub(e.Onset).Seconds(), SinceAlertS: 8}); err != nil {
			t.Fatal(err)
		}
		helped := []alerts.Remedy{alerts.RemedyStretch}
		if i%2 == 1 {
			helped = append(helped, alerts.RemedyHeat)
		}
		entry := e.End.Add(2 * time.Minute)
		if err := rec.RecordDiary(ctx, alerts.DiaryRecord{Device: simDevice, Time: entry, Night: "2025-01-14",
			Entry:  alerts.DiaryEntry{Pain: &pain, Helped: helped, Note: "woke up, stretched"},
			Linked: true, AlertID: alertID, EventID: e.ID(), Channel: e.Channel, Onset: e.Onset, OffsetS: entry.Sub(e.Onset).Seconds()}); err != nil {
			t.Fatal(err)
		}
	}
	if err := pipe.Close(ctx); err != nil {
		t.Fatalf("close pipeline (flush to InfluxDB): %v", err)
	}
	end := start.Add(time.Duration(sc.Hours * float64(time.Hour)))
	return simNight{influx: db, from: start.Add(-30 * time.Minute), to: end.Add(30 * time.Minute), truth: dev.Truth(), got: got}
}

// influxResult is InfluxDB 1.x's /query answer for one statement.
type influxResult struct {
	Results []struct {
		Error  string `json:"error"`
		Series []struct {
			Name    string            `json:"name"`
			Tags    map[string]string `json:"tags"`
			Columns []string          `json:"columns"`
			Values  [][]any           `json:"values"`
		} `json:"series"`
	} `json:"results"`
}

// resultRow is one result row as column -> value, with the series' tags.
type resultRow map[string]any

func runInfluxQL(t *testing.T, db testenv.Influx, q string) []resultRow {
	t.Helper()
	u := db.URL + "/query?" + url.Values{"db": {db.Database}, "epoch": {"ms"}, "q": {q}}.Encode()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var r influxResult
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.UseNumber()
	if err := dec.Decode(&r); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: %s: %s", q, resp.Status, body)
	}
	var rows []resultRow
	for _, res := range r.Results {
		if res.Error != "" {
			t.Fatalf("InfluxDB refused %s: %s", q, res.Error)
		}
		for _, s := range res.Series {
			for _, v := range s.Values {
				rw := resultRow{}
				for k, tv := range s.Tags {
					rw[k] = tv
				}
				for i, c := range s.Columns {
					if i < len(v) {
						rw[c] = v[i]
					}
				}
				rows = append(rows, rw)
			}
		}
	}
	return rows
}

// grafanaIntervals are Grafana's "nice" intervals (rangeutil.roundInterval):
// the computed interval is rounded to the one whose bucket it falls in.
var grafanaIntervals = []struct {
	below, round time.Duration
}{
	{10 * time.Millisecond, time.Millisecond}, {15 * time.Millisecond, 10 * time.Millisecond},
	{35 * time.Millisecond, 20 * time.Millisecond}, {75 * time.Millisecond, 50 * time.Millisecond},
	{150 * time.Millisecond, 100 * time.Millisecond}, {350 * time.Millisecond, 200 * time.Millisecond},
	{750 * time.Millisecond, 500 * time.Millisecond}, {1500 * time.Millisecond, time.Second},
	{3500 * time.Millisecond, 2 * time.Second}, {7500 * time.Millisecond, 5 * time.Second},
	{12500 * time.Millisecond, 10 * time.Second}, {17500 * time.Millisecond, 15 * time.Second},
	{25 * time.Second, 20 * time.Second}, {45 * time.Second, 30 * time.Second},
	{90 * time.Second, time.Minute}, {210 * time.Second, 2 * time.Minute},
	{450 * time.Second, 5 * time.Minute}, {750 * time.Second, 10 * time.Minute},
	{1050 * time.Second, 15 * time.Minute}, {1500 * time.Second, 20 * time.Minute},
	{2700 * time.Second, 30 * time.Minute}, {5400 * time.Second, time.Hour},
	{9000 * time.Second, 2 * time.Hour}, {16200 * time.Second, 3 * time.Hour},
	{32400 * time.Second, 6 * time.Hour}, {24 * time.Hour, 12 * time.Hour},
	{7 * 24 * time.Hour, 24 * time.Hour}, {21 * 24 * time.Hour, 7 * 24 * time.Hour},
}

// interval is $__interval as Grafana computes it: the range over the
// panel's data points, rounded, and no less than the panel's minimum
// interval or the data source's (1 s in deploy/grafana).
func interval(from, to time.Time, p dashboard.Panel) time.Duration {
	points := 1000.0
	if p.MaxDataPoints != nil {
		points = *p.MaxDataPoints
	}
	raw := time.Duration(float64(to.Sub(from)) / points)
	iv := 30 * 24 * time.Hour
	for _, g := range grafanaIntervals {
		if raw < g.below {
			iv = g.round
			break
		}
	}
	lower := time.Second
	if p.Interval != nil {
		if d, err := time.ParseDuration(*p.Interval); err == nil && d > lower {
			lower = d
		}
	}
	return max(iv, lower)
}

// formatInterval writes a duration as Grafana's gtime.FormatInterval does.
func formatInterval(d time.Duration) string {
	switch {
	case d >= 24*time.Hour && d%(24*time.Hour) == 0:
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	case d >= time.Hour && d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d >= time.Minute && d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	case d >= time.Second && d%time.Second == 0:
		return fmt.Sprintf("%ds", d/time.Second)
	}
	return fmt.Sprintf("%dms", d/time.Millisecond)
}

// interpolate substitutes what Grafana substitutes before a raw InfluxQL
// query reaches InfluxDB: dashboard variables (regex-escaped, as the
// InfluxDB data source formats them), then the backend's $timeFilter and
// interval macros.
func interpolate(q string, from, to time.Time, iv time.Duration) string {
	vars := map[string]string{
		"$device": regexp.QuoteMeta(simDevice),
		"$tz":     "UTC",
	}
	for k, v := range vars {
		q = strings.ReplaceAll(q, k, v)
	}
	q = strings.ReplaceAll(q, "$timeFilter", fmt.Sprintf("time >= %dms and time <= %dms", from.UnixMilli(), to.UnixMilli()))
	q = strings.ReplaceAll(q, "$__interval_ms", fmt.Sprint(iv.Milliseconds()))
	q = strings.ReplaceAll(q, "$__interval", formatInterval(iv))
	q = strings.ReplaceAll(q, "$interval", formatInterval(iv))
	return q
}

// plausible bounds values by column name: physiology and the schema's units.
var plausible = map[string][2]float64{
	"duration_s": {0, 3600}, "longest": {0, 3600}, "total": {0, 6 * 3600},
	"peak_uv": {0, 20000}, "mean_uv": {0, 20000}, "RMS": {0, 20000}, "baseline": {0, 500},
	"median_freq_hz": {0, 500}, "confidence": {0, 1}, "latency_s": {0, 600}, "latency": {0, 60},
	"activity": {0, 16}, "tilt": {0, 180}, "battery": {0, 100}, "battery_pct": {0, 100},
	"lag": {-3600, 1e9}, "lag_s": {-3600, 1e9}, "loss": {0, 100}, "lost": {0, 1e6}, "duplicate": {0, 1e6}, "rejected": {0, 1e6},
	"lead_off": {0, 8}, "count": {0, 1e6}, "events": {0, 1e6}, "cramps": {0, 100}, "plms": {0, 10000}, "n": {0, 10000},
	"hours": {0, 24}, "artifacts": {0, 1e5}, "pain": {0, 10}, "mean": {0, 10}, "worst": {0, 10},
	"since_alert_s": {0, 3600}, "offset_s": {0, 24 * 3600}, "frames_in": {0, 1e12}, "frames_lost": {0, 1e12},
}

func number(v any) (float64, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, false
	}
	f, err := n.Float64()
	return f, err == nil
}

// checkRows asserts that a panel query returned data and that every
// numeric value is plausible for its column.
func checkRows(t *testing.T, where string, rows []resultRow) {
	t.Helper()
	if len(rows) == 0 {
		t.Errorf("%s: no rows on a simulated night: the panel would be empty", where)
		return
	}
	values := 0
	for _, r := range rows {
		for col, v := range r {
			if col == "time" || v == nil {
				continue
			}
			values++
			f, ok := number(v)
			if !ok {
				continue
			}
			if math.IsNaN(f) || math.IsInf(f, 0) {
				t.Errorf("%s: %s = %v", where, col, f)
			}
			if b, ok := plausible[col]; ok && (f < b[0] || f > b[1]) {
				t.Errorf("%s: %s = %v outside plausible [%v, %v]", where, col, f, b[0], b[1])
			}
		}
	}
	if values == 0 {
		t.Errorf("%s: %d rows but every value is null", where, len(rows))
	}
}

func TestPanelQueriesOnSimulatedNight(t *testing.T) {
	dashes := loadCommitted(t)
	night := simulatedNight(t)
	cramps := night.got.kind(detect.KindCramp)
	plms := night.got.kind(detect.KindPLM)
	t.Logf("simulated night: %d truth events; detected %d cramps, %d PLMs, %d events in all",
		len(night.truth), len(cramps), len(plms), len(night.got.events))
	if len(cramps) == 0 || len(plms) == 0 {
		t.Fatalf("detector found %d cramps and %d PLMs; the dashboards need both to be tested", len(cramps), len(plms))
	}

	ran := 0
	for _, c := range dashes {
		for _, p := range panels(c.dash) {
			iv := interval(night.from, night.to, p)
			for _, target := range p.Targets {
				q, ok := target.(*InfluxQLQuery)
				if !ok {
					continue
				}
				where := fmt.Sprintf("%s / %s / %s", c.spec.File, str(p.Title), q.RefID)
				rows := runInfluxQL(t, night.influx, interpolate(q.Query, night.from, night.to, iv))
				checkRows(t, where, rows)
				ran++
			}
		}
	}
	if ran < 30 {
		t.Errorf("only %d InfluxQL panel queries ran", ran)
	}
	t.Logf("%d InfluxQL panel queries returned plausible rows", ran)
}

// annotationQuery returns the InfluxQL of the named annotation on the Night dashboard.
func annotationQuery(t *testing.T, name string) *InfluxQLQuery {
	t.Helper()
	for _, c := range loadCommitted(t) {
		for _, a := range c.dash.Annotations.List {
			if a.Name == name {
				return a.Target.(*InfluxQLQuery)
			}
		}
	}
	t.Fatalf("no annotation %q", name)
	return nil
}

func TestAnnotationsAreTheSimulatedEvents(t *testing.T) {
	night := simulatedNight(t)
	crampQ := annotationQuery(t, "Cramps")
	rows := runInfluxQL(t, night.influx, interpolate(crampQ.Query, night.from, night.to, time.Second))

	// Exactly the detector's cramps, each a region from onset to end.
	cramps := night.got.kind(detect.KindCramp)
	if len(rows) != len(cramps) {
		t.Fatalf("cramp annotations: %d rows, detector reported %d cramps", len(rows), len(cramps))
	}
	for i, e := range cramps {
		r := rows[i]
		start, _ := number(r["time"])
		end, _ := number(r[crampQ.TimeEndColumn])
		if int64(start) != e.Onset.UnixMilli() || int64(end) != e.End.UnixMilli() {
			t.Errorf("cramp %d: annotation %v-%v ms, event %v-%v", i, start, end, e.Onset, e.End)
		}
		if r["muscle"] != e.Channel.Muscle.String() || r["side"] != e.Channel.Side.String() || r["state"] != "ended" {
			t.Errorf("cramp %d: annotation tags %v %v %v, event %s ended", i, r["muscle"], r["side"], r["state"], e.Channel)
		}
		if _, ok := r[crampQ.TextColumn]; !ok {
			t.Errorf("cramp %d: no %s column for the annotation text", i, crampQ.TextColumn)
		}
	}

	// And they are the simulated cramps: one region per truth cramp, on the
	// same leg and overlapping it.
	var truth []firmwaresim.Truth
	for _, tr := range night.truth {
		if tr.Kind == "cramp" {
			truth = append(truth, tr)
		}
	}
	if len(truth) != len(rows) {
		t.Errorf("cramp annotations: %d, simulated cramps: %d", len(rows), len(truth))
	}
	for _, tr := range truth {
		found := false
		for _, r := range rows {
			start, _ := number(r["time"])
			end, _ := number(r[crampQ.TimeEndColumn])
			if r["side"] == tr.Side && r["muscle"] == tr.Muscle &&
				int64(start) < tr.End.UnixMilli() && int64(end) > tr.Onset.UnixMilli() {
				found = true
			}
		}
		if !found {
			t.Errorf("simulated cramp %s %s %v-%v has no annotation", tr.Muscle, tr.Side, tr.Onset, tr.End)
		}
	}

	plmQ := annotationQuery(t, "PLMs")
	plmRows := runInfluxQL(t, night.influx, interpolate(plmQ.Query, night.from, night.to, time.Second))
	if want := len(night.got.kind(detect.KindPLM)); len(plmRows) != want || want == 0 {
		t.Errorf("PLM annotations: %d, detected PLMs: %d", len(plmRows), want)
	}
}

// TestRemediesJoin checks the data behind the remedies panel: Grafana joins
// its two queries on event_id, so every linked diary entry must find its
// cramp, and the mean durations must be those of the detected cramps.
func TestRemediesJoin(t *testing.T) {
	night := simulatedNight(t)
	var p dashboard.Panel
	for _, c := range loadCommitted(t) {
		for _, q := range panels(c.dash) {
			if str(q.Title) == "Cramp duration by what helped" {
				p = q
			}
		}
	}
	if len(p.Targets) != 2 {
		t.Fatalf("remedies panel: %d targets, want diary and events", len(p.Targets))
	}
	diary := runInfluxQL(t, night.influx, interpolate(p.Targets[0].(*InfluxQLQuery).Query, night.from, night.to, time.Second))
	events := runInfluxQL(t, night.influx, interpolate(p.Targets[1].(*InfluxQLQuery).Query, night.from, night.to, time.Second))
	duration := map[any]float64{}
	for _, r := range events {
		duration[r["event_id"]], _ = number(r["duration_s"])
	}
	sum, n := map[string]float64{}, map[string]int{}
	for _, r := range diary {
		d, ok := duration[r["event_id"]]
		if !ok {
			t.Errorf("diary entry for %v finds no cramp to join", r["event_id"])
			continue
		}
		h := fmt.Sprint(r["helped"])
		sum[h] += d
		n[h]++
	}
	want, wantN := map[string]float64{}, map[string]int{}
	for i, e := range night.got.kind(detect.KindCramp) {
		h := "stretch"
		if i%2 == 1 {
			h = "stretch,heat"
		}
		want[h] += e.DurationS
		wantN[h]++
	}
	for h := range want {
		if n[h] != wantN[h] || math.Abs(sum[h]/float64(n[h])-want[h]/float64(wantN[h])) > 1e-6 {
			t.Errorf("%s: joined mean %v over %d cramps, want %v over %d", h, sum[h]/float64(n[h]), n[h], want[h]/float64(wantN[h]), wantN[h])
		}
	}
}

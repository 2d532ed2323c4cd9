package report

import (
	"bufio"
	"bytes"
	"encoding/json"
	"math"
	"testing"

	"github.com/crampwatch/crampwatch/export"
	"github.com/crampwatch/crampwatch/store"
)

// The report and export's per-night summary table describe the same night
// with the same numbers: a wearer who gets both must not see two answers.
func TestSummaryMatchesExport(t *testing.T) {
	n := simulatedNight(t)
	loc := berlin(t)
	r, err := Build(t.Context(), influxSource(t, n.influx), Options{Night: simNight, Location: loc, StartHour: DefaultNightStartHour, Device: simDevice})
	if err != nil {
		t.Fatal(err)
	}
	cfg := store.DefaultConfig()
	cfg.URL, cfg.Token, cfg.Org, cfg.Bucket = n.influx.URL, n.influx.Token, n.influx.Org, n.influx.Bucket
	db, err := store.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(t.Context())
	p, err := export.NewPseudonymizer([]byte("report-export-consistency-key"))
	if err != nil {
		t.Fatal(err)
	}
	from, to, err := NightWindow(simNight, loc, DefaultNightStartHour)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	opt := export.Options{From: from, To: to, Devices: []string{simDevice}, Nights: export.DefaultNights(loc), Pseudonyms: p}
	if _, err := export.Stream(t.Context(), export.NewInfluxSource(db), &out, export.TableNights, export.FormatJSONL, opt); err != nil {
		t.Fatal(err)
	}
	var rows []map[string]any
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		var row map[string]any
		if err := json.Unmarshal(sc.Bytes(), &row); err != nil {
			t.Fatalf("export line %q: %v", sc.Text(), err)
		}
		rows = append(rows, row)
	}
	if len(rows) != 1 {
		t.Fatalf("export has %d night rows, want 1: %v", len(rows), rows)
	}
	row, s := rows[0], r.Summary
	if row["night"] != simNight || row["subject"] != p.Subject(simDevice) {
		t.Errorf("export row is night %v of %v", row["night"], row["subject"])
	}
	for col, want := range map[string]float64{
		"recording_h":            s.RecordingHours,
		"cramps":                 float64(s.Cramps),
		"cramps_per_h":           s.CrampsPerHour,
		"cramp_total_s":          s.TotalCrampS,
		"cramp_longest_s":        s.LongestCrampS,
		"plm":                    float64(s.PLMs),
		"plm_index_per_h":        s.PLMIndex,
		"movements":              float64(s.Movements),
		"artifact_min":           s.ArtifactMinutes,
		"alerts":                 float64(s.Alerts),
		"alert_latency_median_s": s.MedianAlertLatencyS,
	} {
		got, ok := row[col].(float64)
		if !ok || math.Abs(got-want) > 1e-6*max(1, math.Abs(want)) {
			t.Errorf("%s: export %v, report %v", col, row[col], want)
		}
	}
}

package export

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/crampwatch/crampwatch/ingest"
	"github.com/crampwatch/crampwatch/internal/testenv"
	"github.com/crampwatch/crampwatch/store"
)

// TestRecordingTimeAndQuietNights: a device that recorded without a single
// event still has its nights in the summary, with zero counts, and the
// recording time leaves out gaps and stretches without new frames and
// survives a service restart (frames_in starting again from 0).
func TestRecordingTimeAndQuietNights(t *testing.T) {
	db := testenv.InfluxDB(t)
	cfg := store.DefaultConfig()
	cfg.URL, cfg.Bucket, cfg.FlushInterval = db.URL, db.Bucket, 20*time.Millisecond
	sink, err := store.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2025, 1, 14, 23, 0, 0, 0, time.UTC)
	frames := uint64(0)
	for s := 0; s <= 1800; s += 10 {
		switch {
		case s > 590 && s < 900: // the device was off: no reports
			continue
		case s == 1000: // the service restarted: counters from 0
			frames = 5
		case s > 1200 && s <= 1300: // connected, but no data
		default:
			frames += 100
		}
		sink.Health(ingest.Health{Device: "quiet-01", Time: start.Add(time.Duration(s) * time.Second), FramesIn: frames, BatteryPct: -1})
	}
	if err := sink.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	q, err := store.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close(t.Context())
	opt := Options{From: start.Add(-time.Hour), To: start.Add(24 * time.Hour), Nights: DefaultNights(time.UTC), Pseudonyms: testPseudonyms(t)}
	dir := filepath.Join(t.TempDir(), "out")
	m, err := Run(t.Context(), NewInfluxSource(q), dir, []Format{FormatCSV}, opt)
	if err != nil {
		t.Fatal(err)
	}
	if m.Rows.Events != 0 || m.Rows.Nights != 1 {
		t.Fatalf("%d events, %d nights; want 0 and 1", m.Rows.Events, m.Rows.Nights)
	}
	// 0..590 s: 590 s; the gap to 900 is left out; 900..1800 is 900 s, less
	// the 100 s without new frames: 1390 s.
	want := NightRow{
		Subject: opt.Pseudonyms.Subject("quiet-01"), Night: "2025-01-14",
		From: opt.From, To: time.Date(2025, 1, 15, 18, 0, 0, 0, time.UTC), // cut by --from
		RecordingH: some(1390.0 / 3600), CrampsPerH: some(0.0), PLMIndex: some(0.0), Alerts: some[int64](0),
	}
	nc := nightColumns(tableOptions{})
	if err := equalTables(readCSV(t, filepath.Join(dir, "nights.csv"), nc), expectTable(nc, []NightRow{want})); err != nil {
		t.Error(err)
	}
}

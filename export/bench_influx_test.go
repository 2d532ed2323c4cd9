package export

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/crampwatch/crampwatch/internal/testenv"
	"github.com/crampwatch/crampwatch/store"
)

// loadEvents writes devices x nights x perNight events into a fresh
// database of the real test InfluxDB, in line protocol as the store writes
// them (docs/schema.md), in batches through the 1.x write API, so that
// the loading process holds one batch at a time.
func loadEvents(b *testing.B, db testenv.Influx, devices, nights, perNight int, start time.Time) {
	b.Helper()
	kinds := []string{"plm", "plm", "movement", "artifact", "cramp"}
	muscles := []string{"calf", "hamstring", "quadriceps", "tibialis"}
	sides := []string{"left", "right"}
	var buf bytes.Buffer
	flush := func() {
		if buf.Len() == 0 {
			return
		}
		u := db.URL + "/write?" + url.Values{"db": {db.Database}, "precision": {"u"}}.Encode()
		resp, err := http.Post(u, "text/plain", bytes.NewReader(buf.Bytes()))
		if err != nil {
			b.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			b.Fatalf("write: %s: %s", resp.Status, body)
		}
		buf.Reset()
	}
	step := 8 * time.Hour / time.Duration(perNight)
	for n := range nights {
		for d := range devices {
			dev := fmt.Sprintf("bench-%04d", d)
			first := start.AddDate(0, 0, n).Add(5 * time.Hour)
			for i := range perNight {
				onset := first.Add(time.Duration(i)*step + time.Duration(d)*time.Millisecond)
				kind, muscle, side := kinds[i%len(kinds)], muscles[i%4], sides[(i/4)%2]
				us := onset.UnixMicro()
				fmt.Fprintf(&buf, "events,device=%s,kind=%s,muscle=%s,side=%s state=\"ended\",duration_s=2.5,peak_uv=%d,confidence=0.875,mean_uv=50.25,median_freq_hz=70.5,latency_s=1,end=%di,event_id=\"%s-%s-%s_%s-%d\" %d\n",
					dev, kind, muscle, side, 100+i%97, onset.Add(2500*time.Millisecond).UnixMilli(), dev, kind, muscle, side, us, us)
				if buf.Len() > 4<<20 {
					flush()
				}
			}
		}
	}
	flush()
}

// BenchmarkExportInflux exports 1 000 000 events from the real InfluxDB
// (100 devices, 10 nights, 1000 events per device-night) to CSV: the whole
// path, Flux queries included. Loading the events is not timed, and the
// peak RSS is reset after it.
//
//	go test -run XXX -bench ExportInflux -benchtime 1x -timeout 30m ./export/
func BenchmarkExportInflux(b *testing.B) {
	const devices, nights, perNight = 100, 10, 1000
	db := testenv.InfluxDB(b)
	start := time.Date(2025, 1, 1, 18, 0, 0, 0, time.UTC)
	t0 := time.Now()
	loadEvents(b, db, devices, nights, perNight, start)
	b.Logf("loaded %d events in %v", devices*nights*perNight, time.Since(t0).Round(time.Second))
	cfg := store.DefaultConfig()
	cfg.URL, cfg.Bucket = db.URL, db.Bucket
	st, err := store.New(cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close(b.Context())
	p, err := NewPseudonymizer([]byte(testKey))
	if err != nil {
		b.Fatal(err)
	}
	opt := Options{From: start, To: start.AddDate(0, 0, nights), Nights: DefaultNights(time.UTC), Pseudonyms: p}
	resetPeakRSS(b)
	b.ResetTimer()
	for i := range b.N {
		m, err := Run(b.Context(), NewInfluxSource(st), filepath.Join(b.TempDir(), strconv.Itoa(i)), []Format{FormatCSV}, opt)
		if err != nil {
			b.Fatal(err)
		}
		if m.Rows.Events != devices*nights*perNight || m.Rows.Nights != devices*nights {
			b.Fatalf("exported %d events, %d nights", m.Rows.Events, m.Rows.Nights)
		}
	}
	b.ReportMetric(peakRSS(b), "peak-RSS-MiB")
	b.ReportMetric(float64(devices*nights*perNight)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

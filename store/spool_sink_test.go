package store

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/influxdata/influxdb-client-go/v2/api/write"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/crampwatch/crampwatch/detect"
	"github.com/crampwatch/crampwatch/ingest"
)

// spoolConfig is testConfig with a spool in a fresh directory and quick
// flushes and retries.
func spoolConfig(t *testing.T, url string) Config {
	cfg := testConfig(url)
	cfg.SpoolDir = t.TempDir()
	cfg.FlushInterval = 10 * time.Millisecond
	cfg.MaxRetryInterval = 50 * time.Millisecond
	return cfg
}

func (f *fakeInflux) setDown(down bool) {
	f.mu.Lock()
	f.down = down
	f.mu.Unlock()
}

// writtenLines returns every line the fake server accepted, in order.
func (f *fakeInflux) writtenLines() []string {
	var out []string
	for _, b := range f.writes() {
		out = append(out, lines(b)...)
	}
	return out
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second) // only a failing test waits this long
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// syncBuffer collects log output from the writer goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) count(s string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Count(b.b.String(), s)
}

func crampAt(i int, state detect.State) detect.Event {
	e := endedCramp()
	e.Onset = onset.Add(time.Duration(i) * time.Minute)
	e.State = state
	return e
}

// checkOnce asserts that each wanted line prefix occurs exactly once in
// got and that they occur in the wanted order.
func checkOnce(t *testing.T, got []string, want []string) {
	t.Helper()
	pos := -1
	for _, w := range want {
		idx, n := -1, 0
		for i, l := range got {
			if strings.HasPrefix(l, w) {
				idx = i
				n++
			}
		}
		if n != 1 {
			t.Errorf("%q written %d times, want once", w, n)
			continue
		}
		if idx < pos {
			t.Errorf("%q written out of order", w)
		}
		pos = idx
	}
}

func TestInfluxSpoolReplaysInOrder(t *testing.T) {
	f := newFakeInflux(t)
	f.setDown(true)
	cfg := spoolConfig(t, f.srv.URL)
	reg := prometheus.NewRegistry()
	s := newInflux(t, cfg, reg)

	s.Event(crampAt(0, detect.StateOngoing))
	for i := range 10 {
		s.Envelope(envelopeAt(i))
	}
	waitMetric(t, reg, "crampwatch_sink_spooled_points_total", "events", 1)
	waitMetric(t, reg, "crampwatch_sink_spooled_points_total", "envelope", 10)
	// The cramp ends while the server is still down: the ended point goes
	// behind the ongoing one, on disk.
	s.Event(crampAt(0, detect.StateEnded))
	s.Event(crampAt(1, detect.StateEnded))
	s.WritePoint(write.NewPointWithMeasurement("alerts").AddTag("device", "dev-01").AddField("level", 1).SetTime(onset))
	for i := 10; i < 20; i++ {
		s.Envelope(envelopeAt(i))
	}
	waitMetric(t, reg, "crampwatch_sink_spooled_points_total", "events", 3)
	waitMetric(t, reg, "crampwatch_sink_spooled_points_total", "envelope", 20)
	if got := depth(t, reg); got != 0 {
		t.Errorf("queue depth %v while down, want 0: everything sealed goes to disk", got)
	}
	if n := metric(t, reg, "crampwatch_sink_spool_bytes", ""); n <= 0 || n != float64(dirBytes(t, cfg.SpoolDir)) {
		t.Errorf("spool_bytes %v, files hold %d", n, dirBytes(t, cfg.SpoolDir))
	}
	if len(f.writes()) != 0 {
		t.Fatal("writes accepted while down")
	}

	f.setDown(false)
	waitFor(t, "spool replayed", func() bool { return metric(t, reg, "crampwatch_sink_spool_bytes", "") == 0 })
	// New points after the replay go straight to the server again.
	s.Envelope(envelopeAt(20))
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}

	got := f.writtenLines()
	checkEventOrder(t, got, `state="ongoing"`+ts(0), `state="ended"`+ts(0), `state="ended"`+ts(1))
	var env []string
	for i := range 21 {
		env = append(env, "envelope,channel=calf_left,device=d1,muscle=calf,side=left rms_uv="+itoa(int64(i))+",")
	}
	checkOnce(t, got, env)
	for meas, want := range map[string]float64{"events": 3, "envelope": 21, "alerts": 1} {
		if n := metric(t, reg, "crampwatch_sink_points_written_total", meas); n != want {
			t.Errorf("written{%s} = %v, want %v", meas, n, want)
		}
		if n := metric(t, reg, "crampwatch_sink_dropped_total", meas); n != 0 {
			t.Errorf("dropped{%s} = %v", meas, n)
		}
	}
	if files := segmentFiles(t, cfg.SpoolDir); len(files) != 0 {
		t.Errorf("segments left after the replay: %v", files)
	}
}

// ts is the line protocol timestamp of crampAt(i).
func ts(i int) string { return " " + itoa(onset.Add(time.Duration(i)*time.Minute).UnixMicro()) }

// checkEventOrder asserts that the event lines in got are, in order,
// exactly want, each given as its state field and timestamp.
func checkEventOrder(t *testing.T, got []string, want ...string) {
	t.Helper()
	var events []string
	for _, l := range got {
		if strings.HasPrefix(l, "events,") {
			events = append(events, l[strings.Index(l, "state="):strings.Index(l, ",duration_s")]+l[strings.LastIndex(l, " "):])
		}
	}
	if strings.Join(events, "|") != strings.Join(want, "|") {
		t.Errorf("events written\n %q\nwant\n %q", events, want)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func parseInt(t *testing.T, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestInfluxSpoolSurvivesRestart(t *testing.T) {
	f := newFakeInflux(t)
	f.setDown(true)
	cfg := spoolConfig(t, f.srv.URL)
	cfg.MaxRetryInterval = time.Hour // only the restart replays
	reg := prometheus.NewRegistry()
	s := newInflux(t, cfg, reg)
	s.Event(crampAt(0, detect.StateOngoing))
	s.Envelope(envelopeAt(0))
	waitMetric(t, reg, "crampwatch_sink_spooled_points_total", "events", 1)
	s.Event(crampAt(0, detect.StateEnded))
	s.Health(ingest.Health{Device: "d1", Time: onset, BatteryPct: 50})
	s.WritePoint(write.NewPointWithMeasurement("diary").AddTag("device", "d1").AddField("pain", 3).SetTime(onset))
	// Close does not wait for a server that is down: the queue goes to disk.
	start := time.Now()
	if err := s.Close(context.Background()); err != nil {
		t.Fatalf("Close with the server down: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Close took %v with the server down", d)
	}
	if len(segmentFiles(t, cfg.SpoolDir)) == 0 {
		t.Fatal("nothing spooled")
	}
	for meas, want := range map[string]float64{"events": 2, "envelope": 1, "device_health": 1, "diary": 1} {
		if n := metric(t, reg, "crampwatch_sink_spooled_points_total", meas); n != want {
			t.Errorf("spooled{%s} = %v, want %v", meas, n, want)
		}
	}

	// The next start writes the spooled batches, before anything new.
	f.setDown(false)
	var logs syncBuffer
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	reg2 := prometheus.NewRegistry()
	s2 := newInflux(t, cfg, reg2)
	if n := metric(t, reg2, "crampwatch_sink_spool_bytes", ""); n == 0 {
		t.Error("spool_bytes 0 at start with a spool from the last run")
	}
	s2.Event(crampAt(1, detect.StateEnded))
	if err := s2.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := f.writtenLines()
	checkEventOrder(t, got, `state="ongoing"`+ts(0), `state="ended"`+ts(0), `state="ended"`+ts(1))
	if len(got) != 6 {
		t.Errorf("%d lines written, want 6:\n%s", len(got), strings.Join(got, "\n"))
	}
	for meas, want := range map[string]float64{"events": 3, "envelope": 1, "device_health": 1, "diary": 1} {
		if n := metric(t, reg2, "crampwatch_sink_points_written_total", meas); n != want {
			t.Errorf("written{%s} after restart = %v, want %v", meas, n, want)
		}
	}
	if files := segmentFiles(t, cfg.SpoolDir); len(files) != 0 {
		t.Errorf("segments left: %v", files)
	}
	if logs.count("InfluxDB spool holds points from an earlier run") != 1 || logs.count("InfluxDB spool replayed") != 1 {
		t.Errorf("start-up and replay not logged:\n%s", logs.b.String())
	}
}

// TestInfluxSpoolCloseDeadline: a server that hangs, and a shutdown
// deadline. The batch being written and the rest of the queue go to the
// spool instead of being dropped.
func TestInfluxSpoolCloseDeadline(t *testing.T) {
	f := newFakeInflux(t)
	f.hang = true
	cfg := spoolConfig(t, f.srv.URL)
	reg := prometheus.NewRegistry()
	s := newInflux(t, cfg, reg)
	s.Event(endedCramp())
	waitFor(t, "the event's write to start", func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.started > 0
	})
	for i := range 5 {
		s.Envelope(envelopeAt(i))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := s.Close(ctx); err != nil {
		t.Errorf("Close = %v, want nil: nothing was lost", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Close took %v past a 200ms deadline", d)
	}
	for meas, want := range map[string]float64{"events": 1, "envelope": 5} {
		if n := metric(t, reg, "crampwatch_sink_spooled_points_total", meas); n != want {
			t.Errorf("spooled{%s} = %v, want %v", meas, n, want)
		}
		if n := metric(t, reg, "crampwatch_sink_dropped_total", meas); n != 0 {
			t.Errorf("dropped{%s} = %v, want 0", meas, n)
		}
	}
}

// TestInfluxSpoolFullDegradationOrder fills a small spool while the server
// is down: envelope points are turned away first, then evicted for events;
// events beyond that wait in memory; all events arrive, in order, once the
// server is back.
func TestInfluxSpoolFullDegradationOrder(t *testing.T) {
	f := newFakeInflux(t)
	f.setDown(true)
	cfg := spoolConfig(t, f.srv.URL)
	cfg.SpoolMaxBytes = 16 << 10
	cfg.BatchSize = 10
	var logs syncBuffer
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	reg := prometheus.NewRegistry()
	s := newInflux(t, cfg, reg)

	const nEnv = 1000 // about 100 kB: six times the spool
	for i := range nEnv {
		s.Envelope(envelopeAt(i))
	}
	waitFor(t, "envelope points spooled or dropped", func() bool {
		return metric(t, reg, "crampwatch_sink_spooled_points_total", "envelope")+
			metric(t, reg, "crampwatch_sink_dropped_total", "envelope") == nEnv
	})
	full := metric(t, reg, "crampwatch_sink_spool_full_total", "envelope")
	if full == 0 || full != metric(t, reg, "crampwatch_sink_dropped_total", "envelope") {
		t.Errorf("spool_full{envelope} = %v, dropped %v: want equal and > 0", full, metric(t, reg, "crampwatch_sink_dropped_total", "envelope"))
	}
	if n := metric(t, reg, "crampwatch_sink_spool_bytes", ""); n > float64(cfg.SpoolMaxBytes) {
		t.Errorf("spool_bytes %v past the bound %d", n, cfg.SpoolMaxBytes)
	}
	if n := logs.count("InfluxDB spool full: envelope, motion and health points are dropped"); n != 1 {
		t.Errorf("spool-full line logged %d times, want once:\n%s", n, logs.b.String())
	}

	// Events take the room of spooled envelope points, and then, once no
	// envelope point is left to evict, wait in memory.
	const nEv = 200 // about 60 kB
	for i := range nEv {
		s.Event(crampAt(i, detect.StateEnded))
	}
	waitFor(t, "the spool to turn events away", func() bool {
		return metric(t, reg, "crampwatch_sink_spool_full_total", "events") > 0
	})
	waitFor(t, "events spooled or kept", func() bool {
		return metric(t, reg, "crampwatch_sink_spooled_points_total", "events")+depth(t, reg) == nEv
	})
	if n := metric(t, reg, "crampwatch_sink_dropped_total", "events"); n != 0 {
		t.Errorf("dropped{events} = %v while envelope points could go", n)
	}
	if depth(t, reg) == 0 {
		t.Error("no event waits in memory: the spool should be full of events")
	}
	for _, f := range segmentFiles(t, cfg.SpoolDir) {
		if strings.HasPrefix(f, "bulk-") {
			t.Errorf("bulk segment %s kept while events wait", f)
		}
	}
	if n := logs.count("InfluxDB spool full of events and alert records"); n != 1 {
		t.Errorf("events-full line logged %d times, want once", n)
	}

	f.setDown(false)
	waitFor(t, "everything written", func() bool {
		return metric(t, reg, "crampwatch_sink_points_written_total", "events") == nEv
	})
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	var onsets []int64
	for _, l := range f.writtenLines() {
		if strings.HasPrefix(l, "events,") {
			onsets = append(onsets, parseInt(t, l[strings.LastIndex(l, " ")+1:]))
		}
	}
	if len(onsets) != nEv {
		t.Fatalf("%d events written, want %d", len(onsets), nEv)
	}
	for i, us := range onsets {
		if want := onset.Add(time.Duration(i) * time.Minute).UnixMicro(); us != want {
			t.Fatalf("event %d written with onset %d, want %d: out of order", i, us, want)
		}
	}
	env := metric(t, reg, "crampwatch_sink_points_written_total", "envelope") + metric(t, reg, "crampwatch_sink_dropped_total", "envelope")
	if env != nEnv {
		t.Errorf("envelope written + dropped = %v, want %d", env, nEnv)
	}
}

// TestInfluxSpoolRejectedRecordDropped: a spooled batch the server rejects
// on replay is dropped like a direct one, and the replay goes on.
func TestInfluxSpoolRejectedRecordDropped(t *testing.T) {
	f := newFakeInflux(t)
	f.setDown(true)
	cfg := spoolConfig(t, f.srv.URL)
	reg := prometheus.NewRegistry()
	s := newInflux(t, cfg, reg)
	s.Event(endedCramp())
	s.Envelope(envelopeAt(0))
	waitMetric(t, reg, "crampwatch_sink_spooled_points_total", "envelope", 1)
	f.mu.Lock()
	f.down, f.statuses = false, []int{http.StatusBadRequest}
	f.mu.Unlock()
	waitFor(t, "spool replayed", func() bool { return metric(t, reg, "crampwatch_sink_spool_bytes", "") == 0 })
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if w := f.writes(); len(w) != 1 || !strings.HasPrefix(w[0], "envelope,") {
		t.Errorf("writes %q, want only the envelope batch", w)
	}
	if n := metric(t, reg, "crampwatch_sink_dropped_total", "events"); n != 1 {
		t.Errorf("dropped{events} = %v, want 1", n)
	}
}

// TestInfluxSpoolDiskFailure: the spool directory is gone during an
// outage. Envelope points are dropped and counted, events wait in memory
// and are written when the server is back.
func TestInfluxSpoolDiskFailure(t *testing.T) {
	f := newFakeInflux(t)
	f.setDown(true)
	cfg := spoolConfig(t, f.srv.URL)
	var logs syncBuffer
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	reg := prometheus.NewRegistry()
	s := newInflux(t, cfg, reg)
	if err := os.RemoveAll(cfg.SpoolDir); err != nil {
		t.Fatal(err)
	}
	s.Event(crampAt(0, detect.StateOngoing))
	s.Event(crampAt(0, detect.StateEnded))
	for i := range 5 {
		s.Envelope(envelopeAt(i))
	}
	waitFor(t, "envelope points dropped", func() bool {
		return metric(t, reg, "crampwatch_sink_dropped_total", "envelope") == 5
	})
	if n := logs.count("InfluxDB spool write failed"); n != 1 {
		t.Errorf("disk failure logged %d times, want once:\n%s", n, logs.b.String())
	}
	if got := depth(t, reg); got != 2 {
		t.Errorf("queue depth %v, want the 2 events kept in memory", got)
	}
	f.setDown(false)
	waitFor(t, "events written", func() bool {
		return metric(t, reg, "crampwatch_sink_points_written_total", "events") == 2
	})
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	checkEventOrder(t, f.writtenLines(), `state="ongoing"`+ts(0), `state="ended"`+ts(0))
	if n := metric(t, reg, "crampwatch_sink_spool_full_total", "envelope"); n != 0 {
		t.Errorf("spool_full{envelope} = %v for a disk failure", n)
	}
}

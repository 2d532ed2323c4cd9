package pipeline

import (
	"encoding/json"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/crampwatch/crampwatch/detect"
	"github.com/crampwatch/crampwatch/wire"
)

// envRecorder is a recorder that also keeps the envelope points.
type envRecorder struct {
	recorder
	env []detect.Envelope
}

func (r *envRecorder) Envelope(e detect.Envelope) {
	r.mu.Lock()
	r.env = append(r.env, e)
	r.mu.Unlock()
}

func newTestPipeline(t *testing.T) (*Pipeline, *envRecorder, *prometheus.Registry) {
	t.Helper()
	rec := &envRecorder{}
	reg := prometheus.NewRegistry()
	return New(detect.DefaultConfig(), NewMetrics(reg), slog.New(slog.DiscardHandler), rec), rec, reg
}

func metricSum(t *testing.T, reg *prometheus.Registry, name, label string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if label == "" || hasLabelValue(m, label) {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

func hasLabelValue(m *dto.Metric, v string) bool {
	for _, l := range m.GetLabel() {
		if l.GetValue() == v {
			return true
		}
	}
	return false
}

var night = time.Date(2026, 11, 27, 23, 0, 0, 0, time.UTC).UnixMicro()

// restartMidCramp runs a first pipeline through 2 minutes of rest and the
// first 20 s of a strong contraction, saves its state and returns the
// directory, the first run's events and the sample time it stopped at.
func restartMidCramp(t *testing.T, rng *rand.Rand) (dir string, first *envRecorder, stop int64) {
	t.Helper()
	p, rec, _ := newTestPipeline(t)
	at := feed(p, "dev", rng, night, 120, 3)
	stop = feed(p, "dev", rng, at, 20, 400)
	if len(rec.events) != 1 || rec.events[0].State != detect.StateOngoing {
		t.Fatalf("first run: events %+v, want one ongoing cramp", rec.events)
	}
	dir = t.TempDir()
	if n, err := p.SaveState(dir); err != nil || n != 1 {
		t.Fatalf("SaveState: %d, %v", n, err)
	}
	return dir, rec, stop
}

// TestStateCrampContinuesAcrossRestart: a cramp confirmed before the
// restart and going on after it is reported once ongoing (by the first run)
// and once ended (by the second) with the same onset, so the same ID, and
// its whole duration; the second run needs no baseline warm-up.
func TestStateCrampContinuesAcrossRestart(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	dir, first, stop := restartMidCramp(t, rng)
	ongoing := first.events[0]

	p, rec, reg := newTestPipeline(t)
	if n, err := p.LoadState(dir); err != nil || n != 1 {
		t.Fatalf("LoadState: %d, %v", n, err)
	}
	at := feed(p, "dev", rng, stop, 15, 400)
	feed(p, "dev", rng, at, 10, 3)

	if len(rec.events) != 1 {
		t.Fatalf("second run: events %+v, want only the ended report", rec.events)
	}
	ended := rec.events[0]
	if ended.State != detect.StateEnded || ended.ID() != ongoing.ID() || !ended.ConfirmedAt.Equal(ongoing.ConfirmedAt) {
		t.Errorf("ended %+v does not continue ongoing %+v", ended, ongoing)
	}
	if want := 35.0; math.Abs(ended.DurationS-want) > 1.5 {
		t.Errorf("duration %.1f s, want about %.0f", ended.DurationS, want)
	}
	if got := metricSum(t, reg, "crampwatch_pipeline_states_restored_total", ""); got != 1 {
		t.Errorf("states restored = %v, want 1", got)
	}
	if got := metricSum(t, reg, "crampwatch_pipeline_carried_cramps_total", "continued"); got != 1 {
		t.Errorf("carried continued = %v, want 1", got)
	}
	// The baseline carried over: the first envelope point of the second
	// run has the first run's resting level, not the detector's prior.
	firstBase := first.env[len(first.env)-1].BaselineUV
	if got := rec.env[0].BaselineUV; math.Abs(got-firstBase) > 0.01*firstBase {
		t.Errorf("baseline after restart %.2f uV, before %.2f uV", got, firstBase)
	}
}

// TestStateCrampEndsDuringRestart: the cramp is over when the stream
// resumes; the carried cramp is ended at its last activity, once.
func TestStateCrampEndsDuringRestart(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	dir, first, stop := restartMidCramp(t, rng)
	p, rec, reg := newTestPipeline(t)
	if _, err := p.LoadState(dir); err != nil {
		t.Fatal(err)
	}
	feed(p, "dev", rng, stop, 30, 3)
	if len(rec.events) != 1 || rec.events[0].State != detect.StateEnded || rec.events[0].ID() != first.events[0].ID() {
		t.Fatalf("second run: events %+v, want the first run's cramp ended", rec.events)
	}
	if end := rec.events[0].End.UnixMicro(); end < stop-time.Second.Microseconds() || end > stop {
		t.Errorf("ended at %v, want just before the restart at %v", rec.events[0].End, time.UnixMicro(stop))
	}
	if got := metricSum(t, reg, "crampwatch_pipeline_carried_cramps_total", "ended"); got != 1 {
		t.Errorf("carried ended = %v, want 1", got)
	}
}

// TestStateSkipsRedeliveredFrames: frames the first run processed and the
// broker delivers again (their acknowledgement was lost) are skipped.
func TestStateSkipsRedeliveredFrames(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	dir, _, stop := restartMidCramp(t, rng)
	p, rec, reg := newTestPipeline(t)
	if _, err := p.LoadState(dir); err != nil {
		t.Fatal(err)
	}
	at := feed(p, "dev", rng, stop-500_000, 15.5, 400) // 5 frames again
	feed(p, "dev", rng, at, 10, 3)
	if got := metricSum(t, reg, "crampwatch_pipeline_resumed_frames_skipped_total", ""); got != 5 {
		t.Errorf("skipped %v frames, want 5", got)
	}
	if len(rec.events) != 1 || rec.events[0].State != detect.StateEnded {
		t.Errorf("events %+v, want one ended cramp", rec.events)
	}
}

// TestStateGapAtResume: when frames were lost while the service was away,
// the carried cramp ends at once at its last known activity, and a cramp
// still going on afterwards is a new one.
func TestStateGapAtResume(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	dir, first, stop := restartMidCramp(t, rng)
	p, rec, _ := newTestPipeline(t)
	if _, err := p.LoadState(dir); err != nil {
		t.Fatal(err)
	}
	feed(p, "dev", rng, stop+60e6, 1, 3)
	if len(rec.events) != 1 || rec.events[0].ID() != first.events[0].ID() || rec.events[0].State != detect.StateEnded {
		t.Fatalf("events %+v, want the carried cramp ended", rec.events)
	}
	if end := rec.events[0].End.UnixMicro(); end > stop {
		t.Errorf("ended at %v, after the last frame before the gap", rec.events[0].End)
	}
}

// TestLoadStateConsumesOpenCramps: LoadState rewrites a file without its
// open cramps (a crash before the next save must not end them twice),
// ignores malformed files and files that are not device states, and keeps
// states of devices that did not come back.
func TestLoadStateConsumesOpenCramps(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	dir, _, _ := restartMidCramp(t, rng)
	for name, body := range map[string]string{"broken.json": "{", "notes.txt": "hello", "bad id!.json": "{}"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	p, _, _ := newTestPipeline(t)
	if n, err := p.LoadState(dir); err != nil || n != 1 {
		t.Fatalf("LoadState: %d, %v; want 1 device", n, err)
	}
	var st deviceState
	b, err := os.ReadFile(filepath.Join(dir, "dev.json"))
	if err == nil {
		err = json.Unmarshal(b, &st)
	}
	if err != nil || len(st.Open) != 0 || len(st.Detector) == 0 {
		t.Fatalf("state file after LoadState: %s (%v); want baselines without open cramps", b, err)
	}
	// The device never comes back in this run: its state is saved again.
	other := t.TempDir()
	if n, err := p.SaveState(other); err != nil || n != 1 {
		t.Fatalf("SaveState: %d, %v", n, err)
	}
	entries, _ := os.ReadDir(other)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if strings.Join(names, " ") != "dev.json" {
		t.Errorf("saved %v, want dev.json only", names)
	}
	if _, err := p.LoadState(filepath.Join(dir, "missing")); err != nil {
		t.Errorf("LoadState of a missing dir: %v", err)
	}
}

func TestProcessed(t *testing.T) {
	const saved = 1_000_000
	tests := []struct {
		name    string
		t0, end int64
		want    bool
	}{
		{"last frame before the restart, again", 900_000, saved, true},
		{"an older frame", 500_000, 600_000, true},
		{"the next frame", saved, 1_100_000, false},
		{"the next frame, clock 1 ms early", 999_000, 1_099_000, false},
		{"the next frame, clock 1 ms late", 1_001_000, 1_101_000, false},
	}
	for _, tt := range tests {
		if got := processed(tt.t0, tt.end, saved); got != tt.want {
			t.Errorf("%s: processed = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestSaveStateSkipsStatusOnlyDevices: a device that only sent a status
// frame (a retained one, say) has learnt nothing and gets no state file.
func TestSaveStateSkipsStatusOnlyDevices(t *testing.T) {
	p, _, _ := newTestPipeline(t)
	p.Status("quiet", &wire.StatusFrame{T: night, BatteryPct: 50})
	feed(p, "busy", rand.New(rand.NewPCG(1, 1)), night, 1, 3)
	dir := t.TempDir()
	if n, err := p.SaveState(dir); err != nil || n != 1 {
		t.Fatalf("SaveState: %d, %v; want 1 file", n, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "busy.json")); err != nil {
		t.Error(err)
	}
}

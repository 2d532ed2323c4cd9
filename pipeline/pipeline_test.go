package pipeline

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crampwatch/crampwatch/detect"
	"github.com/crampwatch/crampwatch/ingest"
	"github.com/crampwatch/crampwatch/wire"
)

// recorder is a Sink that keeps what it gets.
type recorder struct {
	mu        sync.Mutex
	events    []detect.Event
	envelopes int
	health    []ingest.Health
	closed    bool
	closeErr  error
}

func (r *recorder) Event(e detect.Event) { r.mu.Lock(); r.events = append(r.events, e); r.mu.Unlock() }
func (r *recorder) Envelope(detect.Envelope) {
	r.mu.Lock()
	r.envelopes++
	r.mu.Unlock()
}
func (r *recorder) Motion(detect.Motion)   {}
func (r *recorder) Health(h ingest.Health) { r.health = append(r.health, h) }
func (r *recorder) Close(context.Context) error {
	r.closed = true
	return r.closeErr
}

// feed sends seconds of EMG on calf_left at level µV RMS (white noise),
// starting at t (Unix µs), in 100 ms frames; it returns the next start.
func feed(p *Pipeline, device string, rng *rand.Rand, t int64, seconds, level float64) int64 {
	for range int(seconds * 10) {
		f := &wire.EMGFrame{T0: t, Rate: 1000, Unit: wire.Microvolt,
			Channels: []wire.Channel{{Muscle: wire.Calf, Side: wire.Left}}, Data: [][]float64{make([]float64, 100)}}
		for i := range f.Data[0] {
			f.Data[0][i] = rng.NormFloat64() * level
		}
		p.EMG(device, f)
		t = f.End()
	}
	return t
}

func TestPipelineFansOutAndEndsStreams(t *testing.T) {
	a, b := &recorder{}, &recorder{closeErr: errors.New("disk full")}
	reg := prometheus.NewRegistry()
	p := New(detect.DefaultConfig(), NewMetrics(reg), slog.New(slog.DiscardHandler), a, b)
	rng := rand.New(rand.NewPCG(1, 2))
	start := time.Date(2026, 11, 27, 23, 0, 0, 0, time.UTC).UnixMicro()
	t0 := feed(p, "dev-a", rng, start, 120, 3)
	feed(p, "dev-b", rng, start, 120, 3) // a second device, at rest throughout
	// A strong contraction that is still going on when the recording stops.
	feed(p, "dev-a", rng, t0, 20, 400)
	p.Health(ingest.Health{Device: "dev-a"})

	if len(a.events) != 1 || a.events[0].Kind != detect.KindCramp || a.events[0].State != detect.StateOngoing {
		t.Fatalf("before EndStreams: events %+v, want one ongoing cramp", a.events)
	}
	p.EndStreams()
	if len(a.events) != 2 || a.events[1].State != detect.StateEnded || a.events[1].Device != "dev-a" {
		t.Fatalf("after EndStreams: events %+v, want the cramp ended", a.events)
	}
	if len(b.events) != len(a.events) || a.envelopes == 0 || a.envelopes != b.envelopes || len(b.health) != 1 {
		t.Errorf("sinks saw different things: a %d events %d envelopes, b %d events %d envelopes %d health",
			len(a.events), a.envelopes, len(b.events), b.envelopes, len(b.health))
	}
	err := p.Close(context.Background())
	if !a.closed || !b.closed || err == nil || err.Error() != "disk full" {
		t.Errorf("Close: closed %v %v, err %v; want both closed and b's error", a.closed, b.closed, err)
	}
	if err := p.Close(context.Background()); err != nil {
		t.Errorf("second Close: %v", err)
	}
	mfs, _ := reg.Gather()
	var counted float64
	for _, mf := range mfs {
		if mf.GetName() == "crampwatch_events_total" {
			for _, m := range mf.GetMetric() {
				counted += m.GetCounter().GetValue()
			}
		}
	}
	if counted != 2 {
		t.Errorf("crampwatch_events_total sums to %v, want 2", counted)
	}
}

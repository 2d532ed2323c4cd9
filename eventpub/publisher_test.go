package eventpub

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crampwatch/crampwatch/detect"
	"github.com/crampwatch/crampwatch/pipeline"
)

var _ pipeline.Sink = (*Sink)(nil)

type message struct {
	topic    string
	qos      byte
	retained bool
	payload  []byte
}

// fakePublisher records messages; fail makes the first fail calls fail, and
// block (if set) holds every call until it is closed or ctx ends.
type fakePublisher struct {
	mu    sync.Mutex
	msgs  []message
	calls int
	fail  int
	block chan struct{}
	// ignoreCtx makes a blocked call wait for block only, like a broken client.
	ignoreCtx bool
}

func (p *fakePublisher) Publish(ctx context.Context, topic string, qos byte, retained bool, payload []byte) error {
	p.mu.Lock()
	p.calls++
	fail := p.calls <= p.fail
	block := p.block
	p.mu.Unlock()
	if block != nil {
		if p.ignoreCtx {
			<-block
		} else {
			select {
			case <-block:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	if fail {
		return errors.New("not connected")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.msgs = append(p.msgs, message{topic, qos, retained, append([]byte(nil), payload...)})
	return nil
}

func (p *fakePublisher) messages() []message {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]message(nil), p.msgs...)
}

func counter(t *testing.T, reg *prometheus.Registry, name string) float64 {
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
			if labels["sink"] == sinkName && labels["measurement"] == measurement {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func TestSinkPublishesInOrder(t *testing.T) {
	pub := &fakePublisher{}
	reg := prometheus.NewRegistry()
	s, err := New(pub, Config{Prefix: "home/cw/"}, reg)
	if err != nil {
		t.Fatal(err)
	}
	ongoing := sampleCramp()
	ongoing.State = detect.StateOngoing
	ended := sampleCramp()
	other := sampleCramp()
	other.Device = "dev-02"
	for _, e := range []detect.Event{ongoing, ended, other} {
		s.Event(e)
	}
	s.Envelope(detect.Envelope{Device: "dev-01"}) // ignored
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	msgs := pub.messages()
	if len(msgs) != 3 {
		t.Fatalf("got %d messages, want 3", len(msgs))
	}
	wantTopics := []string{"home/cw/dev-01/events", "home/cw/dev-01/events", "home/cw/dev-02/events"}
	wantStates := []detect.State{detect.StateOngoing, detect.StateEnded, detect.StateEnded}
	for i, m := range msgs {
		if m.topic != wantTopics[i] || m.qos != 1 || m.retained {
			t.Errorf("message %d: topic %q qos %d retained %v", i, m.topic, m.qos, m.retained)
		}
		var j Event
		if err := json.Unmarshal(m.payload, &j); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if j.State != wantStates[i] {
			t.Errorf("message %d: state %q, want %q", i, j.State, wantStates[i])
		}
	}
	if got := counter(t, reg, "crampwatch_sink_points_written_total"); got != 3 {
		t.Errorf("written = %v, want 3", got)
	}
}

func TestSinkRetriesThenPublishes(t *testing.T) {
	pub := &fakePublisher{fail: 2}
	reg := prometheus.NewRegistry()
	s, err := New(pub, Config{}, reg)
	if err != nil {
		t.Fatal(err)
	}
	s.Event(sampleCramp())
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := len(pub.messages()); n != 1 {
		t.Errorf("published %d, want 1", n)
	}
	if got := counter(t, reg, "crampwatch_sink_errors_total"); got != 2 {
		t.Errorf("errors = %v, want 2", got)
	}
	if got := counter(t, reg, "crampwatch_sink_dropped_total"); got != 0 {
		t.Errorf("dropped = %v, want 0", got)
	}
}

func TestSinkGivesUpAfterRetryFor(t *testing.T) {
	pub := &fakePublisher{fail: 1 << 30}
	reg := prometheus.NewRegistry()
	s, err := New(pub, Config{RetryFor: 300 * time.Millisecond}, reg)
	if err != nil {
		t.Fatal(err)
	}
	s.Event(sampleCramp())
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := counter(t, reg, "crampwatch_sink_dropped_total"); got != 1 {
		t.Errorf("dropped = %v, want 1", got)
	}
	if got := counter(t, reg, "crampwatch_sink_errors_total"); got < 2 {
		t.Errorf("errors = %v, want at least 2 attempts", got)
	}
}

func TestSinkQueueFullCountsDrops(t *testing.T) {
	pub := &fakePublisher{block: make(chan struct{})}
	reg := prometheus.NewRegistry()
	s, err := New(pub, Config{QueueSize: 2}, reg)
	if err != nil {
		t.Fatal(err)
	}
	// Wait until the publisher goroutine holds the first event, so exactly
	// two more fit in the queue.
	s.Event(sampleCramp())
	waitFor(t, func() bool { pub.mu.Lock(); defer pub.mu.Unlock(); return pub.calls == 1 })
	for range 4 {
		s.Event(sampleCramp())
	}
	if got := counter(t, reg, "crampwatch_sink_dropped_total"); got != 2 {
		t.Errorf("dropped = %v, want 2 (1 in flight, 2 queued)", got)
	}
	if got := gauge(t, reg, "crampwatch_sink_queue_depth"); got != 2 {
		t.Errorf("queue depth = %v, want 2", got)
	}
	close(pub.block)
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := len(pub.messages()); n != 3 {
		t.Errorf("published %d, want 3", n)
	}
	s.Event(sampleCramp()) // after Close: counted, no panic
	if got := counter(t, reg, "crampwatch_sink_dropped_total"); got != 3 {
		t.Errorf("dropped after close = %v, want 3", got)
	}
}

func TestSinkCloseStopsAtDeadline(t *testing.T) {
	for _, ignore := range []bool{false, true} {
		pub := &fakePublisher{block: make(chan struct{}), ignoreCtx: ignore}
		reg := prometheus.NewRegistry()
		s, err := New(pub, Config{}, reg)
		if err != nil {
			t.Fatal(err)
		}
		s.Event(sampleCramp())
		s.Event(sampleCramp())
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		start := time.Now()
		err = s.Close(ctx)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("ignoreCtx=%v: Close err = %v, want deadline exceeded", ignore, err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("ignoreCtx=%v: Close took %v", ignore, d)
		}
		close(pub.block)
		<-s.q.Done()
		// A publish that ignored its context may still have succeeded.
		dropped := counter(t, reg, "crampwatch_sink_dropped_total")
		written := counter(t, reg, "crampwatch_sink_points_written_total")
		if dropped+written != 2 || dropped < 1 {
			t.Errorf("ignoreCtx=%v: dropped %v + written %v, want 2 with at least 1 dropped", ignore, dropped, written)
		}
	}
}

func TestSinkRejectsInvalidDevice(t *testing.T) {
	pub := &fakePublisher{}
	reg := prometheus.NewRegistry()
	s, err := New(pub, Config{}, reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, dev := range []string{"", "a/b", "x+", "#"} {
		e := sampleCramp()
		e.Device = dev
		s.Event(e)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := len(pub.messages()); n != 0 {
		t.Errorf("published %d, want 0", n)
	}
	if got := counter(t, reg, "crampwatch_sink_dropped_total"); got != 4 {
		t.Errorf("dropped = %v, want 4", got)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	if _, err := New(nil, Config{}, nil); err == nil {
		t.Error("nil publisher accepted")
	}
	if _, err := New(&fakePublisher{}, Config{Prefix: "a/+/b"}, nil); err == nil {
		t.Error("wildcard prefix accepted")
	}
}

func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if mf.GetName() == name && len(m.GetLabel()) == 1 && m.GetLabel()[0].GetValue() == sinkName {
				return m.GetGauge().GetValue()
			}
		}
	}
	return -1
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		time.Sleep(time.Millisecond)
	}
}

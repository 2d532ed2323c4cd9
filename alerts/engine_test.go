package alerts

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/crampwatch/crampwatch/detect"
	"github.com/crampwatch/crampwatch/ingest"
)

type published struct {
	topic    string
	qos      byte
	retained bool
	payload  []byte
}

type fakePublisher struct {
	mu   sync.Mutex
	msgs []published
	fail error
}

func (f *fakePublisher) Publish(_ context.Context, topic string, qos byte, retained bool, payload []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return f.fail
	}
	f.msgs = append(f.msgs, published{topic, qos, retained, append([]byte(nil), payload...)})
	return nil
}

type fakeRecorder struct {
	mu     sync.Mutex
	alerts []AlertRecord
	acks   []AckRecord
	diary  []DiaryRecord
}

func (f *fakeRecorder) RecordAlert(_ context.Context, r AlertRecord) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.alerts = append(f.alerts, r)
	return nil
}

func (f *fakeRecorder) RecordAck(_ context.Context, r AckRecord) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.acks = append(f.acks, r)
	return nil
}

func (f *fakeRecorder) RecordDiary(_ context.Context, r DiaryRecord) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.diary = append(f.diary, r)
	return nil
}

// feed plays a cramp through the engine as the pipeline would: envelope
// points at 10 Hz, the ongoing event 3 s after onset, the ended event.
func feed(e *Engine, label string, onset, dur float64, ackAt float64, action string) {
	ev := crampEvent(label, onset)
	for s := onset; s <= onset+dur; s += 0.1 {
		e.Envelope(detect.Envelope{Device: dev, Channel: ev.Channel, Time: at(s), RMSUV: 200, BaselineUV: 5})
		if s >= onset+3 && s < onset+3.1 {
			on := ev
			on.State, on.ConfirmedAt, on.End = detect.StateOngoing, at(s), at(s)
			e.Event(on)
		}
		if action != "" && s >= ackAt && s < ackAt+0.1 {
			_ = e.HandleAck(dev, []byte(`{"id":"al-`+ev.ID()+`","action":"`+action+`"}`))
		}
	}
	ev.State, ev.ConfirmedAt, ev.End, ev.DurationS = detect.StateEnded, at(onset+3), at(onset+dur), dur
	e.Event(ev)
}

func TestEngineDeliversAndRecords(t *testing.T) {
	pub := &fakePublisher{}
	rec := &fakeRecorder{}
	hook := &hookServer{}
	srv := httptest.NewServer(hook)
	defer srv.Close()
	reg := prometheus.NewRegistry()
	cfg := withTENS(testConfig())
	cfg.Webhook = hookConfig(srv.URL)
	e, err := NewEngine(cfg, Deps{Publisher: pub, Recorder: rec, Metrics: NewMetrics(reg), HTTPClient: srv.Client(),
		Now: func() time.Time { return at(6 * 3600) }})
	if err != nil {
		t.Fatal(err)
	}
	feed(e, "calf_left", 0, 150, 0, "")          // alert, escalation, TENS prompt, ended
	feed(e, "calf_right", 600, 30, 10+600, "ok") // alert, ack, ended
	e.Event(detect.Event{Device: dev, Kind: detect.KindPLM, State: detect.StateEnded, Channel: chOf("calf_left"), Onset: at(700), End: at(701)})
	e.Health(ingest.Health{Device: dev, Time: at(800)})
	if err := e.HandleDiary(dev, []byte(`{"pain":5,"helped":["stretch"]}`)); err != nil {
		t.Fatalf("diary: %v", err)
	}
	if err := e.HandleAck(dev, []byte(`{"id":"al-made-up","action":"ok"}`)); err == nil {
		t.Error("unknown ack id accepted")
	}
	if err := e.HandleAck("bad/dev", []byte(`{"id":"x","action":"ok"}`)); err == nil {
		t.Error("bad device accepted")
	}
	if err := e.HandleDiary(dev, []byte(`{"pain":12}`)); err == nil {
		t.Error("pain 12 accepted")
	}
	if err := e.Close(context.Background()); err != nil {
		t.Fatal(err)
	}

	var kinds []string
	discovery := 0
	for _, m := range pub.msgs {
		var p struct {
			Type string `json:"type"`
		}
		if strings.HasPrefix(m.topic, "homeassistant/") {
			// Its own path, after whatever wearer message is queued: no
			// fixed place in the order.
			discovery++
			if !m.retained || m.qos != 1 || !json.Valid(m.payload) {
				t.Errorf("discovery retained %v qos %d payload %s", m.retained, m.qos, m.payload)
			}
			continue
		}
		if err := json.Unmarshal(m.payload, &p); err != nil {
			t.Fatal(err)
		}
		kinds = append(kinds, p.Type)
		if m.retained || m.qos != 1 {
			t.Errorf("%s: retained %v qos %d", p.Type, m.retained, m.qos)
		}
	}
	want := "alert escalation tens_prompt ended alert ended"
	if got := strings.Join(kinds, " "); got != want || discovery != 1 {
		t.Errorf("published %q and %d discovery configs, want %q and 1", got, discovery, want)
	}
	hooks := hook.requests()
	if len(hooks) != 6 {
		t.Errorf("webhook got %d messages, want 6 (no discovery)", len(hooks))
	}
	for _, r := range hooks {
		if !r.verified {
			t.Error("webhook signature does not verify")
		}
	}
	if len(rec.alerts) != 6 || len(rec.acks) != 1 || len(rec.diary) != 1 { // the six messages sent
		t.Errorf("records: %d alerts %d acks %d diary", len(rec.alerts), len(rec.acks), len(rec.diary))
	}
	if d := rec.diary[0]; !d.Linked || d.EventID != evID("calf_right", 600) {
		t.Errorf("diary record %+v", d)
	}
	for _, c := range []struct {
		metric string
		labels []string
		want   float64
	}{
		{"messages", []string{TypeAlert}, 2},
		{"messages", []string{TypeTENSPrompt}, 1},
		{"acks", []string{ActionOK}, 1},
		{"ackRejects", []string{string(ReasonUnknownID)}, 1},
		{"ackRejects", []string{string(ReasonBadDevice)}, 1},
		{"diaryRej", []string{string(ReasonBadPain)}, 1},
		{"diary", []string{"true"}, 1},
		{"delivery", []string{"mqtt", "ok"}, 6},
		{"delivery", []string{"discovery", "ok"}, 1},
		{"delivery", []string{"webhook", "ok"}, 6},
		{"delivery", []string{"record", "ok"}, 8},
	} {
		var v *prometheus.CounterVec
		switch c.metric {
		case "messages":
			v = e.m.messages
		case "acks":
			v = e.m.acks
		case "ackRejects":
			v = e.m.ackRejects
		case "diaryRej":
			v = e.m.diaryRej
		case "diary":
			v = e.m.diary
		case "delivery":
			v = e.m.delivery
		}
		if got := counterValue(t, v.WithLabelValues(c.labels...)); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.metric, c.labels, got, c.want)
		}
	}
	if n := seriesCount(e.m.latency); n != 4 {
		t.Errorf("latency histogram has %d series, want 4 (alert, escalation, tens_prompt, ended)", n)
	}

	// After Close nothing is taken any more.
	if err := e.HandleAck(dev, []byte(`{"id":"x","action":"ok"}`)); err == nil {
		t.Error("ack accepted after Close")
	}
	e.Event(crampEvent("calf_left", 900))
}

func TestEngineSurvivesFailingPublisher(t *testing.T) {
	pub := &fakePublisher{fail: errors.New("broker down")}
	e, err := NewEngine(testConfig(), Deps{Publisher: pub})
	if err != nil {
		t.Fatal(err)
	}
	feed(e, "calf_left", 0, 20, 0, "")
	if err := e.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := counterValue(t, e.m.delivery.WithLabelValues("mqtt", "error")); got != 2 { // alert, ended
		t.Errorf("mqtt errors %v, want 2", got)
	}
	// Tried in the background and once more at Close, then given up: the
	// next start announces the device again.
	if got := counterValue(t, e.m.delivery.WithLabelValues(channelDiscovery, "error")); got < 1 || got > 2 {
		t.Errorf("discovery errors %v, want 1 or 2", got)
	}
	if got := counterValue(t, e.m.delivery.WithLabelValues(channelDiscovery, "dropped")); got != 1 {
		t.Errorf("discovery dropped %v, want 1", got)
	}
	if got := gaugeValue(t, e.m.discPending); got != 0 {
		t.Errorf("discovery pending %v after Close, want 0", got)
	}
}

// blockingPublisher never returns until its context ends.
type blockingPublisher struct{}

func (blockingPublisher) Publish(ctx context.Context, _ string, _ byte, _ bool, _ []byte) error {
	<-ctx.Done()
	return ctx.Err()
}

func TestEngineNeverBlocksThePipeline(t *testing.T) {
	cfg := testConfig()
	cfg.QueueSize = 2
	cfg.Cooldown = 0
	cfg.MaxPerHour = 1000
	e, err := NewEngine(cfg, Deps{Publisher: blockingPublisher{}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 { // far more messages than the queue holds
		feed(e, "calf_left", float64(i*40), 10, 0, "")
	}
	if got := counterValue(t, e.m.delivery.WithLabelValues("mqtt", "dropped")); got == 0 {
		t.Error("nothing dropped although the publisher is stuck")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := e.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Close: %v, want deadline exceeded", err)
	}
}

func TestNewEngineRejectsBadConfig(t *testing.T) {
	cfg := testConfig()
	cfg.TENS = TENSConfig{Preset: "x", MinMA: 10, MaxMA: 5, MaxDuration: time.Minute}
	if _, err := NewEngine(cfg, Deps{Publisher: &fakePublisher{}}); err == nil {
		t.Error("inverted TENS bounds accepted")
	}
	if _, err := NewEngine(testConfig(), Deps{}); err == nil {
		t.Error("no publisher accepted")
	}
}

func TestDiscoveryPayload(t *testing.T) {
	var c map[string]any
	if err := json.Unmarshal(DiscoveryConfig("crampwatch/v1", "dev1"), &c); err != nil {
		t.Fatal(err)
	}
	if c["state_topic"] != "crampwatch/v1/dev1/alert" || c["unique_id"] != "crampwatch_dev1_cramp_alert" || c["name"] != "Cramp alert" {
		t.Errorf("config %v", c)
	}
	types, _ := c["event_types"].([]any)
	if len(types) != 3 || types[0] != TypeAlert || types[1] != TypeEscalation || types[2] != TypeEnded {
		t.Errorf("event_types %v", types)
	}
	vt, _ := c["value_template"].(string)
	if !strings.Contains(vt, `"event_type": value_json.type`) || !strings.Contains(vt, "to_json") {
		t.Errorf("value_template %q", vt)
	}
	devBlock, _ := c["device"].(map[string]any)
	ids, _ := devBlock["identifiers"].([]any)
	if len(ids) != 1 || ids[0] != "crampwatch_dev1" {
		t.Errorf("device %v", devBlock)
	}
	if got := DiscoveryTopic("homeassistant", "dev1"); got != "homeassistant/event/crampwatch_dev1/cramp_alert/config" {
		t.Errorf("topic %q", got)
	}
}

func BenchmarkEngineEnvelope(b *testing.B) {
	e, err := NewEngine(testConfig(), Deps{Publisher: &fakePublisher{}})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close(context.Background())
	p := detect.Envelope{Device: dev, Channel: chOf("calf_left"), Time: base}
	e.Envelope(p)
	b.ReportAllocs()
	for b.Loop() {
		p.Time = p.Time.Add(100 * time.Millisecond)
		e.Envelope(p)
	}
}

// counterValue reads a counter without prometheus/testutil, whose extra
// dependencies are not in go.mod.
func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func gaugeValue(t *testing.T, g prometheus.Gauge) float64 {
	t.Helper()
	var m dto.Metric
	if err := g.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetGauge().GetValue()
}

func seriesCount(c prometheus.Collector) int {
	ch := make(chan prometheus.Metric, 64)
	c.Collect(ch)
	close(ch)
	return len(ch)
}

package alerts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crampwatch/crampwatch/detect"
	"github.com/crampwatch/crampwatch/ingest"
)

// gatedPublisher holds every publish until release is called, like a broker
// that is slow to acknowledge at a fleet start, and can fail the first few
// discovery publishes. It records the order in which publishes began.
type gatedPublisher struct {
	gate        chan struct{}
	releaseOnce sync.Once

	mu        sync.Mutex
	started   []string // topics, in the order Publish was called
	msgs      []published
	failDisc  int // discovery publishes still to fail
	failAll   bool
	discCalls int
}

func newGatedPublisher(open bool) *gatedPublisher {
	g := &gatedPublisher{gate: make(chan struct{})}
	if open {
		g.release()
	}
	return g
}

func (g *gatedPublisher) release() { g.releaseOnce.Do(func() { close(g.gate) }) }

func (g *gatedPublisher) Publish(ctx context.Context, topic string, qos byte, retained bool, payload []byte) error {
	g.mu.Lock()
	g.started = append(g.started, topic)
	g.mu.Unlock()
	select {
	case <-g.gate:
	case <-ctx.Done():
		return ctx.Err()
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if strings.HasPrefix(topic, "homeassistant/") {
		g.discCalls++
		if g.failDisc > 0 {
			g.failDisc--
			return errors.New("broker went away")
		}
	}
	if g.failAll {
		return errors.New("broker down")
	}
	g.msgs = append(g.msgs, published{topic, qos, retained, append([]byte(nil), payload...)})
	return nil
}

func (g *gatedPublisher) snapshot() (started []string, msgs []published) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.started...), append([]published(nil), g.msgs...)
}

// waitFor polls cond until it holds or 20 s pass; the deadline only catches
// a hang, it is not a speed target.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func fleetDevice(i int) string { return fmt.Sprintf("fleet-%04d", i) }

// TestFleetStartDiscoveryNeverCrowdsOutAlert is the fleet start of the 1000
// device benchmark: every device is seen for the first time in the same
// instant, one of them confirms a cramp in that instant too, and the broker
// is slow to acknowledge. The old engine put 1000 discovery configs in the
// 256-message queue and dropped the alert with most of them.
func TestFleetStartDiscoveryNeverCrowdsOutAlert(t *testing.T) {
	for _, tc := range []struct {
		name      string
		devices   int
		queue     int
		alertDev  int // index of the device that cramps
		failFirst int // discovery publishes that fail before the broker is back
	}{
		{name: "1000 devices, default queue, last device cramps", devices: 1000, queue: 256, alertDev: 999},
		{name: "1000 devices, default queue, first device cramps", devices: 1000, queue: 256, alertDev: 0},
		{name: "1000 devices, queue of one", devices: 1000, queue: 1, alertDev: 500},
		{name: "discovery fails at first and is retried", devices: 300, queue: 256, alertDev: 7, failFirst: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pub := newGatedPublisher(false)
			pub.failDisc = tc.failFirst
			cfg := testConfig()
			cfg.QueueSize = tc.queue
			cfg.HADiscoveryRate = 1e6 // pacing is not under test here; keep it quick
			e, err := NewEngine(cfg, Deps{Publisher: pub, Metrics: NewMetrics(prometheus.NewRegistry())})
			if err != nil {
				t.Fatal(err)
			}
			defer e.Close(context.Background())
			defer pub.release() // before Close, also when the test fails early

			// The same instant: every device's first health report, and the
			// cramp confirmation right after its device's.
			crampDev := fleetDevice(tc.alertDev)
			for i := range tc.devices {
				e.Health(ingest.Health{Device: fleetDevice(i), Time: at(1)})
				if i == tc.alertDev {
					ev := crampEvent("calf_left", 0)
					ev.Device, ev.State, ev.ConfirmedAt, ev.End = crampDev, detect.StateOngoing, at(1), at(1)
					e.Event(ev)
				}
			}
			alertTopic := "crampwatch/v1/" + crampDev + "/alert"
			waitFor(t, "the alert's publish to begin", func() bool {
				if got := counterValue(t, e.m.delivery.WithLabelValues("mqtt", "dropped")); got != 0 {
					t.Fatalf("%v messages dropped from the MQTT queue at the fleet start", got)
				}
				started, _ := pub.snapshot()
				return slicesIndex(started, alertTopic) >= 0
			})
			// At most the one discovery config already in flight began
			// before the alert.
			started, _ := pub.snapshot()
			if i := slicesIndex(started, alertTopic); i > 1 {
				t.Errorf("alert publish began after %d other publishes, want at most 1: %q", i, started[:i])
			}

			pub.release()
			// Every config goes out in the background, before any Close.
			waitFor(t, "every discovery config", func() bool {
				_, msgs := pub.snapshot()
				return len(msgs) == tc.devices+1
			})
			_, msgs := pub.snapshot()
			seen := map[string]int{}
			alerts := 0
			for _, m := range msgs {
				if m.topic == alertTopic {
					var a AlertMessage
					if err := json.Unmarshal(m.payload, &a); err != nil || a.Type != TypeAlert || a.Device != crampDev {
						t.Errorf("alert payload %s (%v)", m.payload, err)
					}
					alerts++
					continue
				}
				seen[m.topic]++
				if !m.retained || m.qos != 1 || !strings.Contains(string(m.payload), `"state_topic":"crampwatch/v1/fleet-`) {
					t.Errorf("discovery %s: retained %v qos %d payload %s", m.topic, m.retained, m.qos, m.payload)
				}
			}
			if alerts != 1 {
				t.Errorf("alert published %d times, want once", alerts)
			}
			for i := range tc.devices {
				topic := DiscoveryTopic("homeassistant", fleetDevice(i))
				if seen[topic] != 1 {
					t.Errorf("%s published %d times, want once", topic, seen[topic])
				}
			}
			for _, c := range []struct {
				channel, result string
				want            float64
			}{
				{"mqtt", "ok", 1},
				{"mqtt", "dropped", 0},
				{channelDiscovery, "ok", float64(tc.devices)},
				{channelDiscovery, "error", float64(tc.failFirst)},
				{channelDiscovery, "dropped", 0},
			} {
				if got := counterValue(t, e.m.delivery.WithLabelValues(c.channel, c.result)); got != c.want {
					t.Errorf("deliveries{%s,%s} = %v, want %v", c.channel, c.result, got, c.want)
				}
			}
			if got := gaugeValue(t, e.m.discPending); got != 0 {
				t.Errorf("discovery pending %v, want 0", got)
			}
		})
	}
}

func slicesIndex(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

// TestCloseFlushesPendingDiscovery: with a rate so low that only the first
// config goes out while the engine runs, Close publishes the rest at once,
// after the wearer's messages; against a dead broker it gives up after one
// failure instead of waiting a publish timeout per device.
func TestCloseFlushesPendingDiscovery(t *testing.T) {
	const devices = 50
	for _, tc := range []struct {
		name        string
		brokerDown  bool
		wantOK      float64
		wantDropped float64
	}{
		{name: "broker up", wantOK: devices},
		{name: "broker down", brokerDown: true, wantDropped: devices},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pub := newGatedPublisher(true)
			pub.failAll = tc.brokerDown
			cfg := testConfig()
			cfg.HADiscoveryRate = 0.001 // one config every 1000 s
			e, err := NewEngine(cfg, Deps{Publisher: pub, Metrics: NewMetrics(prometheus.NewRegistry())})
			if err != nil {
				t.Fatal(err)
			}
			for i := range devices {
				e.Health(ingest.Health{Device: fleetDevice(i), Time: at(1)})
			}
			waitFor(t, "the first discovery publish", func() bool {
				started, _ := pub.snapshot()
				return len(started) == 1
			})
			waitFor(t, "the first discovery publish to finish", func() bool {
				return counterValue(t, e.m.delivery.WithLabelValues(channelDiscovery, "ok"))+
					counterValue(t, e.m.delivery.WithLabelValues(channelDiscovery, "error")) == 1
			})
			// The rate limit (or the retry wait) holds the rest back; a
			// failed config is back in the set.
			wantPending := float64(devices - 1)
			if tc.brokerDown {
				wantPending = devices
			}
			if got := gaugeValue(t, e.m.discPending); got != wantPending {
				t.Errorf("pending %v while running, want %v", got, wantPending)
			}
			ev := crampEvent("calf_left", 0)
			ev.Device, ev.State, ev.ConfirmedAt, ev.End = fleetDevice(3), detect.StateOngoing, at(3), at(3)
			e.Event(ev)

			if err := e.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			ok := counterValue(t, e.m.delivery.WithLabelValues(channelDiscovery, "ok"))
			errs := counterValue(t, e.m.delivery.WithLabelValues(channelDiscovery, "error"))
			dropped := counterValue(t, e.m.delivery.WithLabelValues(channelDiscovery, "dropped"))
			if ok != tc.wantOK || dropped != tc.wantDropped || ok+dropped != devices {
				t.Errorf("discovery ok %v dropped %v, want %v and %v", ok, dropped, tc.wantOK, tc.wantDropped)
			}
			if tc.brokerDown && errs != 2 { // one while running, one at Close
				t.Errorf("discovery errors %v, want 2", errs)
			}
			if got := gaugeValue(t, e.m.discPending); got != 0 {
				t.Errorf("pending %v after Close, want 0", got)
			}
			if tc.brokerDown {
				return
			}
			// The alert decided before Close went out before the flushed configs.
			started, _ := pub.snapshot()
			alertAt := slicesIndex(started, "crampwatch/v1/"+fleetDevice(3)+"/alert")
			if alertAt != 1 || len(started) != devices+1 {
				t.Errorf("alert publish began at %d of %d, want 1 of %d", alertAt, len(started), devices+1)
			}
		})
	}
}

func TestPendingDiscovery(t *testing.T) {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "x"})
	p := newPendingDiscovery(g)
	if _, ok := p.pop(); ok {
		t.Fatal("pop from an empty set")
	}
	for _, d := range []string{"a", "b", "c"} {
		p.push(Notification{Device: d, Type: TypeDiscovery})
	}
	select {
	case <-p.ready:
	default:
		t.Error("push did not signal")
	}
	n, _ := p.pop()
	p.push(n) // a failed publish goes to the back
	var order []string
	for p.len() > 1 {
		n, _ := p.pop()
		order = append(order, n.Device)
	}
	if strings.Join(order, "") != "bc" || gaugeValue(t, g) != 1 {
		t.Errorf("order %q gauge %v, want bc and 1", order, gaugeValue(t, g))
	}
	if n := p.clear(); n != 1 || p.len() != 0 || gaugeValue(t, g) != 0 {
		t.Errorf("clear %d, left %d, gauge %v", n, p.len(), gaugeValue(t, g))
	}
}

func TestDiscoveryPacing(t *testing.T) {
	for _, tc := range []struct {
		rate float64
		want time.Duration
	}{
		{100, 10 * time.Millisecond},
		{0.5, 2 * time.Second},
		{1e12, 0},
		{1e-9, time.Hour}, // capped, not overflowed
	} {
		if got := rateInterval(tc.rate); got != tc.want {
			t.Errorf("rateInterval(%v) = %v, want %v", tc.rate, got, tc.want)
		}
	}
	var waits []time.Duration
	d := time.Duration(0)
	for range 9 {
		d = nextRetry(d)
		waits = append(waits, d)
	}
	want := []time.Duration{1, 2, 4, 8, 16, 32, 60, 60, 60}
	for i := range want {
		if waits[i] != want[i]*time.Second {
			t.Errorf("retry waits %v, want doubling from 1 s to 60 s", waits)
			break
		}
	}
}

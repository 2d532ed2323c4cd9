package mqttclient

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/crampwatch/crampwatch/ingest"
	"github.com/crampwatch/crampwatch/wire"
)

// frameLog is an ingest.Handler that records EMG sequence numbers and gaps.
type frameLog struct {
	mu  sync.Mutex
	log []string
}

func (f *frameLog) add(s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.log = append(f.log, s)
}
func (f *frameLog) EMG(d string, fr *wire.EMGFrame)  { f.add(fmt.Sprintf("%s:%d", d, fr.Seq)) }
func (f *frameLog) IMU(string, *wire.IMUFrame)       {}
func (f *frameLog) Status(string, *wire.StatusFrame) {}
func (f *frameLog) Gap(d string, _ wire.Stream, lost int, _, _ int64) {
	f.add(fmt.Sprintf("%s:gap%d", d, lost))
}
func (f *frameLog) Health(ingest.Health) {}

// TestFramesThroughBrokerToRouter is the service's inbound path in small:
// device frames (one redelivered) over a broker to the ingest router.
func TestFramesThroughBrokerToRouter(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0")
	h := &frameLog{}
	r := ingest.NewRouter(ingest.Config{}, h, nil, nil)
	var routed atomic.Int64
	connect(t, Config{URL: b.url, ClientID: "svc", CleanSession: true},
		Subscription{Filter: wire.DefaultPrefix + "/+/emg", QoS: 1, Handler: func(topic string, payload []byte) {
			if err := r.Handle(topic, payload); err != nil {
				t.Errorf("Handle: %v", err)
			}
			routed.Add(1)
		}})
	dev := connect(t, Config{URL: b.url, ClientID: "dev", CleanSession: true})
	const t0 = 1_763_942_400_000_000
	seqs := []uint32{0, 1, 2, 2, 3, 5, 6}
	for _, seq := range seqs {
		f := &wire.EMGFrame{Seq: seq, T0: t0 + int64(seq)*100_000, Rate: 1000, Unit: wire.Microvolt,
			Channels: []wire.Channel{{Muscle: wire.Calf, Side: wire.Left}}, Data: [][]float64{make([]float64, 100)}}
		p, err := wire.AppendEMGBinary(nil, f)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), waitLong)
		err = dev.Publish(ctx, wire.Topic(wire.DefaultPrefix, "leg-1", wire.StreamEMG), 1, false, p)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "every message handed to the router", func() bool { return routed.Load() == int64(len(seqs)) })
	r.Close() // releases frames 5 and 6, held while waiting for 4
	want := "leg-1:0 leg-1:1 leg-1:2 leg-1:3 leg-1:gap1 leg-1:5 leg-1:6"
	if got := strings.Join(h.log, " "); got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/crampwatch/crampwatch/detect"
	"github.com/crampwatch/crampwatch/ingest"
	"github.com/crampwatch/crampwatch/internal/testenv"
	"github.com/crampwatch/crampwatch/mqttclient"
	"github.com/crampwatch/crampwatch/wire"
)

// floodSink counts envelope points and gap artifacts per device.
type floodSink struct {
	mu       sync.Mutex
	envelope map[string]int
	gaps     map[string]int
}

func newFloodSink() *floodSink {
	return &floodSink{envelope: map[string]int{}, gaps: map[string]int{}}
}

func (c *floodSink) Event(e detect.Event) {
	if e.Kind == detect.KindArtifact && e.Cause == detect.CauseGap {
		c.mu.Lock()
		c.gaps[e.Device]++
		c.mu.Unlock()
	}
}
func (c *floodSink) Envelope(e detect.Envelope) {
	c.mu.Lock()
	c.envelope[e.Device]++
	c.mu.Unlock()
}
func (c *floodSink) Motion(detect.Motion)        {}
func (c *floodSink) Health(ingest.Health)        {}
func (c *floodSink) Close(context.Context) error { return nil }

func (c *floodSink) get(device string) (envelope, gaps int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.envelope[device], c.gaps[device]
}

// TestFloodThroughBroker: through real Mosquitto and the serve code path,
// one device floods at 100 times its rate (1000 EMG frames a second
// instead of 10, sample time racing ahead of the clock) while another
// sends at its rate. Every frame of the well-behaved device is processed
// (one envelope point per 100 ms frame, no gap); the flood is rate limited
// and counted; nothing is dropped on the queues.
func TestFloodThroughBroker(t *testing.T) {
	mqttURL := testenv.Mosquitto(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg := defaultServeConfig()
	cfg.mqtt.URL = mqttURL
	cfg.mqtt.ClientID = fmt.Sprintf("crampwatch-flood-%d", os.Getpid())
	cfg.httpAddr = "127.0.0.1:0"
	cfg.journalPath = filepath.Join(t.TempDir(), "journal.jsonl")
	if err := cfg.load(); err != nil {
		t.Fatal(err)
	}
	reg := newRegistry()
	sink := newFloodSink()
	svc, err := startService(ctx, cfg, quietLog(), reg, sink)
	if err != nil {
		t.Fatal(err)
	}
	defer svc.stop(context.Background(), false)

	connect := func(id string) *mqttclient.Client {
		c, err := mqttclient.Connect(ctx, mqttclient.Config{URL: mqttURL, ClientID: fmt.Sprintf("%s-%d", id, os.Getpid()), CleanSession: true}, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close(time.Second) })
		return c
	}
	good, bad := fmt.Sprintf("fg%d-good", os.Getpid()%100000), fmt.Sprintf("fg%d-flood", os.Getpid()%100000)
	goodPub, floodPub := connect("flood-good"), connect("flood-bad")
	frame := func(seq uint32, t0 int64) []byte {
		f := &wire.EMGFrame{Seq: seq, T0: t0, Rate: 1000, Unit: wire.Microvolt,
			Channels: []wire.Channel{{Muscle: wire.Calf, Side: wire.Left}}, Data: [][]float64{make([]float64, 100)}}
		for i := range f.Data[0] {
			f.Data[0][i] = 3 * math.Sin(float64(seq*100+uint32(i)))
		}
		return wire.AppendEMGJSON(nil, f)
	}

	const seconds = 4
	start := time.Now()
	t0 := start.UnixMicro()
	var wg sync.WaitGroup
	var flooded int
	wg.Go(func() {
		// 100 x 10 frames a second: 10 every 10 ms.
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		seq := uint32(0)
		for time.Since(start) < seconds*time.Second && ctx.Err() == nil {
			<-tick.C
			for range 10 {
				seq++
				if err := floodPub.Publish(ctx, wire.Topic(wire.DefaultPrefix, bad, wire.StreamEMG), 1, false, frame(seq, t0+int64(seq)*100_000)); err != nil {
					t.Errorf("flood publish: %v", err)
					return
				}
			}
		}
		flooded = int(seq)
	})
	var sent int
	wg.Go(func() {
		for seq := uint32(1); seq <= seconds*10; seq++ {
			// Real time: frame seq covers [t0+(seq-1)*100ms, t0+seq*100ms)
			// and is sent when it is complete.
			time.Sleep(time.Until(start.Add(time.Duration(seq) * 100 * time.Millisecond)))
			if err := goodPub.Publish(ctx, wire.Topic(wire.DefaultPrefix, good, wire.StreamEMG), 1, false, frame(seq, t0+int64(seq-1)*100_000)); err != nil {
				t.Errorf("publish: %v", err)
				return
			}
			sent++
		}
	})
	wg.Wait()
	waitUntil(ctx, t, "the well-behaved device's frames", func() bool {
		n, _ := sink.get(good)
		return n >= sent
	})
	time.Sleep(200 * time.Millisecond)
	if n, gaps := sink.get(good); n != sent || gaps != 0 {
		t.Errorf("well-behaved device: %d envelope points for %d frames, %d gaps; want one per frame, no gap", n, sent, gaps)
	}
	limited := counterSum(t, reg, "crampwatch_ingest_rejected_total", "reason", "rate_limited")
	// The flooder may have its burst and the rate for the time it flooded.
	allowed := float64(ingest.DefaultDeviceBurstS*ingest.DefaultDeviceRate) + ingest.DefaultDeviceRate*time.Since(start).Seconds()
	if limited < float64(flooded)-allowed-50 {
		t.Errorf("%v of the flooder's %d frames rate limited, want all but %.0f", limited, flooded, allowed)
	}
	if dropped := counterSum(t, reg, "crampwatch_ingest_queue_dropped_total", "", ""); dropped != 0 {
		t.Errorf("%v messages dropped on full queues", dropped)
	}
	t.Logf("well-behaved: %d frames, all processed; flooder: %d frames, %v rate limited", sent, flooded, limited)
}

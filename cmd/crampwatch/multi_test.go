package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crampwatch/crampwatch/detect"
	firmwaresim "github.com/crampwatch/crampwatch/firmware-sim"
	"github.com/crampwatch/crampwatch/ingest"
	"github.com/crampwatch/crampwatch/internal/testenv"
	"github.com/crampwatch/crampwatch/mqttclient"
	"github.com/crampwatch/crampwatch/pipeline"
	"github.com/crampwatch/crampwatch/wire"
)

// TestMultiInstancePartitions runs three instances against one real
// Mosquitto, each owning a fixed set of partitions of the device registry,
// while the simulator publishes every device's night. It checks that every
// device's frames are handled by exactly one instance, the one owning its
// partition; then it stops one instance while the devices go on sending,
// starts it again with the same client id and partitions, and checks that
// its devices are handled again, by it alone, with every frame published
// while it was down delivered from its persistent session: no frame of any
// device is lost.
func TestMultiInstancePartitions(t *testing.T) {
	mqttURL := testenv.Mosquitto(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	sc := firmwaresim.DefaultScenario().WithHours(50.0 / 3600)
	sc.Encoding = "binary"
	// Transport faults off: every frame the simulator publishes must arrive.
	sc.Transport.LossProb, sc.Transport.DupProb, sc.Artifacts.GapsPerNight = 0, 0, 0
	run := firmwaresim.RunConfig{
		Prefix: multiPrefix, Devices: 16, DevicePrefix: "part-",
		Seed: 7, Speed: 5, Scenario: sc,
	}
	var ids []string
	for i := range run.Devices {
		ids = append(ids, run.DeviceID(i))
	}
	registry := filepath.Join(t.TempDir(), "devices.txt")
	if err := os.WriteFile(registry, []byte(strings.Join(ids, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	const partitions = 8
	specs := []string{"0-2", "3-5", "6-7"}
	parts := make([]partitioning, len(specs))
	owner := map[string]int{} // device -> instance that owns its partition
	for i, spec := range specs {
		parts[i] = partitioning{count: partitions, spec: spec, devicesFile: registry}
		if err := parts[i].load(""); err != nil {
			t.Fatal(err)
		}
		if len(parts[i].devices) == 0 {
			t.Fatalf("instance %d (partitions %s) owns none of the %d devices: choose other ids", i, spec, len(ids))
		}
		for _, d := range parts[i].devices {
			owner[d] = i
		}
	}

	led := newLedger()
	// Fixed device ids keep the split deterministic; client ids are unique
	// per run so no session of an earlier run is resumed.
	session := time.Now().UnixNano()
	clientID := func(i int) string { return fmt.Sprintf("multi-%d-instance-%d", session, i) }
	insts := make([]*partInstance, len(specs))
	for i := range specs {
		insts[i] = startPartInstance(ctx, t, mqttURL, clientID(i), &parts[i], led, i, 1, log)
	}

	pubClient, err := mqttclient.Connect(ctx, mqttclient.Config{URL: mqttURL, ClientID: fmt.Sprintf("multi-%d-sim", session), CleanSession: true}, log)
	if err != nil {
		t.Fatal(err)
	}
	defer pubClient.Close(time.Second)
	pub := &countingPublisher{pub: pubClient, prefix: run.Prefix, n: map[streamKey]int{}}
	simDone := make(chan error, 1)
	go func() { _, err := firmwaresim.Run(ctx, run, pub); simDone <- err }()

	// Let instance 1 handle a second of each of its devices' data, stop it,
	// let its devices send on for two seconds of sample time, start it again.
	const restarted = 1
	mine := parts[restarted].devices
	waitFor(ctx, t, "instance 1 handling its devices", func() bool {
		return led.minHandled(mine, wire.StreamEMG, restarted, 1) >= 10
	})
	insts[restarted].stop(ctx, t)
	atStop := pub.minCount(mine, wire.StreamEMG)
	waitFor(ctx, t, "devices publishing while instance 1 is down", func() bool {
		return pub.minCount(mine, wire.StreamEMG) >= atStop+20
	})
	handledBefore := led.handledBy(mine, restarted, 1)
	insts[restarted] = startPartInstance(ctx, t, mqttURL, clientID(restarted), &parts[restarted], led, restarted, 2, log)

	if err := <-simDone; err != nil {
		t.Fatalf("simulator: %v", err)
	}
	// Everything was published; what is still missing after this grace
	// period was lost.
	drain, cancelDrain := context.WithTimeout(ctx, 30*time.Second)
	defer cancelDrain()
	for led.missing(pub.snapshot()) > 0 && drain.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	for _, in := range insts {
		in.stop(ctx, t)
	}

	published := pub.snapshot()
	if n := led.missing(published); n != 0 {
		t.Errorf("%d published frames never handled", n)
	}
	for _, d := range ids {
		handlers := led.instancesOf(d)
		if len(handlers) != 1 || handlers[0] != owner[d] {
			t.Errorf("device %s (partition %d) handled by instances %v, want only %d", d, partitionOf(d, partitions), handlers, owner[d])
		}
		if n := published[streamKey{d, wire.StreamEMG}]; n == 0 {
			t.Errorf("device %s published no EMG frames", d)
		}
	}
	// The restarted instance got its devices back: frames published while it
	// was down, which only it subscribes to, came from its persistent session.
	if got := led.handledBy(mine, restarted, 2); got == 0 {
		t.Errorf("restarted instance handled no frames of its %d devices", len(mine))
	}
	var total int
	for _, d := range mine {
		total += published[streamKey{d, wire.StreamEMG}] + published[streamKey{d, wire.StreamIMU}]
	}
	if got := led.handledBy(mine, restarted, 2); got < total-handledBefore {
		t.Errorf("restarted instance handled %d frames; %d of %d were left after its first run", got, total-handledBefore, total)
	}
	for i, in := range insts {
		if in.sink.envelopes() == 0 {
			t.Errorf("instance %d: its detectors produced no envelope points", i)
		}
	}
	t.Logf("devices per instance: %d %d %d; frames published %d, duplicates across the restart %d",
		len(parts[0].devices), len(parts[1].devices), len(parts[2].devices), pub.total(), led.duplicates())
}

// multiPrefix is the test's own topic prefix: the simulator's retained
// status messages must not reach other tests sharing the broker.
const multiPrefix = "multi-test/v1"

// waitFor polls cond until it holds, failing the test when ctx ends first.
func waitFor(ctx context.Context, t *testing.T, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// partInstance is one service instance reduced to its data path: the MQTT
// subscriber with the partition's subscriptions (as serve makes them),
// ingest, and the pipeline with a real detector per device.
type partInstance struct {
	sub    *mqttclient.Client
	router *ingest.Router
	pipe   *pipeline.Pipeline
	sink   *countSink
}

func startPartInstance(ctx context.Context, t *testing.T, url, clientID string, p *partitioning, led *ledger, id, incarnation int, log *slog.Logger) *partInstance {
	t.Helper()
	in := &partInstance{sink: &countSink{}}
	in.pipe = pipeline.New(detect.DefaultConfig(), nil, log, in.sink)
	rec := &ledgerHandler{Pipeline: in.pipe, led: led, instance: id, incarnation: incarnation}
	// Ingest as serve configures it (backpressure to the broker when a
	// restart's backlog arrives), except for the per-device rate limit:
	// the simulator runs five times faster than real devices.
	icfg := defaultServeConfig().ingest
	icfg.Prefix, icfg.DeviceRate = multiPrefix, -1
	in.router = ingest.NewRouter(icfg, rec, nil, log)
	route := func(topic string, payload []byte) { in.router.Handle(topic, payload) }
	subs := p.subscriptions(multiPrefix, "",
		streamHandler{wire.StreamEMG, route}, streamHandler{wire.StreamIMU, route}, streamHandler{wire.StreamStatus, route})
	var err error
	// A persistent session (clean session off, stable client id) keeps the
	// partition's messages at the broker while the instance is away.
	in.sub, err = mqttclient.Connect(ctx, mqttclient.Config{URL: url, ClientID: clientID}, log, subs...)
	if err != nil {
		t.Fatalf("instance %d: %v", id, err)
	}
	return in
}

// stop shuts the instance down as serve does on SIGTERM: no more frames,
// drain ingest, flush the sinks; open events are not ended.
func (in *partInstance) stop(ctx context.Context, t *testing.T) {
	in.sub.Close(250 * time.Millisecond)
	in.router.Close()
	if err := in.pipe.Close(ctx); err != nil {
		t.Errorf("pipeline close: %v", err)
	}
}

// streamKey is one device stream.
type streamKey struct {
	device string
	stream wire.Stream
}

// frameKey is one frame of a device stream.
type frameKey struct {
	streamKey
	seq uint32
}

// handler is one incarnation of one instance.
type handler struct{ instance, incarnation int }

// ledger records every frame handed to a detector and by whom.
type ledger struct {
	mu     sync.Mutex
	frames map[frameKey][]handler
}

func newLedger() *ledger { return &ledger{frames: map[frameKey][]handler{}} }

func (l *ledger) record(device string, s wire.Stream, seq uint32, h handler) {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := frameKey{streamKey{device, s}, seq}
	l.frames[k] = append(l.frames[k], h)
}

// minHandled returns the fewest frames of stream s that an incarnation of
// an instance handled for any of devices.
func (l *ledger) minHandled(devices []string, s wire.Stream, instance, incarnation int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := map[string]int{}
	for k, hs := range l.frames {
		if k.stream == s && contains(hs, handler{instance, incarnation}) {
			n[k.device]++
		}
	}
	least := -1
	for _, d := range devices {
		if least < 0 || n[d] < least {
			least = n[d]
		}
	}
	return least
}

// handledBy counts EMG and IMU frames of devices handled by an incarnation.
func (l *ledger) handledBy(devices []string, instance, incarnation int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	var n int
	for k, hs := range l.frames {
		if contains(hs, handler{instance, incarnation}) && containsString(devices, k.device) {
			n++
		}
	}
	return n
}

// instancesOf returns the instances (whatever the incarnation) that handled
// any frame of device.
func (l *ledger) instancesOf(device string) []int {
	l.mu.Lock()
	defer l.mu.Unlock()
	seen := map[int]bool{}
	var out []int
	for k, hs := range l.frames {
		if k.device != device {
			continue
		}
		for _, h := range hs {
			if !seen[h.instance] {
				seen[h.instance] = true
				out = append(out, h.instance)
			}
		}
	}
	return out
}

// missing returns how many published frames no instance has handled: for
// each stream, the published count minus the distinct sequence numbers seen.
func (l *ledger) missing(published map[streamKey]int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	seen := map[streamKey]int{}
	for k := range l.frames {
		seen[k.streamKey]++
	}
	var n int
	for k, p := range published {
		n += max(p-seen[k], 0)
	}
	return n
}

// duplicates counts frames handled more than once (QoS 1 redelivery of
// messages not yet acknowledged when an instance stopped).
func (l *ledger) duplicates() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	var n int
	for _, hs := range l.frames {
		n += len(hs) - 1
	}
	return n
}

func contains(hs []handler, h handler) bool {
	for _, x := range hs {
		if x == h {
			return true
		}
	}
	return false
}

func containsString(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// ledgerHandler records each frame in the ledger and passes it on to the
// pipeline.
type ledgerHandler struct {
	*pipeline.Pipeline
	led                   *ledger
	instance, incarnation int
}

func (h *ledgerHandler) EMG(device string, f *wire.EMGFrame) {
	h.led.record(device, wire.StreamEMG, f.Seq, handler{h.instance, h.incarnation})
	h.Pipeline.EMG(device, f)
}

func (h *ledgerHandler) IMU(device string, f *wire.IMUFrame) {
	h.led.record(device, wire.StreamIMU, f.Seq, handler{h.instance, h.incarnation})
	h.Pipeline.IMU(device, f)
}

// countingPublisher counts the EMG and IMU frames the simulator published
// successfully, per device stream.
type countingPublisher struct {
	pub    firmwaresim.Publisher
	prefix string
	mu     sync.Mutex
	n      map[streamKey]int
}

func (p *countingPublisher) Publish(ctx context.Context, topic string, qos byte, retained bool, payload []byte) error {
	if err := p.pub.Publish(ctx, topic, qos, retained, payload); err != nil {
		return err
	}
	device, s, err := wire.ParseTopic(p.prefix, topic)
	if err == nil && (s == wire.StreamEMG || s == wire.StreamIMU) {
		p.mu.Lock()
		p.n[streamKey{device, s}]++
		p.mu.Unlock()
	}
	return nil
}

func (p *countingPublisher) minCount(devices []string, s wire.Stream) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	least := -1
	for _, d := range devices {
		if n := p.n[streamKey{d, s}]; least < 0 || n < least {
			least = n
		}
	}
	return least
}

func (p *countingPublisher) snapshot() map[streamKey]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[streamKey]int, len(p.n))
	for k, v := range p.n {
		out[k] = v
	}
	return out
}

func (p *countingPublisher) total() int {
	var n int
	for _, v := range p.snapshot() {
		n += v
	}
	return n
}

// countSink counts the envelope points the detectors produce.
type countSink struct {
	mu sync.Mutex
	n  int
}

func (s *countSink) Event(detect.Event) {}
func (s *countSink) Envelope(detect.Envelope) {
	s.mu.Lock()
	s.n++
	s.mu.Unlock()
}
func (s *countSink) Motion(detect.Motion)            {}
func (s *countSink) Health(ingest.Health)            {}
func (s *countSink) Close(ctx context.Context) error { return nil }

func (s *countSink) envelopes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

// TestServePartitions runs two complete services (startService, as "serve"
// runs it, with --partitions, --partition and --devices-file) against one
// real Mosquitto and checks that each device's detector output comes from
// the instance owning its partition, and only from it.
func TestServePartitions(t *testing.T) {
	mqttURL := testenv.Mosquitto(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	const prefix = "serve-part/v1"

	sc := firmwaresim.DefaultScenario().WithHours(20.0 / 3600)
	sc.Encoding = "binary"
	run := firmwaresim.RunConfig{Prefix: prefix, Devices: 8, DevicePrefix: "sp-", Seed: 5, Speed: 5, Scenario: sc}
	var ids []string
	for i := range run.Devices {
		ids = append(ids, run.DeviceID(i))
	}
	dir := t.TempDir()
	registry := filepath.Join(dir, "devices.txt")
	if err := os.WriteFile(registry, []byte(strings.Join(ids, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	session := time.Now().UnixNano()
	specs := []string{"0-1", "2-3"}
	sinks := make([]*deviceSink, len(specs))
	svcs := make([]*service, len(specs))
	owner := map[string]int{}
	for i, spec := range specs {
		cfg := defaultServeConfig()
		cfg.mqtt.URL = mqttURL
		cfg.mqtt.ClientID = fmt.Sprintf("serve-part-%d-%d", session, i)
		cfg.httpAddr = "127.0.0.1:0"
		cfg.journalPath = filepath.Join(dir, fmt.Sprintf("journal-%d.jsonl", i))
		cfg.prefix = prefix
		cfg.partition = partitioning{count: 4, spec: spec, devicesFile: registry}
		cfg.ingest.DeviceRate = -1 // the simulator runs five times faster than devices
		if err := cfg.load(); err != nil {
			t.Fatal(err)
		}
		if len(cfg.partition.devices) == 0 {
			t.Fatalf("instance %d (partitions %s) owns none of the devices: choose other ids", i, spec)
		}
		for _, d := range cfg.partition.devices {
			owner[d] = i
		}
		sinks[i] = &deviceSink{seen: map[string]int{}}
		svc, err := startService(ctx, cfg, log, newRegistry(), sinks[i])
		if err != nil {
			t.Fatal(err)
		}
		svcs[i] = svc
	}

	pub, err := mqttclient.Connect(ctx, mqttclient.Config{URL: mqttURL, ClientID: fmt.Sprintf("serve-part-%d-sim", session), CleanSession: true}, log)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close(time.Second)
	if _, err := firmwaresim.Run(ctx, run, pub); err != nil {
		t.Fatalf("simulator: %v", err)
	}
	waitFor(ctx, t, "every device's envelope points", func() bool {
		for _, d := range ids {
			if sinks[owner[d]].count(d) < 100 {
				return false
			}
		}
		return true
	})
	for _, svc := range svcs {
		if err := svc.stop(ctx, false); err != nil {
			t.Errorf("stop: %v", err)
		}
	}
	for _, d := range ids {
		for i, s := range sinks {
			if n := s.count(d); i != owner[d] && n > 0 {
				t.Errorf("device %s (owner %d) has %d envelope points from instance %d", d, owner[d], n, i)
			}
		}
	}
}

// deviceSink counts envelope points per device.
type deviceSink struct {
	mu   sync.Mutex
	seen map[string]int
}

func (s *deviceSink) Event(detect.Event) {}
func (s *deviceSink) Envelope(e detect.Envelope) {
	s.mu.Lock()
	s.seen[e.Device]++
	s.mu.Unlock()
}
func (s *deviceSink) Motion(detect.Motion)        {}
func (s *deviceSink) Health(ingest.Health)        {}
func (s *deviceSink) Close(context.Context) error { return nil }

func (s *deviceSink) count(device string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seen[device]
}

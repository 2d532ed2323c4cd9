package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crampwatch/crampwatch/alerts"
	"github.com/crampwatch/crampwatch/detect"
	"github.com/crampwatch/crampwatch/evaluate"
	firmwaresim "github.com/crampwatch/crampwatch/firmware-sim"
	"github.com/crampwatch/crampwatch/internal/testenv"
	"github.com/crampwatch/crampwatch/mqttclient"
	"github.com/crampwatch/crampwatch/wire"
)

// outageNight is the night the outage tests simulate: half an hour with a
// cramp every five minutes, long enough to be cut in two, and no frame lost
// on purpose, so that every frame the service misses is a real loss.
func outageNight(t *testing.T, mqttURL string, devices int) firmwaresim.RunConfig {
	t.Helper()
	sc := firmwaresim.DefaultScenario().WithHours(0.5)
	sc.Encoding = "binary"
	sc.Cramps.PerNight = 0
	sc.Cramps.EveryS = 300
	sc.Cramps.DurationS = firmwaresim.Range{40, 100}
	sc.Transport.LossProb = 0
	sc.Transport.DupProb = 0
	sc.Artifacts.GapsPerNight = 0
	// In the past, as a night replayed at speed: the service sees it as a
	// backlog, which the per-device rate limit lets through.
	start := time.Now().Add(-48 * time.Hour).UTC().Truncate(time.Hour)
	return firmwaresim.RunConfig{Devices: devices, Seed: 7, Speed: 100, Start: start, Scenario: sc,
		DevicePrefix: fmt.Sprintf("o%d-", os.Getpid()%100000)}
}

// outageService is the serve configuration of the outage tests.
func outageService(t *testing.T, mqttURL, clientID, stateDir string) serveConfig {
	t.Helper()
	cfg := defaultServeConfig()
	cfg.mqtt.URL = mqttURL
	cfg.mqtt.ClientID = clientID
	cfg.mqtt.MaxReconnectInterval = time.Second
	cfg.httpAddr = "127.0.0.1:0"
	cfg.journalPath = filepath.Join(t.TempDir(), "journal.jsonl")
	cfg.stateDir = stateDir
	if err := cfg.load(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func quietLog() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
}

// midCramp picks a truth cramp of device 0 long enough to be interrupted,
// and returns it with the sample time halfway through it.
func midCramp(t *testing.T, run firmwaresim.RunConfig) (firmwaresim.Truth, time.Time) {
	t.Helper()
	for _, tr := range run.Device(0).Truth() {
		if tr.Kind == "cramp" && tr.Duration() >= 40*time.Second && tr.Onset.Sub(run.Start) > 3*time.Minute {
			return tr, tr.Onset.Add(tr.Duration() / 2)
		}
	}
	t.Fatal("the scenario has no long cramp on device 0")
	return firmwaresim.Truth{}, time.Time{}
}

// waitSample waits until the sink has seen device's envelope reach at.
func waitSample(ctx context.Context, t *testing.T, c *consoleSink, device string, at time.Time) {
	t.Helper()
	waitDevices(ctx, t, c, []string{device}, at)
}

// startSimulator connects a publisher with cfg and publishes run through it
// in the background. The channel yields Run's error; once it has, stats
// holds Run's figures. The caller closes the publisher.
func startSimulator(ctx context.Context, t *testing.T, cfg mqttclient.Config, run firmwaresim.RunConfig) (*mqttclient.Client, *firmwaresim.Stats, <-chan error) {
	t.Helper()
	pub, err := mqttclient.Connect(ctx, cfg, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	stats := new(firmwaresim.Stats)
	done := make(chan error, 1)
	go func() {
		var err error
		*stats, err = firmwaresim.Run(ctx, run, pub)
		done <- err
	}()
	return pub, stats, done
}

// waitNightEnd waits until the sink has seen every device of run reach
// the end of its night (less 2 s: the last frames may be lost on purpose).
func waitNightEnd(ctx context.Context, t *testing.T, c *consoleSink, run firmwaresim.RunConfig) {
	t.Helper()
	ids := make([]string, run.Devices)
	for i := range ids {
		ids[i] = run.DeviceID(i)
	}
	nightEnd := run.Start.Add(time.Duration(run.Scenario.Hours * float64(time.Hour))).Add(-2 * time.Second)
	waitDevices(ctx, t, c, ids, nightEnd)
}

func waitDevices(ctx context.Context, t *testing.T, c *consoleSink, devices []string, at time.Time) {
	t.Helper()
	for !c.caughtUp(devices, at) {
		select {
		case <-ctx.Done():
			t.Fatalf("the service never reached sample time %s of %v", at.Format(time.TimeOnly), devices)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// checkCramps fails t unless every truth cramp is detected, each detected
// cramp is reported at most once ongoing and once ended, every ongoing
// report is ended, and no truth cramp is covered by two detections. It
// returns the detected cramps by ID, ended reports only.
func checkCramps(t *testing.T, run firmwaresim.RunConfig, events []detect.Event) map[string]detect.Event {
	t.Helper()
	var truth []firmwaresim.Truth
	for i := range run.Devices {
		truth = append(truth, run.Device(i).Truth()...)
	}
	reports := map[string]map[detect.State]int{}
	ended := map[string]detect.Event{}
	for _, e := range events {
		if e.Kind != detect.KindCramp {
			continue
		}
		if reports[e.ID()] == nil {
			reports[e.ID()] = map[detect.State]int{}
		}
		reports[e.ID()][e.State]++
		if e.State == detect.StateEnded {
			ended[e.ID()] = e
		}
	}
	for id, n := range reports {
		if n[detect.StateOngoing] > 1 || n[detect.StateEnded] != 1 {
			t.Errorf("cramp %s reported %d times ongoing and %d times ended, want at most 1 and 1", id, n[detect.StateOngoing], n[detect.StateEnded])
		}
	}
	r := evaluate.Match(truth, events, evaluate.MatchOptions{MaxDetails: -1})
	if r.CrampsDetected != r.Cramps || r.Cramps == 0 {
		t.Errorf("%d of %d truth cramps detected", r.CrampsDetected, r.Cramps)
	}
	for _, tr := range truth {
		if tr.Kind != "cramp" {
			continue
		}
		var covering []string
		for id, e := range ended {
			if e.Device == tr.Device && e.Channel.Side.String() == tr.Side && e.Onset.Before(tr.End) && e.End.After(tr.Onset) {
				covering = append(covering, id)
			}
		}
		if len(covering) > 1 {
			t.Errorf("truth cramp %s %s at %s reported as %d cramps: %v", tr.Device, tr.Side, tr.Onset.Format(time.TimeOnly), len(covering), covering)
		}
	}
	t.Logf("%d truth cramps, %d detected, %d distinct detections, %d false alerts", r.Cramps, r.CrampsDetected, r.CrampDetections, r.FalseAlerts)
	return ended
}

// checkSpanning fails t unless the truth cramp tr is one detection whose
// ongoing report came from the first run and ended report from the second,
// with the truth's onset and duration.
func checkSpanning(t *testing.T, tr firmwaresim.Truth, first, second []detect.Event) {
	t.Helper()
	var ongoing *detect.Event
	for i, e := range first {
		if e.Kind == detect.KindCramp && e.Device == tr.Device && e.Channel.Side.String() == tr.Side &&
			e.State == detect.StateOngoing && math.Abs(e.Onset.Sub(tr.Onset).Seconds()) < 1.5 {
			ongoing = &first[i]
		}
	}
	if ongoing == nil {
		t.Fatalf("the first run did not report the cramp at %s as ongoing", tr.Onset.Format(time.TimeOnly))
	}
	for _, e := range second {
		if e.Kind != detect.KindCramp || e.ID() != ongoing.ID() {
			continue
		}
		if e.State != detect.StateEnded {
			t.Errorf("the second run reported the cramp at %s as %s again", tr.Onset.Format(time.TimeOnly), e.State)
			continue
		}
		if d := math.Abs(e.DurationS - tr.Duration().Seconds()); d > 3 {
			t.Errorf("cramp across the restart: duration %.1f s, truth %.1f s", e.DurationS, tr.Duration().Seconds())
		}
		return
	}
	t.Errorf("the second run never ended the cramp %s", ongoing.ID())
}

// counterSum sums the counter name over the series with label=value, or
// over all of its series when label is empty.
func counterSum(t *testing.T, g prometheus.Gatherer, name, label, value string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if label == "" || hasLabel(m, label, value) {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

// ingestFigures sums the ingest counters of one service's registry.
func ingestFigures(t *testing.T, reg prometheus.Gatherer) soakFigures {
	t.Helper()
	return gatherSoak(reg)
}

// TestServiceRestartMidCramp stops the service (as serve does on SIGTERM)
// in the middle of a cramp while the simulator goes on publishing, starts a
// new one with the same client id and state directory, and checks that the
// frames published meanwhile reach it, no cramp is missed, none is reported
// twice, and the interrupted cramp keeps its onset and gets its whole
// duration.
func TestServiceRestartMidCramp(t *testing.T) {
	ms, err := testenv.StartMosquitto(testenv.MosquittoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer ms.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	run := outageNight(t, ms.URL, 3)
	tr, stopAt := midCramp(t, run)
	stateDir := t.TempDir()
	cfg := outageService(t, ms.URL, "crampwatch-restart-test", stateDir)

	regA := newRegistry()
	sinkA := newConsoleSink(io.Discard)
	svcA, err := startService(ctx, cfg, quietLog(), regA, sinkA)
	if err != nil {
		t.Fatal(err)
	}
	pub, stats, simDone := startSimulator(ctx, t, mqttclient.Config{URL: ms.URL, ClientID: "restart-sim", CleanSession: true}, run)
	defer pub.Close(time.Second)

	waitSample(ctx, t, sinkA, tr.Device, stopAt)
	if err := svcA.stop(ctx, false); err != nil {
		t.Fatalf("stop: %v", err)
	}
	states, _ := filepath.Glob(filepath.Join(stateDir, "*.json"))
	if len(states) != run.Devices {
		t.Fatalf("%d state files after stop, want %d", len(states), run.Devices)
	}
	time.Sleep(2 * time.Second) // a couple of minutes of sample time wait at the broker

	regB := newRegistry()
	sinkB := newConsoleSink(io.Discard)
	svcB, err := startService(ctx, cfg, quietLog(), regB, sinkB)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-simDone; err != nil {
		t.Fatalf("simulator: %v", err)
	}
	waitNightEnd(ctx, t, sinkB, run)
	if err := svcB.stop(ctx, true); err != nil {
		t.Fatalf("stop: %v", err)
	}

	a, b := ingestFigures(t, regA), ingestFigures(t, regB)
	if a.received+b.received < float64(stats.Frames) {
		t.Errorf("frames: %d published, %.0f + %.0f received by the two runs", stats.Frames, a.received, b.received)
	}
	if lost := counterSum(t, regA, "crampwatch_ingest_lost_frames_total", "", "") + counterSum(t, regB, "crampwatch_ingest_lost_frames_total", "", ""); lost != 0 {
		t.Errorf("%v frames lost by sequence number", lost)
	}
	if got := counterSum(t, regB, "crampwatch_pipeline_carried_cramps_total", "outcome", "continued"); got != 1 {
		t.Errorf("carried cramps continued = %v, want 1", got)
	}
	if got := counterSum(t, regB, "crampwatch_pipeline_states_restored_total", "", ""); got != float64(run.Devices) {
		t.Errorf("states restored = %v, want %d", got, run.Devices)
	}
	first, second := sinkA.all(), sinkB.all()
	checkCramps(t, run, append(first, second...))
	checkSpanning(t, tr, first, second)
	t.Logf("published %d frames; first run received %.0f, second %.0f ",
		stats.Frames, a.received, b.received)
}

// TestBrokerRestartMidStream restarts real Mosquitto, persistence on, in
// the middle of a cramp while the simulator publishes: the service and the
// simulator reconnect, the persistent session's queued frames are
// delivered, no frame is lost, no cramp is missed or reported twice.
func TestBrokerRestartMidStream(t *testing.T) {
	ms, err := testenv.StartMosquitto(testenv.MosquittoOptions{Persistence: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ms.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	run := outageNight(t, ms.URL, 3)
	tr, stopAt := midCramp(t, run)
	cfg := outageService(t, ms.URL, "crampwatch-broker-outage-test", "")

	reg := newRegistry()
	sink := newConsoleSink(io.Discard)
	svc, err := startService(ctx, cfg, quietLog(), reg, sink)
	if err != nil {
		t.Fatal(err)
	}
	pub, stats, simDone := startSimulator(ctx, t, mqttclient.Config{URL: ms.URL, ClientID: "outage-sim", MaxReconnectInterval: time.Second}, run)
	defer pub.Close(time.Second)

	// The sample time the service had seen is the middle of the cramp: the
	// broker goes away for two seconds, three minutes of sample time.
	waitSample(ctx, t, sink, tr.Device, stopAt)
	ms.StopOnly()
	time.Sleep(2 * time.Second)
	if err := ms.Start(); err != nil {
		t.Fatal(err)
	}
	if err := <-simDone; err != nil {
		t.Fatalf("simulator: %v", err)
	}
	waitNightEnd(ctx, t, sink, run)
	if err := svc.stop(ctx, true); err != nil {
		t.Fatalf("stop: %v", err)
	}
	f := ingestFigures(t, reg)
	// A publish whose write failed as the broker went away counts as a
	// publish error in the simulator, but Paho keeps the QoS 1 message in
	// its store and sends it again after reconnecting: whether a frame was
	// lost is decided by the service's sequence numbers below.
	if f.received < float64(stats.Frames+stats.PublishErrors) {
		t.Errorf("frames: %d published (%d publish errors), %.0f received", stats.Frames, stats.PublishErrors, f.received)
	}
	// Before mqttclient.Publish copied payloads, the simulator's reused
	// buffer overwrote messages Paho resent after the reconnection: they
	// reached the service under the wrong topic (rejected) and were lost.
	if lost := counterSum(t, reg, "crampwatch_ingest_lost_frames_total", "", ""); lost != 0 || f.rejected != 0 || f.queueDropped != 0 {
		t.Errorf("%v frames lost by sequence number, %v rejected, %v dropped on full queues; want none", lost, f.rejected, f.queueDropped)
	}
	if got := counterSum(t, reg, "crampwatch_mqtt_connection_lost_total", "", ""); got < 2 {
		t.Errorf("connection_lost_total = %v: the broker restart went unnoticed", got)
	}
	checkCramps(t, run, sink.all())
	t.Logf("published %d frames (%d publish errors), received %.0f (duplicates %.0f)", stats.Frames, stats.PublishErrors, f.received, f.dup)
}

// alertInbox keeps the alert messages a wearer's app would get.
type alertInbox struct {
	mu   sync.Mutex
	msgs []alerts.AlertMessage
}

func (a *alertInbox) handle(_ string, payload []byte) {
	var m alerts.AlertMessage
	if json.Unmarshal(payload, &m) != nil {
		return
	}
	a.mu.Lock()
	a.msgs = append(a.msgs, m)
	a.mu.Unlock()
}

// find returns the first message of type typ about a cramp of device whose
// onset lies within 1.5 s of onset.
func (a *alertInbox) find(device, typ string, onset time.Time) (alerts.AlertMessage, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, m := range a.msgs {
		if m.Device == device && m.Type == typ && math.Abs(m.Onset.Sub(onset).Seconds()) < 1.5 {
			return m, true
		}
	}
	return alerts.AlertMessage{}, false
}

// TestServiceRestartKeepsAlertState stops the service in the middle of an
// alerted cramp and starts a new one on the same state directory: the
// wearer's ack for the alert of the first run is accepted by the second,
// and the second run's "ended" message names the first run's alert.
func TestServiceRestartKeepsAlertState(t *testing.T) {
	ms, err := testenv.StartMosquitto(testenv.MosquittoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer ms.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	run := outageNight(t, ms.URL, 1)
	tr, _ := midCramp(t, run)
	stateDir := t.TempDir()
	cfg := outageService(t, ms.URL, "crampwatch-alert-restart-test", stateDir)
	device := run.DeviceID(0)

	inbox := &alertInbox{}
	wearer, err := mqttclient.Connect(ctx, mqttclient.Config{URL: ms.URL, ClientID: "alert-restart-wearer", CleanSession: true}, quietLog(),
		mqttclient.Subscription{Filter: wire.Topic(cfg.prefix, device, wire.StreamAlert), QoS: 1, Handler: inbox.handle})
	if err != nil {
		t.Fatal(err)
	}
	defer wearer.Close(time.Second)

	svcA, err := startService(ctx, cfg, quietLog(), newRegistry(), newConsoleSink(io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := mqttclient.Connect(ctx, mqttclient.Config{URL: ms.URL, ClientID: "alert-restart-sim", CleanSession: true}, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close(time.Second)
	// The night goes on only as long as the test needs it.
	simCtx, stopSim := context.WithCancel(ctx)
	defer stopSim()
	go firmwaresim.Run(simCtx, run, pub)

	// Stop once the wearer has the gentle alert and the stream is mid-cramp.
	var alert alerts.AlertMessage
	for ok := false; !ok; {
		if alert, ok = inbox.find(device, alerts.TypeAlert, tr.Onset); !ok {
			select {
			case <-ctx.Done():
				t.Fatalf("no alert for the cramp at %s", tr.Onset.Format(time.TimeOnly))
			case <-time.After(5 * time.Millisecond):
			}
		}
	}
	if err := svcA.stop(ctx, false); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if _, err := os.Stat(filepath.Join(alertStateDir(stateDir), device+".json")); err != nil {
		t.Fatalf("no alert state saved: %v", err)
	}

	regB := newRegistry()
	sinkB := newConsoleSink(io.Discard)
	svcB, err := startService(ctx, cfg, quietLog(), regB, sinkB)
	if err != nil {
		t.Fatal(err)
	}
	if got := counterSum(t, regB, "crampwatch_alert_state_devices_total", "result", "loaded"); got != 1 {
		t.Errorf("alert states loaded = %v, want 1", got)
	}
	if err := pub.Publish(ctx, wire.Topic(cfg.prefix, device, wire.StreamAck), 1, false,
		[]byte(`{"id":"`+alert.ID+`","action":"ok"}`)); err != nil {
		t.Fatal(err)
	}
	// Until the cramp has ended and the ack was taken or refused.
	for {
		_, ended := inbox.find(device, alerts.TypeEnded, tr.Onset)
		answered := counterSum(t, regB, "crampwatch_alert_acks_total", "", "")+
			counterSum(t, regB, "crampwatch_alert_acks_rejected_total", "", "") > 0
		if answered && (ended || sinkB.caughtUp([]string{device}, tr.End.Add(30*time.Second))) {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the second run never ended the cramp or took the ack (answered %v)", answered)
		case <-time.After(10 * time.Millisecond):
		}
	}
	stopSim()
	if err := svcB.stop(ctx, false); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if got := counterSum(t, regB, "crampwatch_alert_acks_total", "action", "ok"); got != 1 {
		t.Errorf("acks accepted by the second run = %v, want 1 (rejected: %v)", got,
			counterSum(t, regB, "crampwatch_alert_acks_rejected_total", "", ""))
	}
	ended, ok := inbox.find(device, alerts.TypeEnded, tr.Onset)
	if !ok {
		t.Fatalf("no ended message for the cramp at %s", tr.Onset.Format(time.TimeOnly))
	}
	if ended.ID != alert.ID || ended.Acked == nil || !*ended.Acked {
		t.Errorf("ended message names alert %q (acked %v), want %q, acked", ended.ID, ended.Acked, alert.ID)
	}
	inbox.mu.Lock()
	defer inbox.mu.Unlock()
	n := 0
	for _, m := range inbox.msgs {
		if m.Type == alerts.TypeAlert && !m.Onset.Before(tr.Onset.Add(-1500*time.Millisecond)) && m.Onset.Before(tr.End) {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d gentle alerts for the cramp across the restart, want 1", n)
	}
}

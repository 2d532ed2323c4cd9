package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	influxdb2 "github.com/influxdata/influxdb-client-go/v2"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	firmwaresim "github.com/crampwatch/crampwatch/firmware-sim"
	"github.com/crampwatch/crampwatch/internal/testenv"
	"github.com/crampwatch/crampwatch/mqttclient"
)

func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }

// storedCramp is one row of the events measurement, as Flux returns it.
type storedCramp struct {
	device, side, state string
	onset               time.Time
	duration            float64
}

// TestEndToEnd runs simulator -> real Mosquitto -> the serve code path ->
// real InfluxDB and checks every simulated cramp is stored once, ended, with
// the right onset and duration; and that malformed frames sent with
// mosquitto_pub are counted as rejected while the devices' streams go on.
func TestEndToEnd(t *testing.T) {
	mqttURL := testenv.Mosquitto(t)
	db := testenv.InfluxDB(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	cfg := defaultServeConfig()
	cfg.mqtt.URL = mqttURL
	cfg.mqtt.ClientID = "crampwatch-e2e"
	cfg.influx.URL = db.URL
	cfg.influx.Bucket = db.Bucket
	cfg.httpAddr = "127.0.0.1:0"
	cfg.journalPath = t.TempDir() + "/journal.jsonl"
	// A prefix of its own: the simulator's retained status messages stay on
	// the broker this test binary shares with other tests.
	cfg.prefix = "e2e/v1"
	if err := cfg.load(); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	reg := newRegistry()
	console := newConsoleSink(&bytes.Buffer{})
	svc, err := startService(ctx, cfg, log, reg, console)
	if err != nil {
		t.Fatal(err)
	}

	sc := firmwaresim.DefaultScenario().WithHours(0.75)
	sc.Encoding = "json"
	sc.Cramps.PerNight = 0
	sc.Cramps.EveryS = 600
	sc.Cramps.DurationS = firmwaresim.Range{10, 120}
	start := time.Date(2026, 11, 27, 23, 0, 0, 0, time.UTC)
	run := firmwaresim.RunConfig{Prefix: cfg.prefix, Devices: 2, Seed: 42, Speed: 300, Start: start, Scenario: sc}
	pub, err := mqttclient.Connect(ctx, mqttclient.Config{URL: mqttURL, ClientID: "e2e-sim", CleanSession: true}, log)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close(time.Second)

	simDone := make(chan error, 1)
	go func() { _, err := firmwaresim.Run(ctx, run, pub); simDone <- err }()
	// Meanwhile, garbage on the same devices' topics, from the real CLI.
	bad := []struct{ topic, payload string }{
		{"e2e/v1/sim-0000/emg", `{"seq": 1, "t0": `},
		{"e2e/v1/sim-0000/emg", `{"seq":5,"t0":1763946000123456,"rate":1000,"unit":"uV","ch":["calf_left","calf_right"],"data":[[1,2,3],[1,2]]}`},
		{"e2e/v1/sim-0000/emg", `{"seq":5,"t0":1763946000123456,"rate":1000,"unit":"uV","ch":["elbow_left"],"data":[[1,2,3]]}`},
		{"e2e/v1/sim-0001/emg", `{"seq":5,"t0":1763946000123456,"rate":99999,"unit":"uV","ch":["calf_left"],"data":[[1,2,3]]}`},
		{"e2e/v1/bad%device/emg", `{}`},
	}
	host, port, _ := strings.Cut(strings.TrimPrefix(mqttURL, "tcp://"), ":")
	for _, b := range bad {
		out, err := exec.CommandContext(ctx, "mosquitto_pub", "-h", host, "-p", port, "-t", b.topic, "-q", "1", "-m", b.payload).CombinedOutput()
		if err != nil {
			t.Fatalf("mosquitto_pub: %v: %s", err, out)
		}
	}
	if err := <-simDone; err != nil {
		t.Fatalf("simulator: %v", err)
	}
	ids := []string{run.DeviceID(0), run.DeviceID(1)}
	nightEnd := start.Add(45 * time.Minute).Add(-2 * time.Second)
	for !console.caughtUp(ids, nightEnd) {
		select {
		case <-ctx.Done():
			t.Fatal("service never caught up with the simulator")
		case <-time.After(100 * time.Millisecond):
		}
	}
	if err := svc.stop(ctx, true); err != nil {
		t.Fatalf("stop: %v", err)
	}

	for reason, min := range map[string]float64{"bad_json": 1, "ragged": 1, "unknown_channel": 1, "bad_rate": 1, "bad_device": 1} {
		if got := counterValue(t, reg, "crampwatch_ingest_rejected_total", "reason", reason); got < min {
			t.Errorf("rejected{reason=%q} = %v, want >= %v", reason, got, min)
		}
	}

	stored := queryCramps(ctx, t, db, start)
	var truth []firmwaresim.Truth
	for i := range ids {
		for _, tr := range run.Device(i).Truth() {
			if tr.Kind == "cramp" {
				truth = append(truth, tr)
			}
		}
	}
	if len(truth) < 4 {
		t.Fatalf("scenario produced only %d cramps", len(truth))
	}
	used := make([]bool, len(stored))
	for _, tr := range truth {
		found := false
		for i, s := range stored {
			if used[i] || s.device != tr.Device || s.side != tr.Side || math.Abs(s.onset.Sub(tr.Onset).Seconds()) > 1 {
				continue
			}
			used[i], found = true, true
			if s.state != "ended" {
				t.Errorf("cramp %s %s at %s: state %q, want ended", tr.Device, tr.Side, tr.Onset.Format(time.TimeOnly), s.state)
			}
			if d := math.Abs(s.duration - tr.End.Sub(tr.Onset).Seconds()); d > 2 {
				t.Errorf("cramp %s %s at %s: duration %.1f s, truth %.1f s", tr.Device, tr.Side, tr.Onset.Format(time.TimeOnly), s.duration, tr.End.Sub(tr.Onset).Seconds())
			}
		}
		if !found {
			t.Errorf("truth cramp %s %s at %s (%.0f s) not stored with onset within 1 s", tr.Device, tr.Side, tr.Onset.Format(time.TimeOnly), tr.End.Sub(tr.Onset).Seconds())
		}
	}
	for i, s := range stored {
		if !used[i] {
			t.Errorf("stored cramp %s %s at %s (%.1f s) matches no truth cramp", s.device, s.side, s.onset.Format(time.TimeOnly), s.duration)
		}
	}
	t.Logf("%d truth cramps, %d stored cramp series", len(truth), len(stored))
}

// queryCramps reads the cramp series of the events measurement with Flux.
func queryCramps(ctx context.Context, t *testing.T, db testenv.Influx, start time.Time) []storedCramp {
	t.Helper()
	client := influxdb2.NewClient(db.URL, db.Token)
	defer client.Close()
	q := fmt.Sprintf(`from(bucket: %q)
  |> range(start: %s, stop: %s)
  |> filter(fn: (r) => r._measurement == "events" and r.kind == "cramp")
  |> filter(fn: (r) => r._field == "state" or r._field == "duration_s")
  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")`,
		db.Bucket, start.Add(-time.Hour).Format(time.RFC3339), start.Add(3*time.Hour).Format(time.RFC3339))
	res, err := client.QueryAPI(db.Org).Query(ctx, q)
	if err != nil {
		t.Fatalf("flux: %v", err)
	}
	defer res.Close()
	var out []storedCramp
	for res.Next() {
		r := res.Record()
		d, _ := r.ValueByKey("duration_s").(float64)
		st, _ := r.ValueByKey("state").(string)
		dev, _ := r.ValueByKey("device").(string)
		side, _ := r.ValueByKey("side").(string)
		out = append(out, storedCramp{device: dev, side: side, state: st, onset: r.Time(), duration: d})
	}
	if res.Err() != nil {
		t.Fatalf("flux: %v", res.Err())
	}
	return out
}

// counterValue returns the value of the counter name with label=value.
func counterValue(t *testing.T, g prometheus.Gatherer, name, label, value string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if hasLabel(m, label, value) {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func hasLabel(m *dto.Metric, label, value string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == label && strings.EqualFold(l.GetValue(), value) {
			return true
		}
	}
	return false
}

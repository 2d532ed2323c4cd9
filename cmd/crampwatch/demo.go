package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/crampwatch/crampwatch/detect"
	"github.com/crampwatch/crampwatch/embedbroker"
	"github.com/crampwatch/crampwatch/evaluate"
	firmwaresim "github.com/crampwatch/crampwatch/firmware-sim"
	"github.com/crampwatch/crampwatch/mqttclient"
)

// demoOptions are the demo's own flags, on top of the service's.
type demoOptions struct {
	devices  int
	hours    float64
	speed    float64
	seed     int64
	scenario string
}

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	dir, err := os.MkdirTemp("", "crampwatch-demo-")
	if err != nil {
		return err
	}
	cfg := defaultServeConfig()
	cfg.logLevel = "warn"
	cfg.httpAddr = "127.0.0.1:0"
	cfg.journalPath = filepath.Join(dir, "journal.jsonl")
	opt := demoOptions{devices: 3, hours: 1.5, speed: 360, seed: 1}
	_, _, err = parseServeFlags("demo", args, &cfg, stderr, func(fs *flag.FlagSet) {
		fs.IntVar(&opt.devices, "devices", opt.devices, "virtual wearers")
		fs.Float64Var(&opt.hours, "hours", opt.hours, "length of the simulated night (ignored with --scenario)")
		fs.Float64Var(&opt.speed, "speed", opt.speed, "simulated seconds per wall-clock second")
		fs.Int64Var(&opt.seed, "seed", opt.seed, "seed of the simulated nights")
		fs.StringVar(&opt.scenario, "scenario", opt.scenario, "scenario file (YAML/JSON); empty: a short night rich in events")
	})
	if err != nil {
		return err
	}
	log, err := newLogger(stderr, cfg.logLevel, cfg.logFormat)
	if err != nil {
		return err
	}
	sc := demoScenario(opt.hours)
	if opt.scenario != "" {
		if sc, err = firmwaresim.LoadScenario(opt.scenario); err != nil {
			return err
		}
	}
	began := time.Now()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The broker logs every connection closed at shutdown as a warning;
	// only its errors are worth showing in a demo.
	brokerLog := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	broker, err := embedbroker.Start(ctx, "127.0.0.1:0", brokerLog.With("component", "broker"))
	if err != nil {
		return err
	}
	defer broker.Close()
	cfg.mqtt.URL = broker.URL()
	cfg.mqtt.ClientID = "crampwatch-demo"

	console := newConsoleSink(stdout)
	svc, err := startService(ctx, cfg, log, newRegistry(), console)
	if err != nil {
		return err
	}
	simClient, err := mqttclient.Connect(ctx, mqttclient.Config{URL: broker.URL(), ClientID: "crampwatch-demo-sim", CleanSession: true}, log.With("mqtt", "sim"))
	if err != nil {
		return err
	}
	defer simClient.Close(time.Second)

	start := time.Date(2026, 11, 27, 23, 0, 0, 0, time.UTC)
	run := firmwaresim.RunConfig{
		Prefix: cfg.prefix, Devices: opt.devices, Seed: opt.seed, Speed: opt.speed,
		Start: start, Scenario: sc, TruthPath: filepath.Join(dir, "truth.jsonl"),
	}
	fmt.Fprintf(stdout, "crampwatch demo: %d wearers, %.1f h night at %gx speed through an embedded MQTT broker (%s)\n\n",
		opt.devices, sc.Hours, opt.speed, broker.URL())
	fmt.Fprintln(stdout, "sample time  device     kind      channel          state")
	stats, err := firmwaresim.Run(ctx, run, simClient)
	if err != nil {
		return fmt.Errorf("simulator: %w", err)
	}

	// The simulator is done when the broker has every frame; wait until the
	// service has worked through them too.
	ids := make([]string, opt.devices)
	for i := range ids {
		ids[i] = run.DeviceID(i)
	}
	nightEnd := start.Add(time.Duration(sc.Hours * float64(time.Hour))).Add(-2 * time.Second)
	wait, stopWait := context.WithTimeout(ctx, 30*time.Second)
	defer stopWait()
	for !console.caughtUp(ids, nightEnd) {
		select {
		case <-wait.Done():
			log.Warn("service did not catch up with the simulator; summarising what it has")
		case <-time.After(100 * time.Millisecond):
			continue
		}
		break
	}
	stopCtx, stop := context.WithTimeout(context.Background(), 10*time.Second)
	defer stop()
	if err := svc.stop(stopCtx, true); err != nil {
		return err
	}

	var truth []firmwaresim.Truth
	for i := range ids {
		truth = append(truth, run.Device(i).Truth()...)
	}
	printSummary(stdout, ids, truth, console.all())
	fmt.Fprintf(stdout, "\n%d frames published (%d lost and %d duplicated on purpose); wall time %.1f s\n",
		stats.Frames, stats.Lost, stats.Duplicates, time.Since(began).Seconds())
	fmt.Fprintf(stdout, "event journal: %s\nground truth:  %s\n", cfg.journalPath, run.TruthPath)
	return nil
}

// demoScenario is a short night with something of everything, so a first
// run shows cramps, PLMs, movements and artifacts within seconds.
func demoScenario(hours float64) firmwaresim.Scenario {
	sc := firmwaresim.DefaultScenario().WithHours(hours)
	sc.Name = "demo"
	sc.FrameMS, sc.IMUFrameMS = 200, 200 // fewer, larger frames: the broker is in-process
	sc.Encoding = "binary"
	sc.Cramps.PerNight = 0
	sc.Cramps.EveryS = 1200
	sc.Cramps.DurationS = firmwaresim.Range{10, 150}
	sc.PLM.WearerFraction = 1
	sc.PLM.SeriesPerNight = 1
	sc.Movements.TurnsPerNight = 4
	sc.Artifacts.LeadOffPerNight = 0.7
	return sc
}

// printSummary scores each device's events against its ground truth with
// the same matching rules as "crampwatch eval" (docs/evaluation.md).
func printSummary(w io.Writer, devices []string, truth []firmwaresim.Truth, events []detect.Event) {
	sort.Strings(devices)
	fmt.Fprintln(w, "\nSummary: detected events matched to the simulator's ground truth")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "device\tcramps found\tfalse alerts\talert latency\tPLM found\tmovements found\tartifacts found")
	for _, d := range devices {
		var tr []firmwaresim.Truth
		var ev []detect.Event
		for _, t := range truth {
			if t.Device == d {
				tr = append(tr, t)
			}
		}
		for _, e := range events {
			if e.Device == d {
				ev = append(ev, e)
			}
		}
		r := evaluate.Match(tr, ev, evaluate.MatchOptions{Nights: 1, MaxDetails: -1})
		latency := "n/a"
		if !math.IsNaN(float64(r.AlertLatencyMedianS)) {
			latency = fmt.Sprintf("%.1f s median", float64(r.AlertLatencyMedianS))
		}
		fmt.Fprintf(tw, "%s\t%d / %d\t%d\t%s\t%d / %d\t%s\t%s\n", d,
			r.CrampsDetected, r.Cramps, r.FalseAlerts, latency, r.PLMMatched, r.PLMTruth,
			ofTruth(r.MovementRecall, r.MovementTruth), ofTruth(r.ArtifactRecall, r.ArtifactTruth))
	}
	tw.Flush()
}

// ofTruth prints a recall as "found / truth".
func ofTruth(recall evaluate.Float, truth int) string {
	if truth == 0 {
		return "0 / 0"
	}
	return fmt.Sprintf("%.0f / %d", float64(recall)*float64(truth), truth)
}

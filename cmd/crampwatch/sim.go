package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"strconv"
	"time"

	firmwaresim "github.com/crampwatch/crampwatch/firmware-sim"
	"github.com/crampwatch/crampwatch/mqttclient"
	"github.com/crampwatch/crampwatch/wire"
)

func runSim(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("crampwatch sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	// Thousands of small publishes a second: a millisecond's write delay
	// lets them share writes (mqttclient.Config.WriteDelay).
	mq := mqttclient.Config{URL: mqttclient.DefaultURL, ClientID: "crampwatch-sim", CleanSession: true, WriteDelay: time.Millisecond}
	run := firmwaresim.RunConfig{Prefix: wire.DefaultPrefix, Devices: 5, Speed: 1, Seed: 1}
	var scenario, start, encoding, passwordFile, csvPath string
	var hours float64
	logLevel := "info"
	fs.StringVar(&mq.URL, "mqtt-url", mq.URL, "MQTT broker URL")
	fs.StringVar(&mq.ClientID, "mqtt-client-id", mq.ClientID, "MQTT client id of the simulator")
	fs.StringVar(&mq.Username, "mqtt-username", "", "MQTT user name")
	fs.StringVar(&passwordFile, "mqtt-password-file", "", "file holding the MQTT password (env CRAMPWATCH_MQTT_PASSWORD also works)")
	fs.StringVar(&mq.TLS.CAFile, "mqtt-ca-file", "", "CA certificate (PEM) of the broker")
	fs.StringVar(&run.Prefix, "topic-prefix", run.Prefix, "topic prefix")
	fs.IntVar(&run.Devices, "devices", run.Devices, "number of virtual devices")
	fs.StringVar(&run.DevicePrefix, "device-prefix", "sim-", "device ids are this plus a 4-digit index")
	fs.Int64Var(&run.Seed, "seed", run.Seed, "seed: the same seed and scenario give the same nights")
	fs.Float64Var(&run.Speed, "speed", run.Speed, "simulated seconds per wall-clock second (1 real time, 0 as fast as possible)")
	fs.StringVar(&scenario, "scenario", "", "scenario file (YAML/JSON); empty: a typical 8-hour night")
	fs.Float64Var(&hours, "hours", 0, "override the scenario's night length")
	fs.StringVar(&encoding, "encoding", "", "override the scenario's encoding: json or binary")
	fs.StringVar(&start, "start", "", "sample time the nights begin, RFC 3339; empty: now")
	fs.StringVar(&run.TruthPath, "truth", "truth.jsonl", "ground truth output (JSON Lines); empty: none")
	fs.StringVar(&logLevel, "log-level", logLevel, "debug, info, warn or error")
	fs.StringVar(&csvPath, "csv", "", "write the first device's EMG night as CSV (input for replay) instead of publishing")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to this file (go tool pprof)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log, err := newLogger(stderr, logLevel, "text")
	if err != nil {
		return err
	}
	run.Logger = log
	run.Scenario = firmwaresim.DefaultScenario()
	if scenario != "" {
		if run.Scenario, err = firmwaresim.LoadScenario(scenario); err != nil {
			return err
		}
	}
	if hours > 0 {
		run.Scenario = run.Scenario.WithHours(hours)
	}
	if encoding != "" {
		run.Scenario.Encoding = encoding
	}
	if start != "" {
		if run.Start, err = time.Parse(time.RFC3339, start); err != nil {
			return fmt.Errorf("--start: %w", err)
		}
	}
	if err := run.Scenario.Validate(); err != nil {
		return err
	}
	if csvPath != "" {
		return writeNightCSV(ctx, run, csvPath, stdout)
	}
	if mq.Password, err = readEnvOrFile("CRAMPWATCH_MQTT_PASSWORD", passwordFile); err != nil {
		return err
	}
	client, err := mqttclient.Connect(ctx, mq, log.With("mqtt", "sim"))
	if err != nil {
		return err
	}
	defer client.Close(time.Second)
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	stats, err := firmwaresim.Run(ctx, run, client)
	fmt.Fprintf(stdout, "devices %d  frames %d  bytes %d  publish errors %d  lost %d  duplicated %d  truth events %d  elapsed %.1f s  max lag %.2f s\n",
		stats.Devices, stats.Frames, stats.Bytes, stats.PublishErrors, stats.Lost+stats.GapLost, stats.Duplicates, stats.Truth, stats.Elapsed.Seconds(), stats.MaxLagS)
	return err
}

// writeNightCSV writes device 0's EMG as a CSV recording (time in Unix
// seconds, one column per channel, microvolts) and its truth, so replay can
// be tried and measured on a night whose events are known.
func writeNightCSV(ctx context.Context, run firmwaresim.RunConfig, path string, stdout io.Writer) error {
	if run.Start.IsZero() {
		run.Start = time.Now()
	}
	d := run.Device(0)
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<20)
	dec := wire.NewDecoder(wire.DefaultMaxPayload)
	var frame wire.EMGFrame
	var buf, line []byte
	var header bool
	var lastSeq uint32
	var rows int
	for {
		m, ok := d.Next(buf)
		if !ok {
			break
		}
		buf = m.Payload
		if m.Stream != wire.StreamEMG {
			continue
		}
		if err := dec.DecodeEMG(m.Payload, &frame); err != nil {
			return fmt.Errorf("simulator frame: %w", err)
		}
		if header && frame.Seq <= lastSeq { // a duplicate sent on purpose
			continue
		}
		if !header {
			line = append(line[:0], "time"...)
			for _, c := range frame.Channels {
				line = append(append(line, ','), c.String()...)
			}
			w.Write(append(line, '\n'))
			header = true
		}
		lastSeq = frame.Seq
		for i := range frame.Len() {
			t := float64(frame.T0)/1e6 + float64(i)/frame.Rate
			line = strconv.AppendFloat(line[:0], t, 'f', 6, 64)
			for _, row := range frame.Data {
				line = append(line, ',')
				line = strconv.AppendFloat(line, row[i], 'f', 2, 64)
			}
			w.Write(append(line, '\n'))
			rows++
		}
		if rows%1_000_000 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
	}
	if err := d.Err(); err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if run.TruthPath != "" {
		tf, err := os.Create(run.TruthPath)
		if err != nil {
			return err
		}
		defer tf.Close()
		if err := firmwaresim.WriteTruth(tf, d.Truth()); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "wrote %d rows of %s to %s (truth: %s)\n", rows, d.ID(), path, run.TruthPath)
	return f.Close()
}

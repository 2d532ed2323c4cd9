package main

import (
	"context"
	"log/slog"
	"syscall"
	"testing"
	"time"

	firmwaresim "github.com/crampwatch/crampwatch/firmware-sim"
	"github.com/crampwatch/crampwatch/internal/testenv"
	"github.com/crampwatch/crampwatch/mqttclient"
)

// BenchmarkSimPublish measures the load generator as "crampwatch sim" runs
// it: firmwaresim.Run publishing through the MQTT client to a real
// Mosquitto, as fast as it can (speed 0). Each op is a 30 s night of 200
// devices (about 180,000 frames). cpu-us/frame is the simulator's own CPU
// time (getrusage of this process: generation, encoding, MQTT client); with
// 30 frames per device per second it gives the cores needed for 2000
// devices in real time. Profile it with -cpuprofile to see where the
// simulator's time goes:
//
//	go test -run '^$' -bench SimPublish -benchtime 2x -cpuprofile sim.prof ./cmd/crampwatch/
func BenchmarkSimPublish(b *testing.B) {
	for _, enc := range []string{"json", "binary"} {
		b.Run(enc, func(b *testing.B) {
			url := testenv.Mosquitto(b)
			ctx := context.Background()
			pub, err := mqttclient.Connect(ctx, mqttclient.Config{URL: url, ClientID: "bench-sim-" + enc, CleanSession: true}, slog.New(slog.DiscardHandler))
			if err != nil {
				b.Fatal(err)
			}
			defer pub.Close(time.Second)
			sc := firmwaresim.DefaultScenario().WithHours(30.0 / 3600)
			sc.Encoding = enc
			// A prefix of its own keeps the retained status messages away
			// from tests sharing the broker.
			run := firmwaresim.RunConfig{Prefix: "sim-bench/v1", Devices: 200, Speed: 0, Seed: 1, Scenario: sc,
				Start: time.Date(2026, 11, 27, 23, 0, 0, 0, time.UTC)}
			var frames uint64
			cpu0 := benchCPU()
			b.ResetTimer()
			for range b.N {
				st, err := firmwaresim.Run(ctx, run, pub)
				if err != nil {
					b.Fatal(err)
				}
				if st.PublishErrors > 0 {
					b.Fatalf("%d publish errors", st.PublishErrors)
				}
				frames += st.Frames
			}
			b.StopTimer()
			perFrame := float64((benchCPU() - cpu0).Microseconds()) / float64(frames)
			b.ReportMetric(perFrame, "cpu-us/frame")
			b.ReportMetric(float64(frames)/b.Elapsed().Seconds(), "frames/s")
			b.ReportMetric(perFrame*30*2000/1e6, "cores@2000dev")
		})
	}
}

// benchCPU is this process's user and system CPU time so far.
func benchCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

package store_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crampwatch/crampwatch/detect"
	"github.com/crampwatch/crampwatch/internal/testenv"
	"github.com/crampwatch/crampwatch/store"
	"github.com/crampwatch/crampwatch/wire"
)

// BenchmarkInfluxBatching writes the points 1000 devices produce in real
// time (two EMG channels' envelope and two IMUs' motion at 10 Hz: 40,000
// points per second) to the real InfluxDB, paced as the pipeline produces
// them, for each batch size and flush interval. It reports the sink's
// CPU per point (this process: line protocol, batching, HTTP) and
// influxd's CPU per point and in cores at this rate (from /proc), and the
// write latency the flush interval adds (the mean age of a point when its
// batch is acknowledged cannot be seen from outside, so the interval itself
// bounds it). One op is one second of the 1000 devices' points.
//
//	go test -run '^$' -bench InfluxBatching -benchtime 10x ./store/
func BenchmarkInfluxBatching(b *testing.B) {
	for _, tc := range []struct {
		batch int
		flush time.Duration
	}{
		{500, time.Second},
		{5000, time.Second},
		{20000, time.Second},
		{5000, 100 * time.Millisecond},
		{5000, 5 * time.Second},
	} {
		b.Run(fmt.Sprintf("batch=%d/flush=%s", tc.batch, tc.flush), func(b *testing.B) {
			benchBatching(b, tc.batch, tc.flush)
		})
	}
}

func benchBatching(b *testing.B, batch int, flush time.Duration) {
	const devices, rate = 1000, 10 // points per channel or site per second
	db := testenv.InfluxDB(b)
	influxPID := pidOfListener(db.URL)
	cfg := store.DefaultConfig()
	cfg.URL, cfg.Bucket = db.URL, db.Bucket
	cfg.BatchSize, cfg.FlushInterval = batch, flush
	cfg.Logger = slog.New(slog.DiscardHandler)
	reg := prometheus.NewRegistry()
	s, err := store.New(cfg, reg)
	if err != nil {
		b.Fatal(err)
	}
	ids := make([]string, devices)
	for i := range ids {
		ids[i] = fmt.Sprintf("dev-%04d", i)
	}
	chans := []wire.Channel{{Muscle: wire.Calf, Side: wire.Left}, {Muscle: wire.Calf, Side: wire.Right}}
	sites := []wire.Site{{Segment: wire.Shank, Side: wire.Left}, {Segment: wire.Shank, Side: wire.Right}}
	start := time.Date(2026, 11, 27, 23, 0, 0, 0, time.UTC)
	selfCPU0, influxCPU0 := cpuOf(0), cpuOf(influxPID)
	wall0 := time.Now()
	b.ResetTimer()
	var points int
	for sec := range b.N {
		// One tenth of a second at a time, paced on the wall clock as the
		// detectors would produce them.
		for tick := range rate {
			t := start.Add(time.Duration(sec)*time.Second + time.Duration(tick)*time.Second/rate)
			for _, id := range ids {
				for _, c := range chans {
					s.Envelope(detect.Envelope{Device: id, Channel: c, Time: t, RMSUV: 4.2, BaselineUV: 3.1})
				}
				for _, st := range sites {
					s.Motion(detect.Motion{Device: id, Site: st, Time: t, Activity: 0.01, TiltDeg: 1.5})
				}
				points += len(chans) + len(sites)
			}
			due := wall0.Add(time.Duration(sec)*time.Second + time.Duration(tick+1)*time.Second/rate)
			time.Sleep(time.Until(due))
		}
	}
	if err := s.Close(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	wall := time.Since(wall0).Seconds()
	selfCPU, influxCPU := (cpuOf(0) - selfCPU0).Seconds(), (cpuOf(influxPID) - influxCPU0).Seconds()
	written, dropped := counter(b, reg, "crampwatch_sink_points_written_total"), counter(b, reg, "crampwatch_sink_dropped_total")
	if int(written) != points || dropped > 0 {
		b.Fatalf("wrote %v of %d points, dropped %v", written, points, dropped)
	}
	b.ReportMetric(selfCPU/float64(points)*1e6, "sink-cpu-us/point")
	if influxPID > 0 {
		b.ReportMetric(influxCPU/float64(points)*1e6, "influxd-cpu-us/point")
		b.ReportMetric(influxCPU/wall, "influxd-cores")
	}
	b.ReportMetric(float64(points)/wall, "points/s")
}

func counter(b *testing.B, g prometheus.Gatherer, name string) float64 {
	mfs, err := g.Gather()
	if err != nil {
		b.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

// cpuOf returns a process's user+system CPU time from /proc/<pid>/stat
// (in USER_HZ ticks of 10 ms); pid 0 is this process.
func cpuOf(pid int) time.Duration {
	p := "self"
	if pid > 0 {
		p = strconv.Itoa(pid)
	}
	raw, err := os.ReadFile("/proc/" + p + "/stat")
	if err != nil {
		return 0
	}
	s := string(raw)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// pidOfListener finds the influxd serving url: the process whose command
// line names a config in a directory of the test servers. It returns 0
// when the server is not one this machine runs (CRAMPWATCH_TEST_INFLUX_URL).
func pidOfListener(url string) int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	port := url[strings.LastIndexByte(url, ':')+1:]
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmd, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil || !strings.Contains(string(cmd), "influxd") {
			continue
		}
		i := strings.Index(string(cmd), "-config\x00")
		if i < 0 {
			continue
		}
		conf, _, _ := strings.Cut(string(cmd[i+len("-config\x00"):]), "\x00")
		body, err := os.ReadFile(conf)
		if err == nil && strings.Contains(string(body), ":"+port+`"`) {
			return pid
		}
	}
	return 0
}

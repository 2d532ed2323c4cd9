package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crampwatch/crampwatch/detect"
	firmwaresim "github.com/crampwatch/crampwatch/firmware-sim"
	"github.com/crampwatch/crampwatch/ingest"
	"github.com/crampwatch/crampwatch/internal/testenv"
	"github.com/crampwatch/crampwatch/pipeline"
	"github.com/crampwatch/crampwatch/wire"
)

func TestParseSimStart(t *testing.T) {
	for _, tc := range []struct {
		line string
		want time.Duration
		ok   bool
	}{
		{`time=2026-11-28T17:47:28.641Z level=INFO msg="simulation starting" devices=2000 scenario=typical hours=0.002 speed=1 start=2026-11-28T17:47:28.586Z truth=0`, 55 * time.Millisecond, true},
		{`time=2026-11-28T17:47:28.586Z level=INFO msg="simulation starting" devices=1 scenario=bench hours=1 speed=1 start=2026-11-28T17:47:28.586Z truth=0`, 0, true},
		{`time=2026-11-28T17:47:28.586Z level=INFO msg="mqtt: connected" mqtt=sim`, 0, false},
	} {
		got, ok := parseSimStart(tc.line)
		if got != tc.want || ok != tc.ok {
			t.Errorf("parseSimStart(%q) = %v, %v; want %v, %v", tc.line, got, ok, tc.want, tc.ok)
		}
	}
}

func TestSimStats(t *testing.T) {
	s := &benchSim{}
	s.stdout.WriteString("devices 2000  frames 429959  bytes 91358605  publish errors 3  lost 0  duplicated 0  truth events 0  elapsed 52.6 s  max lag 0.25 s\n")
	st, err := s.stats()
	if err != nil || st.frames != 429959 || st.publishErrors != 3 || st.maxLag != 0.25 {
		t.Errorf("stats = %+v, %v", st, err)
	}
	s.stdout.Reset()
	s.stdout.WriteString("crampwatch sim: connection refused\n")
	if _, err := s.stats(); err == nil {
		t.Error("stats of a failed run: no error")
	}
}

func TestLagSinkQuantiles(t *testing.T) {
	l := newLagSink()
	now := time.Now()
	l.observe(now) // not measuring yet: ignored
	l.measure(true)
	// 98 points 10 ms old, 2 points 2 s old.
	for range 98 {
		l.observe(now.Add(-10 * time.Millisecond))
	}
	l.observe(now.Add(-2 * time.Second))
	l.observe(now.Add(-2 * time.Second))
	p50, p99, maxS, n := l.quantiles(5 * time.Millisecond)
	if n != 100 {
		t.Fatalf("n = %d, want 100", n)
	}
	// Buckets are 1 ms wide and reported at their upper edge; the time
	// between observe and now adds at most a millisecond or two.
	if p50 < 0.005 || p50 > 0.008 {
		t.Errorf("p50 = %v, want about 0.010-0.005", p50)
	}
	if p99 < 1.995 || p99 > 1.998 {
		t.Errorf("p99 = %v, want about 2-0.005", p99)
	}
	if maxS < 1.994 || maxS > 1.998 {
		t.Errorf("max = %v, want about 2-0.005", maxS)
	}
	l.measure(false)
	l.observe(now.Add(-time.Hour))
	if _, _, _, n := l.quantiles(0); n != 100 {
		t.Errorf("observed while not measuring: n = %d", n)
	}
}

func TestProcReaders(t *testing.T) {
	// Burn a little CPU so the process has some to show.
	deadline := time.Now().Add(30 * time.Millisecond)
	for x := 0; time.Now().Before(deadline); x++ {
		_ = x * x
	}
	if c := procCPU(os.Getpid()); c <= 0 {
		t.Errorf("procCPU(self) = %v", c)
	}
	if c := procCPU(0); c != 0 {
		t.Errorf("procCPU(0) = %v", c)
	}
	if rss := procStatusKB("self", "VmRSS"); rss <= 0 {
		t.Errorf("VmRSS = %d kB", rss)
	}
	if busy, total := machineCPU(); total == 0 || busy > total {
		t.Errorf("machineCPU = %d busy of %d", busy, total)
	}
	marker := filepath.Join(t.TempDir(), "marker-dir")
	// The marker is the shell's $0, so it shows in its command line.
	cmd := exec.Command("sh", "-c", "sleep 30; true", marker)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	if pid := pidByArg(marker); pid != cmd.Process.Pid {
		t.Errorf("pidByArg found %d, want %d", pid, cmd.Process.Pid)
	}
	if pid := pidByArg(filepath.Join(t.TempDir(), "no-such-process")); pid != 0 {
		t.Errorf("pidByArg found %d for a marker no process has", pid)
	}
}

// TestBench runs the benchmark briefly with 20 devices on the test
// binary's Mosquitto and InfluxDB, with the simulator built from this
// package: every frame published must be delivered, and the report must
// hold measurements, not zeros.
func TestBench(t *testing.T) {
	mqttURL := testenv.Mosquitto(t)
	db := testenv.InfluxDB(t)
	bin := filepath.Join(t.TempDir(), "crampwatch")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	opt := benchOptions{devices: 20, duration: 6 * time.Second, warmup: 2 * time.Second, encoding: "binary",
		mqttURL: mqttURL, influxURL: db.URL, bucket: db.Bucket,
		simCommand: func(ctx context.Context, args []string) *exec.Cmd { return exec.CommandContext(ctx, bin, args...) }}
	var stderr bytes.Buffer
	log := slog.New(slog.NewTextHandler(&stderr, nil))
	// A topic prefix of its own: the simulator's retained status messages
	// must not reach other tests sharing the broker.
	rep, err := runBenchmark(ctx, opt, []string{"--influx-flush-interval", "200ms", "--topic-prefix", "bench-test/v1"}, log, &stderr)
	if err != nil {
		t.Fatalf("bench: %v\n%s", err, stderr.String())
	}
	var out bytes.Buffer
	rep.print(&out)
	t.Log("\n" + out.String())
	if rep.FramesSent == 0 || rep.FramesLost != 0 || float64(rep.FramesSent) != rep.FramesIn {
		t.Errorf("published %d, delivered %v, lost %d", rep.FramesSent, rep.FramesIn, rep.FramesLost)
	}
	// 20 devices send 10 EMG and 20 IMU frames a second each.
	if rep.FramesByS["emg"] < 150 || rep.FramesByS["emg"] > 250 || rep.FramesByS["imu"] < 300 || rep.FramesByS["imu"] > 500 {
		t.Errorf("frames/s by stream %v, want about 200 EMG and 400 IMU", rep.FramesByS)
	}
	if rep.EMGSamplesPS != rep.FramesByS["emg"]*200 {
		t.Errorf("EMG samples/s %v for %v frames/s of 2x100 samples", rep.EMGSamplesPS, rep.FramesByS["emg"])
	}
	if rep.LagPoints == 0 || rep.ServiceCPU <= 0 || rep.SimCPU <= 0 || rep.ServiceRSS <= 0 || rep.PointsPerS <= 0 {
		t.Errorf("missing measurements: %+v", rep)
	}
	if rep.Rejected != 0 || rep.QueueDropped != 0 || rep.SeqGaps != 0 {
		t.Errorf("rejected %v, queue drops %v, sequence gaps %v", rep.Rejected, rep.QueueDropped, rep.SeqGaps)
	}
}

func TestBenchFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--devices", "0"},
		{"--encoding", "xml"},
		{"--influx-url", "http://x"},
		{"stray"},
	} {
		if err := runBench(context.Background(), args, io.Discard, io.Discard); err != errUsage {
			t.Errorf("bench %v: %v, want a usage error", args, err)
		}
	}
	before, after := splitArgs([]string{"--devices", "5", "--", "--shards", "4"})
	if strings.Join(before, " ") != "--devices 5" || strings.Join(after, " ") != "--shards 4" {
		t.Errorf("splitArgs = %v | %v", before, after)
	}
}

// deviceStateBytes feeds seconds of the typical night (transport faults
// included, so sequencers hold frames) of n devices through the router and
// pipeline, and returns the heap the service's per-device state takes: the
// heap with the router and pipeline alive minus the heap after they are
// dropped, per device. The simulator's devices stay alive throughout, so
// they do not count.
func deviceStateBytes(t testing.TB, n int, seconds float64) float64 {
	sc := firmwaresim.DefaultScenario()
	sc.Encoding = "binary"
	start := time.Date(2026, 11, 27, 23, 0, 0, 0, time.UTC)
	run := firmwaresim.RunConfig{Devices: n, Seed: 11, Start: start, Scenario: sc}
	devs := make([]*firmwaresim.Device, n)
	bufs := make([][]byte, n)
	pending := make([]firmwaresim.Message, n)
	has := make([]bool, n)
	for i := range devs {
		devs[i] = run.Device(i)
	}
	topics := func(i int, s wire.Stream) string { return wire.Topic(wire.DefaultPrefix, devs[i].ID(), s) }

	pipe := pipeline.New(detect.DefaultConfig(), nil, nil, discardSink{})
	reg := prometheus.NewRegistry()
	r := ingest.NewRouter(ingest.Config{IdleTimeout: -1, MaxDevices: n}, pipe, ingest.NewMetrics(reg), nil)
	ctx := context.Background()
	// Step through the night 100 ms at a time, every device in turn, as
	// the broker would interleave them.
	for step := start.Add(100 * time.Millisecond); step.Sub(start).Seconds() <= seconds; step = step.Add(100 * time.Millisecond) {
		for i, d := range devs {
			for {
				if !has[i] {
					m, ok := d.Next(bufs[i])
					if !ok {
						break
					}
					bufs[i], pending[i], has[i] = m.Payload, m, true
				}
				if pending[i].End > step.UnixMicro() {
					break
				}
				if err := r.Feed(ctx, topics(i, pending[i].Stream), pending[i].Payload); err != nil {
					t.Fatal(err)
				}
				has[i] = false
			}
		}
	}
	// Let the shards finish, keeping the device state (Close would release
	// it): every queue empty on two looks 20 ms apart.
	for idle := 0; idle < 2; {
		time.Sleep(20 * time.Millisecond)
		if gaugeSum(t, reg, "crampwatch_ingest_queue_depth") == 0 {
			idle++
		} else {
			idle = 0
		}
	}
	runtime.GC()
	var live, freed runtime.MemStats
	runtime.ReadMemStats(&live)
	r.Close()
	if err := pipe.Close(ctx); err != nil {
		t.Fatal(err)
	}
	r, pipe = nil, nil
	runtime.GC()
	runtime.ReadMemStats(&freed)
	runtime.KeepAlive(devs)
	return float64(int64(live.HeapAlloc)-int64(freed.HeapAlloc)) / float64(n)
}

// TestDeviceStateSize checks one device's state in ingest and the
// pipeline (sequencers, detector filters and histories) stays under the
// 256 KiB budget that lets one instance hold thousands of devices.
func TestDeviceStateSize(t *testing.T) {
	per := deviceStateBytes(t, 1000, 10)
	t.Logf("per-device state: %.1f KiB", per/1024)
	if per > 256<<10 {
		t.Errorf("per-device state %.1f KiB, budget 256 KiB", per/1024)
	}
	if per < 1<<10 {
		t.Errorf("per-device state %.0f B: the measurement missed the detectors", per)
	}
}

// BenchmarkDeviceState reports the per-device state after 30 s of data:
// go test -run '^$' -bench DeviceState -benchtime 1x ./cmd/crampwatch/
func BenchmarkDeviceState(b *testing.B) {
	for range b.N {
		per := deviceStateBytes(b, 1000, 30)
		b.ReportMetric(per, "B/device")
	}
}

type discardSink struct{}

func (discardSink) Event(detect.Event)          {}
func (discardSink) Envelope(detect.Envelope)    {}
func (discardSink) Motion(detect.Motion)        {}
func (discardSink) Health(ingest.Health)        {}
func (discardSink) Close(context.Context) error { return nil }

func gaugeSum(t testing.TB, g prometheus.Gatherer, name string) float64 {
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetGauge().GetValue()
			}
		}
	}
	return sum
}

package pipeline_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crampwatch/crampwatch/detect"
	firmwaresim "github.com/crampwatch/crampwatch/firmware-sim"
	"github.com/crampwatch/crampwatch/ingest"
	"github.com/crampwatch/crampwatch/pipeline"
	"github.com/crampwatch/crampwatch/store"
	"github.com/crampwatch/crampwatch/wire"
)

// BenchmarkFramePath measures the whole per-frame path of the service
// after MQTT: ingest's router (copy, queue, decode, order), the pipeline
// with a real detector per device, and the InfluxDB sink encoding line
// protocol and posting batches (to an in-process server that discards
// them). One op is one frame; the frames are those of simulated nights
// (two EMG channels at 1 kHz, two IMUs at 50 Hz, 100 ms frames), so the
// detectors do their real work.
//
// Reported: ns and allocations per frame (all goroutines, the HTTP server
// included), allocations per sample, samples/s, and device-s/cpu-s: seconds
// of one device's data processed per second of CPU time (getrusage), i.e.
// how many devices one core keeps up with in real time. The re-encoding of
// frames between laps is excluded from all of them.
func BenchmarkFramePath(b *testing.B) {
	for _, tc := range []struct {
		name, encoding string
		influx         bool
	}{
		{"json/influx", "json", true},
		{"binary/influx", "binary", true},
		{"json/nosink", "json", false},
	} {
		b.Run(tc.name, func(b *testing.B) { benchFramePath(b, tc.encoding, tc.influx) })
	}
}

// Each lap feeds benchDevices devices' benchSeconds of data; laps continue
// the same streams (sequence numbers and sample times move on), so the
// detectors stay warm and the per-device state is set up once.
const (
	benchDevices = 100
	benchSeconds = 10
)

func benchFramePath(b *testing.B, encoding string, influx bool) {
	ring := newBenchRing(b, encoding, benchDevices, benchSeconds)
	var sinks []pipeline.Sink
	var reg *prometheus.Registry
	var sink *store.Influx
	if influx {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			w.WriteHeader(http.StatusNoContent)
		}))
		defer srv.Close()
		cfg := store.DefaultConfig()
		cfg.URL, cfg.Bucket = srv.URL, "bench/autogen"
		cfg.Logger = slog.New(slog.DiscardHandler)
		// Room for every point of the run: the benchmark measures the work,
		// and points dropped from a full queue would be work not done.
		cfg.QueueSize = max(b.N*2, 1000)
		reg = prometheus.NewRegistry()
		var err error
		if sink, err = store.New(cfg, reg); err != nil {
			b.Fatal(err)
		}
		sinks = append(sinks, sink)
	} else {
		sinks = append(sinks, discardSink{})
	}
	pipe := pipeline.New(detect.DefaultConfig(), nil, nil, sinks...)
	h := &countingHandler{Pipeline: pipe}
	r := ingest.NewRouter(ingest.Config{IdleTimeout: -1}, h, nil, nil)
	ctx := context.Background()

	var samples int64
	var excludedCPU time.Duration
	var excludedAllocs uint64
	allocs0 := mallocs()
	cpu0 := cpuTime()
	b.ReportAllocs()
	b.ResetTimer()
	fed := 0
	for lap := 0; fed < b.N; lap++ {
		if lap > 0 {
			// Re-encoding the next lap is not the service's work.
			for h.n.Load() < int64(fed) {
				time.Sleep(50 * time.Microsecond)
			}
			b.StopTimer()
			c, a := cpuTime(), mallocs()
			ring.encode(b, lap)
			excludedCPU += cpuTime() - c
			excludedAllocs += mallocs() - a
			b.StartTimer()
		}
		for i := range ring.msgs {
			if fed == b.N {
				break
			}
			m := &ring.msgs[i]
			if err := r.Feed(ctx, m.topic, m.payload); err != nil {
				b.Fatal(err)
			}
			samples += int64(m.samples)
			fed++
		}
	}
	r.Close()
	if err := pipe.Close(ctx); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	cpu := (cpuTime() - cpu0 - excludedCPU).Seconds()
	allocs := mallocs() - allocs0 - excludedAllocs
	if got := h.n.Load(); got != int64(b.N) {
		b.Fatalf("delivered %d of %d frames", got, b.N)
	}
	if influx {
		if d := counterSum(b, reg, "crampwatch_sink_dropped_total"); d > 0 {
			b.Fatalf("sink dropped %v points", d)
		}
	}
	b.ReportMetric(float64(samples)/b.Elapsed().Seconds(), "samples/s")
	b.ReportMetric(float64(b.N)/ring.framesPerDeviceS/cpu, "device-s/cpu-s")
	b.ReportMetric(float64(allocs)/float64(samples), "allocs/sample")
}

// benchMsg is one message of the ring: its frame, decoded once, and the
// payload of the current lap.
type benchMsg struct {
	topic   string
	emg     *wire.EMGFrame
	imu     *wire.IMUFrame
	count   uint32 // frames of this device stream in the ring: the lap's sequence shift
	samples int
	payload []byte
}

// benchRing is a fixed set of simulated frames, interleaved by sample time
// across devices as a broker would deliver them.
type benchRing struct {
	encoding         string
	msgs             []benchMsg
	spanUS           int64   // sample time covered by one lap
	framesPerDeviceS float64 // frames per second of one device's data
}

func newBenchRing(b *testing.B, encoding string, devices, seconds int) *benchRing {
	b.Helper()
	sc := firmwaresim.DefaultScenario()
	sc.Encoding = encoding
	// In-order streams without gaps: each lap must continue the last.
	sc.Transport.LossProb, sc.Transport.DupProb, sc.Artifacts.GapsPerNight = 0, 0, 0
	start := time.Date(2026, 11, 27, 23, 0, 0, 0, time.UTC)
	run := firmwaresim.RunConfig{Devices: devices, Seed: 3, Start: start, Scenario: sc}
	dec := wire.NewDecoder(0)
	end := start.Add(time.Duration(seconds) * time.Second).UnixMicro()
	type timed struct {
		m   benchMsg
		end int64
	}
	var all []timed
	for i := range devices {
		d := run.Device(i)
		counts := map[wire.Stream]uint32{}
		var mine []timed
		var buf []byte
		for {
			m, ok := d.Next(buf)
			if !ok || m.End > end {
				break
			}
			buf = m.Payload
			bm := benchMsg{topic: wire.Topic(wire.DefaultPrefix, d.ID(), m.Stream)}
			switch m.Stream {
			case wire.StreamEMG:
				var f wire.EMGFrame
				if err := dec.DecodeEMG(m.Payload, &f); err != nil {
					b.Fatal(err)
				}
				bm.emg = cloneEMG(&f)
				bm.samples = f.Len() * len(f.Channels)
			case wire.StreamIMU:
				var f wire.IMUFrame
				if err := dec.DecodeIMU(m.Payload, &f); err != nil {
					b.Fatal(err)
				}
				bm.imu = &wire.IMUFrame{Seq: f.Seq, T0: f.T0, Rate: f.Rate, Site: f.Site,
					Acc: slices.Clone(f.Acc), Gyr: slices.Clone(f.Gyr)}
				bm.samples = f.Len()
			default:
				continue // status: a few per night, not the hot path
			}
			counts[m.Stream]++
			mine = append(mine, timed{bm, m.End})
		}
		if err := d.Err(); err != nil {
			b.Fatal(err)
		}
		for j := range mine {
			if mine[j].m.emg != nil {
				mine[j].m.count = counts[wire.StreamEMG]
			} else {
				mine[j].m.count = counts[wire.StreamIMU]
			}
		}
		all = append(all, mine...)
	}
	slices.SortStableFunc(all, func(x, y timed) int { return int(x.end - y.end) })
	r := &benchRing{encoding: encoding, spanUS: int64(seconds) * 1e6}
	for _, t := range all {
		r.msgs = append(r.msgs, t.m)
	}
	r.framesPerDeviceS = float64(len(r.msgs)) / float64(devices*seconds)
	r.encode(b, 0)
	return r
}

func cloneEMG(f *wire.EMGFrame) *wire.EMGFrame {
	c := *f
	c.Channels = slices.Clone(f.Channels)
	c.Data = make([][]float64, len(f.Data))
	for i, row := range f.Data {
		c.Data[i] = slices.Clone(row)
	}
	return &c
}

// encode writes every payload for lap: sequence numbers and sample times
// move on by one ring per lap.
func (r *benchRing) encode(b *testing.B, lap int) {
	var err error
	for i := range r.msgs {
		m := &r.msgs[i]
		shift := uint32(lap) * m.count
		dt := int64(lap) * r.spanUS
		switch {
		case m.emg != nil:
			f := *m.emg
			f.Seq += shift
			f.T0 += dt
			if r.encoding == "json" {
				m.payload = wire.AppendEMGJSON(m.payload[:0], &f)
			} else if m.payload, err = wire.AppendEMGBinary(m.payload[:0], &f); err != nil {
				b.Fatal(err)
			}
		default:
			f := *m.imu
			f.Seq += shift
			f.T0 += dt
			if r.encoding == "json" {
				m.payload = wire.AppendIMUJSON(m.payload[:0], &f)
			} else if m.payload, err = wire.AppendIMUBinary(m.payload[:0], &f); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// countingHandler counts the EMG and IMU frames delivered to the pipeline.
type countingHandler struct {
	*pipeline.Pipeline
	n atomic.Int64
}

func (h *countingHandler) EMG(id string, f *wire.EMGFrame) {
	h.Pipeline.EMG(id, f)
	h.n.Add(1)
}

func (h *countingHandler) IMU(id string, f *wire.IMUFrame) {
	h.Pipeline.IMU(id, f)
	h.n.Add(1)
}

type discardSink struct{}

func (discardSink) Event(detect.Event)          {}
func (discardSink) Envelope(detect.Envelope)    {}
func (discardSink) Motion(detect.Motion)        {}
func (discardSink) Health(ingest.Health)        {}
func (discardSink) Close(context.Context) error { return nil }

// mallocs is the number of heap allocations so far.
func mallocs() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.Mallocs
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func counterSum(b *testing.B, g prometheus.Gatherer, name string) float64 {
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

package firmwaresim

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/crampwatch/crampwatch/wire"
)

type published struct {
	topic    string
	qos      byte
	retained bool
	payload  []byte
	at       time.Time
}

// recorder is a Publisher that keeps everything, and fails every failEvery-th call.
type recorder struct {
	mu        sync.Mutex
	msgs      []published
	calls     int
	failEvery int
}

func (r *recorder) Publish(ctx context.Context, topic string, qos byte, retained bool, payload []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	if r.failEvery > 0 && r.calls%r.failEvery == 0 {
		return errors.New("broker says no")
	}
	r.msgs = append(r.msgs, published{topic, qos, retained, bytes.Clone(payload), time.Now()})
	return nil
}

func shortRun() RunConfig {
	sc := DefaultScenario().WithHours(0.02)
	sc.SettleS = 5
	sc.Artifacts.GapsPerNight = 2
	return RunConfig{
		Prefix: "test/v1", Devices: 3, Seed: 99, Scenario: sc,
		Start: time.Date(2025, 11, 24, 23, 0, 0, 0, time.UTC),
	}
}

func TestRunPublishesEveryDevice(t *testing.T) {
	cfg := shortRun()
	cfg.TruthPath = filepath.Join(t.TempDir(), "truth.jsonl")
	pub := &recorder{failEvery: 97}
	st, err := Run(context.Background(), cfg, pub)
	if err != nil {
		t.Fatal(err)
	}
	if st.PublishErrors == 0 || st.Frames+st.PublishErrors != uint64(pub.calls) || st.Frames != uint64(len(pub.msgs)) {
		t.Fatalf("stats %+v, publisher saw %d calls, kept %d", st, pub.calls, len(pub.msgs))
	}
	f, err := os.Open(cfg.TruthPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	truth, err := ReadTruth(f)
	if err != nil || len(truth) != st.Truth || st.Truth == 0 {
		t.Fatalf("truth file: %d records, %v; stats say %d", len(truth), err, st.Truth)
	}
	// Each device's messages arrive in the order Next produces them, minus
	// the failed publishes.
	for i := range cfg.Devices {
		id := cfg.DeviceID(i)
		var got []published
		for _, m := range pub.msgs {
			if strings.Contains(m.topic, "/"+id+"/") {
				got = append(got, m)
			}
		}
		d := cfg.Device(i)
		var buf []byte
		j := 0
		for {
			m, ok := d.Next(buf)
			if !ok {
				break
			}
			buf = m.Payload
			if j < len(got) && bytes.Equal(got[j].payload, m.Payload) {
				want := wire.Topic("test/v1", id, m.Stream)
				if got[j].topic != want || got[j].qos != 1 || got[j].retained != (m.Stream == wire.StreamStatus) {
					t.Fatalf("device %s: message %d published as %q qos %d retained %v", id, j, got[j].topic, got[j].qos, got[j].retained)
				}
				j++
			}
		}
		if j != len(got) || j == 0 {
			t.Fatalf("device %s: %d of %d published messages matched Next's sequence", id, j, len(got))
		}
	}
}

func TestRunPacing(t *testing.T) {
	cfg := shortRun()
	cfg.Devices = 2
	cfg.Scenario = cfg.Scenario.WithHours(0.001) // 3.6 s of sample time
	cfg.Speed = 20                               // 180 ms of wall time
	cfg.Start = time.Now()
	pub := &recorder{}
	begin := time.Now()
	st, err := Run(context.Background(), cfg, pub)
	if err != nil {
		t.Fatal(err)
	}
	// No message may leave before its sample time has come (scaled by Speed).
	var dec wire.Decoder
	var f wire.EMGFrame
	for _, m := range pub.msgs {
		if !strings.HasSuffix(m.topic, "/emg") {
			continue
		}
		if err := dec.DecodeEMG(m.payload, &f); err != nil {
			t.Fatal(err)
		}
		// The frame's last sample, less the clock jitter, after the start.
		last := time.UnixMicro(f.End() - 2000).Sub(cfg.Start)
		if early := begin.Add(time.Duration(float64(last) / cfg.Speed)); m.at.Before(early) {
			t.Fatalf("frame %d published %v before its time", f.Seq, early.Sub(m.at))
		}
	}
	if st.Frames == 0 {
		t.Fatal("nothing published")
	}
}

func TestRunCancel(t *testing.T) {
	cfg := shortRun()
	cfg.Speed = 1 // 72 s of real time: only cancellation ends it
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	st, err := Run(ctx, cfg, &recorder{})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want the context's", err)
	}
	if st.Frames == 0 {
		t.Fatal("nothing published before cancellation")
	}
}

func TestRunConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*RunConfig)
	}{
		{"no devices", func(c *RunConfig) { c.Devices = 0 }},
		{"negative speed", func(c *RunConfig) { c.Speed = -1 }},
		{"bad device prefix", func(c *RunConfig) { c.DevicePrefix = "a/b" }},
		{"bad scenario", func(c *RunConfig) { c.Scenario.Rate = 10 }},
		{"truth path", func(c *RunConfig) { c.TruthPath = "/nonexistent/dir/truth.jsonl" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := shortRun()
			tc.edit(&cfg)
			pub := &recorder{}
			if _, err := Run(context.Background(), cfg, pub); err == nil {
				t.Fatal("no error")
			}
			if len(pub.msgs) != 0 {
				t.Fatal("published despite the error")
			}
		})
	}
}

type discard struct{}

func (discard) Publish(context.Context, string, byte, bool, []byte) error { return nil }

// BenchmarkRun measures Run as a load generator: device-seconds of sample
// time generated and published (to a publisher that drops everything) per
// second of CPU time actually used (getrusage, so other load on the machine
// does not count). Real time for N devices needs N device-s per second.
func BenchmarkRun(b *testing.B) {
	for _, enc := range []string{"json", "binary"} {
		b.Run(enc, func(b *testing.B) {
			cfg := shortRun()
			cfg.Devices = 20
			cfg.Scenario.Encoding = enc
			cfg.Scenario = cfg.Scenario.WithHours(60.0 / 3600)
			b.ReportAllocs()
			var frames uint64
			cpu0 := cpuTime()
			for range b.N {
				st, err := Run(context.Background(), cfg, discard{})
				if err != nil {
					b.Fatal(err)
				}
				frames += st.Frames
			}
			cpu := (cpuTime() - cpu0).Seconds()
			b.ReportMetric(float64(b.N*cfg.Devices)*60/cpu, "device-s/cpu-s")
			b.ReportMetric(float64(frames)/cpu, "msgs/cpu-s")
		})
	}
}

// cpuTime returns the user and system CPU time used by the process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

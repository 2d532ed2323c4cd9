package evaluate

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"slices"
	"testing"

	"github.com/crampwatch/crampwatch/detect"
	firmwaresim "github.com/crampwatch/crampwatch/firmware-sim"
)

// shortOptions is a few short nights with cramps every minute.
func shortOptions() Options {
	sc := firmwaresim.DefaultScenario()
	sc.SettleS = 30
	sc.Cramps.EveryS = 60
	sc.Cramps.DurationS = firmwaresim.Range{5, 40}
	sc.Cramps.DurationMedianS = 15
	return Options{Nights: 3, Seed: 7, Scenario: sc, Hours: 0.1}
}

func TestRunDeterministic(t *testing.T) {
	var runs []Report
	var events, truths [][]byte
	for range 2 {
		o := shortOptions()
		var tb, eb bytes.Buffer
		o.Truth, o.Events = &tb, &eb
		r, err := Run(context.Background(), o)
		if err != nil {
			t.Fatal(err)
		}
		runs = append(runs, r)
		truths = append(truths, tb.Bytes())
		events = append(events, eb.Bytes())
	}
	a, b := runs[0], runs[1]
	if a.Cramps < 10 || a.CrampDetections == 0 || a.Ingest.FramesIn == 0 {
		t.Fatalf("implausible report %+v", a)
	}
	if a.Ingest.Rejected != 0 {
		t.Errorf("ingest rejected %d simulated frames", a.Ingest.Rejected)
	}
	if !(a.SamplesPerSecond > 0) || math.Abs(a.Hours-0.3) > 1e-9 {
		t.Errorf("throughput %v over %v h", a.SamplesPerSecond, a.Hours)
	}
	for _, r := range []*Report{&a, &b} {
		r.SamplesPerSecond, r.RealtimeFactor, r.WallS = 0, 0, 0
	}
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	if !bytes.Equal(ja, jb) {
		t.Errorf("two runs with the same options differ:\n%+v\n%+v", a, b)
	}
	if !bytes.Equal(truths[0], truths[1]) || !bytes.Equal(events[0], events[1]) || len(events[0]) == 0 {
		t.Error("truth or event lines differ between runs")
	}
	// Night i is device i of the run seed, as `crampwatch sim` would send it.
	got, err := firmwaresim.ReadTruth(bytes.NewReader(truths[0]))
	if err != nil {
		t.Fatal(err)
	}
	o := shortOptions()
	rc := firmwaresim.RunConfig{DevicePrefix: "night-", Seed: o.Seed, Scenario: o.EffectiveScenario(), Start: DefaultStart}
	var want []firmwaresim.Truth
	for i := range o.Nights {
		want = append(want, rc.Device(i).Truth()...)
	}
	if len(got) != len(want) {
		t.Fatalf("truth has %d records, devices %d", len(got), len(want))
	}
	for i := range got {
		if got[i].Device != want[i].Device || !got[i].Onset.Equal(want[i].Onset) || got[i].Kind != want[i].Kind {
			t.Fatalf("truth %d: %+v, device says %+v", i, got[i], want[i])
		}
	}
}

func TestEffectiveScenario(t *testing.T) {
	o := Options{Rate: 2000, Mains: 60, Gain: 0.5, Hours: 2}
	sc := o.EffectiveScenario()
	def := firmwaresim.DefaultScenario()
	if sc.Rate != 2000 || sc.Mains != 60 || sc.Hours != 2 || sc.Wearer.Gain != (firmwaresim.Range{def.Wearer.Gain[0] / 2, def.Wearer.Gain[1] / 2}) {
		t.Fatalf("overrides not applied: %+v", sc)
	}
	if sc.Cramps.PerNight != def.Cramps.PerNight/4 {
		t.Fatalf("2 h of an 8 h night should have a quarter of its cramps: %v", sc.Cramps.PerNight)
	}
}

func TestRunErrors(t *testing.T) {
	bad := detect.DefaultConfig()
	bad.EnvelopeRate = -1
	for _, tc := range []struct {
		name string
		edit func(*Options)
	}{
		{"no nights", func(o *Options) { o.Nights = 0 }},
		{"bad rate", func(o *Options) { o.Rate = 100 }},
		{"bad mains", func(o *Options) { o.Mains = 55 }},
		{"bad detector", func(o *Options) { o.Detect = &bad }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := shortOptions()
			tc.edit(&o)
			if _, err := Run(context.Background(), o); err == nil {
				t.Fatal("no error")
			}
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Run(ctx, shortOptions()); err == nil {
		t.Fatal("a cancelled run reported success")
	}
}

// BenchmarkRun measures evaluation throughput: EMG samples (all channels)
// through simulation, ingest and detection per second.
func BenchmarkRun(b *testing.B) {
	o := shortOptions()
	o.Nights = 4
	var sps []float64
	for range b.N {
		r, err := Run(context.Background(), o)
		if err != nil {
			b.Fatal(err)
		}
		sps = append(sps, float64(r.SamplesPerSecond))
	}
	slices.Sort(sps)
	b.ReportMetric(sps[len(sps)/2], "samples/s")
}

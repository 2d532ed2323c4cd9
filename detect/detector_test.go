package detect

import (
	"fmt"
	"math"
	"reflect"
	"runtime"
	"testing"

	"github.com/crampwatch/crampwatch/wire"
)

var rates = []float64{250, 500, 1000, 2000, 4000}

// plmSeries is n bursts of dur seconds every period seconds from start.
func plmSeries(start float64, n int, period, dur, amp float64) []burstSpec {
	var bs []burstSpec
	for i := 0; i < n; i++ {
		bs = append(bs, burstSpec{start: start + float64(i)*period, dur: dur, amp: amp, ramp: 0.2})
	}
	return bs
}

func withMove(bs []burstSpec, g float64) []burstSpec {
	for i := range bs {
		bs[i].move = g
	}
	return bs
}

// expect is what a scenario must produce.
type expect struct {
	cramps    int // cramp events (each reported ongoing and ended)
	plm       int
	movements int // at least this many movement events; 0 = none allowed
	artifacts int // at least this many artifact events; 0 = none allowed
	cause     string
	// For cramps: true onset and duration of the first cramp.
	crampOnset, crampDur float64
	maxLatency           float64
}

type scenario struct {
	name string
	n    night
	want expect
}

func scenarios(rate, gain float64) []scenario {
	both := []wire.Site{shankL, shankR}
	return []scenario{
		{"rest", night{durS: 180, chans: []chanSpec{{id: calfL}, {id: calfR}}, sites: both}, expect{}},
		{"cramp 30s gradual onset", night{durS: 150, chans: []chanSpec{
			{id: calfL, bursts: []burstSpec{{start: 80, dur: 30, amp: 150, ramp: 1.5}}},
			{id: calfR}}, sites: both},
			expect{cramps: 1, crampOnset: 80, crampDur: 30, maxLatency: 5}},
		{"cramp 5s strong", night{durS: 120, chans: []chanSpec{
			{id: calfL, bursts: []burstSpec{{start: 70, dur: 5, amp: 200, ramp: 0.5}}}}, sites: both},
			expect{cramps: 1, crampOnset: 70, crampDur: 5, maxLatency: 3.5}},
		{"cramp 40s moderate", night{durS: 150, chans: []chanSpec{
			{id: calfR, bursts: []burstSpec{{start: 70, dur: 40, amp: 55, ramp: 2}}}}, sites: both},
			expect{cramps: 1, crampOnset: 70, crampDur: 40, maxLatency: 7}},
		{"cramp without IMU", night{durS: 150, chans: []chanSpec{
			{id: hamL, bursts: []burstSpec{{start: 70, dur: 25, amp: 150, ramp: 1}}}}},
			expect{cramps: 1, crampOnset: 70, crampDur: 25, maxLatency: 6}},
		{"plm 5 x 2s every 25s", night{durS: 220, chans: []chanSpec{
			{id: calfL, bursts: plmSeries(60, 5, 25, 2, 40)}, {id: calfR}}, sites: both},
			expect{plm: 5}},
		{"plm strong bilateral", night{durS: 220, chans: []chanSpec{
			{id: calfL, bursts: plmSeries(60, 6, 20, 1.5, 90)},
			{id: calfR, bursts: plmSeries(60.2, 6, 20, 1.5, 70)}}, sites: both},
			expect{plm: 6}},
		{"turning over", night{durS: 120, chans: []chanSpec{
			{id: calfL, bursts: []burstSpec{{start: 70, dur: 3, amp: 80, ramp: 0.3}}},
			{id: calfR, bursts: []burstSpec{{start: 70.1, dur: 3, amp: 80, ramp: 0.3}}}},
			sites: both, moves: []rotation{{wire.Left, 69.8, 2, 120}, {wire.Right, 69.8, 2, 120}}},
			expect{movements: 2}},
		{"getting up, long", night{durS: 150, chans: []chanSpec{
			{id: calfL, bursts: []burstSpec{{start: 70, dur: 40, amp: 120, ramp: 0.5}}}},
			sites: both, moves: []rotation{{wire.Left, 69.9, 1.5, 80}}},
			expect{movements: 1}},
		{"flat line", night{durS: 120, chans: []chanSpec{{id: calfL}},
			flat: []segment{{calfL, 60, 20}}, sites: both},
			expect{artifacts: 1, cause: CauseFlatLine}},
		{"railed", night{durS: 120, chans: []chanSpec{{id: calfL}},
			rail: []segment{{calfL, 60, 10}}, sites: both},
			expect{artifacts: 1, cause: CauseSaturation}},
		{"clipping", night{durS: 120, chans: []chanSpec{{id: calfL}},
			clip: []segment{{calfL, 60, 10}}, sites: both},
			expect{artifacts: 1, cause: CauseSaturation}},
		{"lead-off", night{durS: 120, chans: []chanSpec{{id: calfL}},
			leadOff: []segment{{calfL, 60, 15}}, sites: both},
			expect{artifacts: 1, cause: CauseLeadOff}},
		{"strong 60 Hz hum", night{durS: 150, humHz: 60, chans: []chanSpec{{id: calfL}},
			strongHum: []segment{{calfL, 60, 30}}, sites: both},
			expect{artifacts: 1, cause: CauseMainsHum}},
		{"cramp with 60 Hz hum", night{durS: 150, humHz: 60, humUV: 4, chans: []chanSpec{
			{id: calfL, bursts: []burstSpec{{start: 80, dur: 30, amp: 150, ramp: 1.5}}}}, sites: both},
			expect{cramps: 1, crampOnset: 80, crampDur: 30, maxLatency: 5}},
	}
}

func TestScenarios(t *testing.T) {
	for _, gain := range []float64{1, 0.5, 2} {
		for _, rate := range rates {
			if gain != 1 && rate != 1000 && rate != 250 {
				continue
			}
			for i, sc := range scenarios(rate, gain) {
				name := fmt.Sprintf("%s/%gHz/gain%g", sc.name, rate, gain)
				t.Run(name, func(t *testing.T) {
					n := sc.n
					n.rate, n.gain, n.seed = rate, gain, uint64(i)+uint64(rate)
					rec := n.run(t, DefaultConfig())
					check(t, rec, sc.want)
				})
			}
		}
	}
}

func check(t *testing.T, rec *recorder, w expect) {
	t.Helper()
	all := describe(append([]Event(nil), rec.events...))
	ongoing, ended := rec.count(KindCramp, StateOngoing), rec.count(KindCramp, StateEnded)
	if ongoing != w.cramps || ended != w.cramps {
		t.Fatalf("cramps: %d ongoing, %d ended, want %d each; events:%s", ongoing, ended, w.cramps, all)
	}
	if got := rec.count(KindPLM, StateEnded); got != w.plm {
		t.Errorf("plm: %d, want %d; events:%s", got, w.plm, all)
	}
	mv := rec.count(KindMovement, StateEnded)
	if (w.movements == 0 && mv > 0) || mv < w.movements {
		t.Errorf("movements: %d, want %d; events:%s", mv, w.movements, all)
	}
	arts := rec.kinds(KindArtifact)
	if (w.artifacts == 0 && len(arts) > 0) || len(arts) < w.artifacts {
		t.Errorf("artifacts: %d, want %d; events:%s", len(arts), w.artifacts, all)
	}
	if w.cause != "" && len(arts) > 0 && arts[0].Cause != w.cause {
		t.Errorf("artifact cause %q, want %q; events:%s", arts[0].Cause, w.cause, all)
	}
	if w.cramps == 0 {
		return
	}
	var on, end *Event
	for i := range rec.events {
		e := &rec.events[i]
		if e.Kind != KindCramp {
			continue
		}
		if e.State == StateOngoing && on == nil {
			on = e
		}
		if e.State == StateEnded && end == nil {
			end = e
		}
	}
	if !on.Onset.Equal(end.Onset) {
		t.Errorf("ongoing and ended onsets differ: %v vs %v", on.Onset, end.Onset)
	}
	if lat := rel(on.ConfirmedAt) - w.crampOnset; lat < 0 || lat > w.maxLatency {
		t.Errorf("alert latency %.2f s, want 0..%.1f; events:%s", lat, w.maxLatency, all)
	}
	if d := math.Abs(end.DurationS - w.crampDur); d > 1.5 {
		t.Errorf("duration %.2f s, want %.1f +- 1.5; events:%s", end.DurationS, w.crampDur, all)
	}
	if d := math.Abs(rel(end.Onset) - w.crampOnset); d > 1 {
		t.Errorf("onset %.2f s, want %.1f +- 1; events:%s", rel(end.Onset), w.crampOnset, all)
	}
	if end.Confidence <= 0 || end.Confidence > 1 || end.PeakUV <= end.MeanUV || end.MedianFreqHz <= 0 {
		t.Errorf("implausible features: %s", describe([]Event{*end}))
	}
}

func TestDeterminism(t *testing.T) {
	sc := scenarios(1000, 1)[5] // PLM: many events
	sc.n.rate = 1000
	a := sc.n.run(t, DefaultConfig())
	b := sc.n.run(t, DefaultConfig())
	if len(a.events) == 0 {
		t.Fatal("no events to compare")
	}
	if !reflect.DeepEqual(a.events, b.events) {
		t.Fatalf("replays differ:%s\nvs%s", describe(a.events), describe(b.events))
	}
	if a.envelopes != b.envelopes || a.motions != b.motions {
		t.Fatalf("output counts differ: %d/%d vs %d/%d", a.envelopes, a.motions, b.envelopes, b.motions)
	}
}

func TestMoreScenarios(t *testing.T) {
	both := []wire.Site{shankL, shankR}
	tests := []scenario{
		{"bilateral cramps are two events", night{durS: 150, chans: []chanSpec{
			{id: calfL, bursts: []burstSpec{{start: 80, dur: 30, amp: 150, ramp: 1}}},
			{id: calfR, bursts: []burstSpec{{start: 80.3, dur: 30, amp: 150, ramp: 1}}}}, sites: both},
			expect{cramps: 2, crampOnset: 80, crampDur: 30, maxLatency: 6}},
		{"cramp in a PLM series waits past an LM", night{durS: 250, chans: []chanSpec{
			{id: calfL, bursts: append(plmSeries(60, 5, 22, 2, 40),
				burstSpec{start: 170, dur: 30, amp: 150, ramp: 1})}}, sites: both},
			expect{plm: 5, cramps: 1, crampOnset: 170, crampDur: 30, maxLatency: 11.5}},
		{"strong PLM that moves the leg is not a cramp", night{durS: 220, chans: []chanSpec{
			{id: calfL, bursts: withMove(plmSeries(60, 6, 20, 4, 150), 0.04)}}, sites: both},
			expect{plm: 6}},
		{"cramp with forced leg motion waits past an LM", night{durS: 150, chans: []chanSpec{
			{id: calfL, bursts: []burstSpec{{start: 70, dur: 40, amp: 150, ramp: 1, move: 0.04}}}}, sites: both},
			expect{cramps: 1, crampOnset: 70, crampDur: 40, maxLatency: 11.5}},
		{"short burst is nothing", night{durS: 100, chans: []chanSpec{
			{id: calfL, bursts: []burstSpec{{start: 60, dur: 0.3, amp: 200}}}}, sites: both},
			expect{}},
		{"isolated LMs are not PLM", night{durS: 200, chans: []chanSpec{
			{id: calfL, bursts: []burstSpec{{start: 60, dur: 2, amp: 40, ramp: 0.2}, {start: 65, dur: 2, amp: 40, ramp: 0.2},
				{start: 160, dur: 2, amp: 40, ramp: 0.2}}}}, sites: both},
			expect{}},
		{"series broken by a long pause", night{durS: 400, chans: []chanSpec{
			{id: calfL, bursts: append(plmSeries(60, 3, 20, 2, 40), plmSeries(250, 4, 20, 2, 40)...)}}, sites: both},
			expect{plm: 4}},
		{"sustained weak tonic activity is not a cramp", night{durS: 150, chans: []chanSpec{
			{id: calfL, bursts: []burstSpec{{start: 60, dur: 40, amp: 12, ramp: 1}}}}, sites: both},
			expect{}},
	}
	for _, rate := range []float64{500, 2000} {
		for i, sc := range tests {
			t.Run(fmt.Sprintf("%s/%gHz", sc.name, rate), func(t *testing.T) {
				n := sc.n
				n.rate, n.seed = rate, uint64(100+i)
				check(t, n.run(t, DefaultConfig()), sc.want)
			})
		}
	}
}

// feedRest sends secs seconds of resting EMG on chans from start.
func feedRest(d *Detector, rate float64, chans []wire.Channel, start, secs float64, amp float64) {
	n := int(rate / 10)
	f := &wire.EMGFrame{Rate: rate, Unit: wire.Microvolt, Channels: chans, Data: make([][]float64, len(chans))}
	for i := range f.Data {
		f.Data[i] = make([]float64, n)
	}
	rng := newTestRand(uint64(start))
	for k := 0; k < int(secs*10); k++ {
		f.T0 = t0 + int64((start+float64(k)/10)*1e6)
		for _, row := range f.Data {
			for i := range row {
				row[i] = amp * rng.NormFloat64()
			}
		}
		d.EMG(f)
	}
}

func TestGapEndsCrampAndIsReported(t *testing.T) {
	rec := &recorder{}
	d := New("dev1", DefaultConfig(), rec)
	feedRest(d, 1000, []wire.Channel{calfL}, 0, 60, 3)
	feedRest(d, 1000, []wire.Channel{calfL}, 60, 10, 150) // cramp, no IMU
	d.Gap(wire.StreamEMG, t0+70_000_000, t0+75_000_000)
	feedRest(d, 1000, []wire.Channel{calfL}, 75, 20, 3)
	d.Close(t0 + 95_000_000)
	if rec.count(KindCramp, StateOngoing) != 1 || rec.count(KindCramp, StateEnded) != 1 {
		t.Fatalf("want one cramp ongoing and ended:%s", describe(rec.events))
	}
	for _, e := range rec.kinds(KindCramp) {
		if e.State == StateEnded && (rel(e.End) > 70.01 || rel(e.End) < 69) {
			t.Errorf("cramp should end at the gap (70 s), ended at %.2f", rel(e.End))
		}
	}
	gaps := rec.kinds(KindArtifact)
	if len(gaps) != 1 || gaps[0].Cause != CauseGap || rel(gaps[0].Onset) != 70 || rel(gaps[0].End) != 75 {
		t.Fatalf("want one gap artifact 70..75 s:%s", describe(rec.events))
	}
	// A short gap is not an artifact.
	n := len(rec.events)
	d.Gap(wire.StreamEMG, t0+95_000_000, t0+95_500_000)
	if len(rec.events) != n {
		t.Errorf("a 0.5 s gap was reported:%s", describe(rec.events[n:]))
	}
}

func TestChannelAppearsLaterAndRateChanges(t *testing.T) {
	rec := &recorder{}
	d := New("dev1", DefaultConfig(), rec)
	feedRest(d, 1000, []wire.Channel{calfL}, 0, 40, 3)
	feedRest(d, 1000, []wire.Channel{calfL, calfR}, 40, 40, 3)
	feedRest(d, 2000, []wire.Channel{calfL, calfR}, 80, 40, 3)
	d.Close(t0 + 120_000_000)
	if len(rec.events) != 0 {
		t.Fatalf("rest gave events:%s", describe(rec.events))
	}
	for _, id := range []wire.Channel{calfL, calfR} {
		e, ok := rec.lastEnv[id]
		if !ok {
			t.Fatalf("no envelope for %s", id)
		}
		// White noise of 3 uV RMS: the band 20-450 Hz holds 43 % of its power at 2 kHz.
		if e.RMSUV < 1.5 || e.RMSUV > 2.5 || e.BaselineUV < 1 || e.BaselineUV > 2.5 {
			t.Errorf("%s: envelope %.2f uV, baseline %.2f uV, want about 2", id, e.RMSUV, e.BaselineUV)
		}
	}
	if d.rate != 2000 || d.chans[0].chain.rate != 2000 {
		t.Errorf("chains not redesigned for 2 kHz")
	}
}

func TestStatusLeadOff(t *testing.T) {
	rec := &recorder{}
	d := New("dev1", DefaultConfig(), rec)
	feedRest(d, 500, []wire.Channel{calfL}, 0, 40, 3)
	d.LeadOff(t0+40_000_000, []wire.Channel{calfL})
	feedRest(d, 500, []wire.Channel{calfL}, 40, 10, 3) // looks fine, but the device says off
	d.LeadOff(t0+50_000_000, nil)
	feedRest(d, 500, []wire.Channel{calfL}, 50, 10, 3)
	d.Close(t0 + 60_000_000)
	a := rec.kinds(KindArtifact)
	if len(a) != 1 || a[0].Cause != CauseLeadOff || rel(a[0].Onset) != 40 || math.Abs(rel(a[0].End)-50) > 0.2 {
		t.Fatalf("want one lead_off artifact 40..50 s:%s", describe(rec.events))
	}
}

func TestSnapshotRestore(t *testing.T) {
	rec := &recorder{}
	d := New("dev1", DefaultConfig(), rec)
	feedRest(d, 1000, []wire.Channel{calfL}, 0, 60, 6)
	snap, err := d.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	d2 := New("dev1", DefaultConfig(), &recorder{})
	if err := d2.Restore(snap); err != nil {
		t.Fatal(err)
	}
	ch := d2.channel(calfL)
	if got, want := ch.level, d.chans[0].level; math.Abs(got-want) > 0.05*want {
		t.Errorf("restored baseline %.2f, want %.2f", got, want)
	}
	if ch.base.learnt < DefaultConfig().WarmupS {
		t.Errorf("restored channel is warming up again")
	}
	if err := d2.Restore(snap); err == nil {
		t.Error("Restore after data: want error")
	}
	for _, bad := range []string{``, `{}`, `{"version":1,"mains_hz":55}`, `{"version":2,"mains_hz":50}`,
		`{"version":1,"mains_hz":50,"channels":[{"channel":"nose_left","baseline_uv":3}]}`,
		`{"version":1,"mains_hz":50,"channels":[{"channel":"calf_left","baseline_uv":-3}]}`} {
		if err := New("x", DefaultConfig(), &recorder{}).Restore([]byte(bad)); err == nil {
			t.Errorf("Restore(%q): want error", bad)
		}
	}
}

func FuzzRestore(f *testing.F) {
	f.Add([]byte(`{"version":1,"mains_hz":60,"channels":[{"channel":"calf_left","baseline_uv":3.2,"learnt_s":100}]}`))
	f.Add([]byte(`{"version":1,"mains_hz":50}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		d := New("x", DefaultConfig(), &recorder{})
		if d.Restore(data) != nil {
			return
		}
		// Whatever was accepted must leave a working detector.
		feedRest(d, 250, []wire.Channel{calfL, calfR}, 0, 2, 3)
		d.Close(t0 + 2_000_000)
	})
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	tests := []struct {
		name string
		mod  func(*Config)
	}{
		{"zero envelope rate", func(c *Config) { c.EnvelopeRate = 0 }},
		{"band inverted", func(c *Config) { c.BandHighHz = 10 }},
		{"mains 55", func(c *Config) { c.MainsHz = 55 }},
		{"NaN threshold", func(c *Config) { c.OnsetMinUV = math.NaN() }},
		{"no hysteresis", func(c *Config) { c.ReleaseK = 2 }},
		{"weak before LM max", func(c *Config) { c.WeakConfirmS = 8 }},
		{"tiers out of order", func(c *Config) { c.StrongRatio = 5 }},
		{"percentile 1", func(c *Config) { c.BaselinePercentile = 1 }},
		{"PLM run 1", func(c *Config) { c.PLMMinRun = 1 }},
	}
	for _, tc := range tests {
		c := DefaultConfig()
		tc.mod(&c)
		if c.Validate() == nil {
			t.Errorf("%s: want error", tc.name)
		}
	}
}

func TestStateIsBounded(t *testing.T) {
	// Four channels at the highest rate and four IMU sites: the largest
	// device. Measure what the detector holds after a while.
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	d := New("dev1", DefaultConfig(), &discard{})
	chans := []wire.Channel{calfL, calfR, hamL, {Muscle: wire.Tibialis, Side: wire.Right}}
	feedRest(d, 4000, chans, 0, 3, 3)
	imu := &wire.IMUFrame{Rate: 100, T0: t0, Acc: make([][3]float64, 10), Gyr: make([][3]float64, 10)}
	for _, s := range []wire.Site{shankL, shankR, {Segment: wire.Thigh, Side: wire.Left}, {Segment: wire.Thigh, Side: wire.Right}} {
		imu.Site = s
		d.IMU(imu)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	used := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	if used > 256<<10 {
		t.Errorf("detector holds %d KiB, want < 256 KiB", used>>10)
	}
	t.Logf("detector state: %d KiB", used>>10)
	runtime.KeepAlive(d)
}

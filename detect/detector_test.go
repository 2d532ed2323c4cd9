package detect

import (
	"fmt"
	"math"
	"reflect"
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
		{"cramp with 60 Hz hum", night{durS: 150, humHz: 60, humUV: 60, chans: []chanSpec{
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

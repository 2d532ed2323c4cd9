package detect

import (
	"fmt"
	"slices"
	"testing"

	"github.com/crampwatch/crampwatch/wire"
)

var (
	hamR      = wire.Channel{Muscle: wire.Hamstring, Side: wire.Right}
	fourChans = []wire.Channel{calfL, hamL, calfR, hamR}
)

// crosstalkOf is what another channel of the same leg picks up from bs: the
// same contraction at ratio of its amplitude.
func crosstalkOf(bs []burstSpec, ratio float64) []burstSpec {
	out := slices.Clone(bs)
	for i := range out {
		out[i].amp *= ratio
	}
	return out
}

// fourChannelNight is a night with calf and hamstring on both legs and a
// shank IMU per leg; bursts maps channels to their activity.
func fourChannelNight(durS float64, bursts map[wire.Channel][]burstSpec) night {
	n := night{durS: durS, sites: []wire.Site{shankL, shankR}}
	for _, id := range fourChans {
		n.chans = append(n.chans, chanSpec{id: id, bursts: bursts[id]})
	}
	return n
}

// TestCrosstalk checks that a cramp seen on another channel of the same leg
// is one cramp, while real cramps of two muscles stay two.
func TestCrosstalk(t *testing.T) {
	calfCramp := []burstSpec{{start: 80, dur: 60, amp: 400, ramp: 1.5}}
	fastCalf := []burstSpec{{start: 80, dur: 40, amp: 400, ramp: 0.2}}
	hamCramp := []burstSpec{{start: 80, dur: 45, amp: 300, ramp: 1}}
	plm := plmSeries(60, 5, 25, 2, 60)
	tests := []struct {
		name   string
		n      night
		cramps []wire.Channel // channels with exactly one cramp, reported ongoing and ended
		plm    int
		// alertBy is the latest time (seconds into the night) at which the
		// first channel of cramps may be confirmed; 0: not checked.
		alertBy float64
	}{
		{"calf cramp seen on the hamstring at 8 %", fourChannelNight(200, map[wire.Channel][]burstSpec{
			calfL: calfCramp, hamL: crosstalkOf(calfCramp, 0.08)}),
			[]wire.Channel{calfL}, 0, 82.6},
		{"calf cramp seen on the hamstring at 25 %", fourChannelNight(200, map[wire.Channel][]burstSpec{
			calfL: calfCramp, hamL: crosstalkOf(calfCramp, 0.25)}),
			[]wire.Channel{calfL}, 0, 82.6},
		{"hamstring cramp seen on the calf", fourChannelNight(200, map[wire.Channel][]burstSpec{
			hamL: hamCramp, calfL: crosstalkOf(hamCramp, 0.1)}),
			[]wire.Channel{hamL}, 0, 82.6},
		// The crosstalk crosses its threshold with the cramp; it must not
		// count as a second muscle starting together (which would hold the
		// alert back to the moderate tier).
		{"fast onset: crosstalk does not delay the alert", fourChannelNight(160, map[wire.Channel][]burstSpec{
			calfL: fastCalf, hamL: crosstalkOf(fastCalf, 0.15)}),
			[]wire.Channel{calfL}, 0, 82.4},
		{"calf and hamstring cramp together, both strong", fourChannelNight(200, map[wire.Channel][]burstSpec{
			calfL: calfCramp, hamL: {{start: 80, dur: 45, amp: 250, ramp: 1}}}),
			[]wire.Channel{calfL, hamL}, 0, 85.5},
		{"hamstring cramps during a calf cramp", fourChannelNight(200, map[wire.Channel][]burstSpec{
			calfL: calfCramp,
			hamL:  append(crosstalkOf(calfCramp, 0.08), burstSpec{start: 100, dur: 30, amp: 250, ramp: 1})}),
			[]wire.Channel{hamL, calfL}, 0, 112},
		// Onset order: the weaker cramp was there first, on its own.
		{"weaker hamstring cramp started before the calf's", fourChannelNight(200, map[wire.Channel][]burstSpec{
			hamL:  {{start: 80, dur: 40, amp: 60, ramp: 1}},
			calfL: {{start: 82, dur: 40, amp: 600, ramp: 1}}}),
			[]wire.Channel{hamL, calfL}, 0, 85.5},
		{"PLM series seen on the hamstring", fourChannelNight(220, map[wire.Channel][]burstSpec{
			calfL: plm, hamL: crosstalkOf(plm, 0.1)}),
			nil, 5, 0},
		// Crosstalk needs one leg: a weak cramp on the other leg is its own.
		{"weak cramp on the other leg with a strong one", fourChannelNight(200, map[wire.Channel][]burstSpec{
			calfL: {{start: 80, dur: 40, amp: 800, ramp: 1}},
			calfR: {{start: 80.2, dur: 40, amp: 60, ramp: 1}}}),
			[]wire.Channel{calfR, calfL}, 0, 85.5},
	}
	for _, rate := range []float64{500, 2000} {
		for i, tc := range tests {
			t.Run(fmt.Sprintf("%s/%gHz", tc.name, rate), func(t *testing.T) {
				n := tc.n
				n.rate, n.seed = rate, uint64(300+i)
				rec := n.run(t, DefaultConfig())
				all := describe(append([]Event(nil), rec.events...))
				var ongoing, ended []wire.Channel
				for _, e := range rec.kinds(KindCramp) {
					if e.State == StateOngoing {
						ongoing = append(ongoing, e.Channel)
					} else {
						ended = append(ended, e.Channel)
					}
				}
				want := slices.SortedFunc(slices.Values(tc.cramps), cmpChannel)
				for _, got := range [][]wire.Channel{ongoing, ended} {
					if slices.SortFunc(got, cmpChannel); !slices.Equal(got, want) {
						t.Fatalf("cramps on %v (ongoing) and %v (ended), want one each on %v; events:%s", ongoing, ended, want, all)
					}
				}
				if got := rec.count(KindPLM, StateEnded); got != tc.plm {
					t.Errorf("plm: %d, want %d; events:%s", got, tc.plm, all)
				}
				for _, e := range rec.kinds(KindPLM) {
					if e.Channel != calfL {
						t.Errorf("plm on %v, want it on the calf whose movement it is; events:%s", e.Channel, all)
					}
				}
				if got := len(rec.kinds(KindMovement)) + len(rec.kinds(KindArtifact)); got != 0 {
					t.Errorf("%d movement or artifact events, want none; events:%s", got, all)
				}
				if tc.alertBy > 0 {
					for _, e := range rec.kinds(KindCramp) {
						if e.Channel == tc.cramps[0] && e.State == StateOngoing && rel(e.ConfirmedAt) > tc.alertBy {
							t.Errorf("%v confirmed at %.2f s, want by %.1f s; events:%s", e.Channel, rel(e.ConfirmedAt), tc.alertBy, all)
						}
					}
				}
			})
		}
	}
}

func cmpChannel(a, b wire.Channel) int {
	if a.Side != b.Side {
		return int(a.Side) - int(b.Side)
	}
	return int(a.Muscle) - int(b.Muscle)
}

package evaluate

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/crampwatch/crampwatch/detect"
	firmwaresim "github.com/crampwatch/crampwatch/firmware-sim"
	"github.com/crampwatch/crampwatch/wire"
)

var t0 = time.Date(2025, 11, 24, 23, 0, 0, 0, time.UTC)

func at(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }

func tr(dev, kind, muscle, side string, a, b float64, cause string) firmwaresim.Truth {
	return firmwaresim.Truth{Device: dev, Kind: kind, Muscle: muscle, Side: side, Onset: at(a), End: at(b), Cause: cause}
}

func ch(muscle wire.Muscle, side wire.Side) wire.Channel {
	return wire.Channel{Muscle: muscle, Side: side}
}

var (
	calfL = ch(wire.Calf, wire.Left)
	calfR = ch(wire.Calf, wire.Right)
	hamL  = ch(wire.Hamstring, wire.Left)
)

// cramp returns the ongoing and ended reports of one detected cramp.
func cramp(dev string, c wire.Channel, onset, confirmed, end float64) []detect.Event {
	on := detect.Event{Device: dev, Kind: detect.KindCramp, State: detect.StateOngoing, Channel: c,
		Onset: at(onset), End: at(confirmed), ConfirmedAt: at(confirmed), DurationS: confirmed - onset}
	if end < 0 {
		return []detect.Event{on}
	}
	off := on
	off.State, off.End, off.DurationS = detect.StateEnded, at(end), end-onset
	return []detect.Event{on, off}
}

func ev(dev string, kind detect.Kind, c wire.Channel, a, b float64) detect.Event {
	return detect.Event{Device: dev, Kind: kind, State: detect.StateEnded, Channel: c,
		Onset: at(a), End: at(b), ConfirmedAt: at(b), DurationS: b - a}
}

func cat(lists ...[]detect.Event) []detect.Event {
	var out []detect.Event
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

func near(a Float, b float64) bool {
	if math.IsNaN(b) {
		return math.IsNaN(float64(a))
	}
	return math.Abs(float64(a)-b) < 1e-9
}

func TestMatch(t *testing.T) {
	nan := math.NaN()
	tests := []struct {
		name   string
		truth  []firmwaresim.Truth
		events []detect.Event
		check  func(t *testing.T, r Report)
	}{
		{
			name:   "one cramp found",
			truth:  []firmwaresim.Truth{tr("a", "cramp", "calf", "left", 0, 60, "")},
			events: cramp("a", calfL, 0.5, 3.5, 59),
			check: func(t *testing.T, r Report) {
				if r.Cramps != 1 || r.CrampDetections != 1 || r.CrampsDetected != 1 || r.Alerts != 1 || r.FalseAlerts != 0 {
					t.Errorf("counts %+v", r)
				}
				if !near(r.CrampSensitivity, 1) || !near(r.CrampPrecision, 1) || !near(r.FalseAlertsPerNight, 0) {
					t.Errorf("sens %v prec %v fa %v", r.CrampSensitivity, r.CrampPrecision, r.FalseAlertsPerNight)
				}
				if !near(r.AlertLatencyMedianS, 3.5) || !near(r.AlertLatencyP95S, 3.5) || !near(r.DurationErrorMedianS, 1.5) {
					t.Errorf("latency %v p95 %v duration error %v", r.AlertLatencyMedianS, r.AlertLatencyP95S, r.DurationErrorMedianS)
				}
			},
		},
		{
			name: "missed cramp and a false alert on a movement",
			truth: []firmwaresim.Truth{
				tr("a", "cramp", "calf", "right", 100, 130, ""),
				tr("a", "movement", "calf", "left", 200, 203, "turn_over"),
				tr("a", "movement", "calf", "right", 200, 203, "turn_over"),
			},
			events: cramp("a", calfL, 203.5, 206, 210),
			check: func(t *testing.T, r Report) {
				if !near(r.CrampSensitivity, 0) || !near(r.CrampPrecision, 0) || r.FalseAlerts != 1 || r.MovementFalseCramps != 1 {
					t.Errorf("%+v", r)
				}
				if r.FalseAlertsBy["movement"] != 1 || len(r.MissedCramps) != 1 || r.MissedCramps[0].Side != "right" {
					t.Errorf("by %v missed %v", r.FalseAlertsBy, r.MissedCramps)
				}
				if !near(r.AlertLatencyMedianS, nan) || !near(r.MovementRecall, 0) {
					t.Errorf("latency %v movement recall %v", r.AlertLatencyMedianS, r.MovementRecall)
				}
			},
		},
		{
			name:   "wrong leg",
			truth:  []firmwaresim.Truth{tr("a", "cramp", "calf", "left", 0, 60, "")},
			events: cramp("a", calfR, 1, 4, 50),
			check: func(t *testing.T, r Report) {
				if r.CrampsDetected != 0 || r.FalseAlerts != 1 || r.FalseAlertsBy["cramp_other_leg"] != 1 {
					t.Errorf("%+v", r)
				}
			},
		},
		{
			name:   "other device",
			truth:  []firmwaresim.Truth{tr("a", "cramp", "calf", "left", 0, 60, "")},
			events: cramp("b", calfL, 1, 4, 50),
			check: func(t *testing.T, r Report) {
				if r.CrampsDetected != 0 || r.FalseAlerts != 1 || r.FalseAlertsBy["nothing"] != 1 {
					t.Errorf("%+v", r)
				}
			},
		},
		{
			name:   "cramp split in two: the larger overlap matches",
			truth:  []firmwaresim.Truth{tr("a", "cramp", "calf", "left", 0, 120, "")},
			events: cat(cramp("a", calfL, 1, 3, 50), cramp("a", calfL, 60, 62, 118)),
			check: func(t *testing.T, r Report) {
				if r.CrampsDetected != 1 || r.CrampDetections != 2 || r.FalseAlerts != 1 || r.FalseAlertsBy["cramp"] != 1 {
					t.Errorf("%+v", r)
				}
				if !near(r.AlertLatencyMedianS, 62) || !near(r.CrampPrecision, 0.5) || !near(r.DurationErrorMedianS, 62) {
					t.Errorf("latency %v precision %v duration error %v", r.AlertLatencyMedianS, r.CrampPrecision, r.DurationErrorMedianS)
				}
			},
		},
		{
			name: "one long detection over two cramps matches one",
			truth: []firmwaresim.Truth{
				tr("a", "cramp", "calf", "left", 0, 30, ""),
				tr("a", "cramp", "calf", "left", 40, 100, ""),
			},
			events: cramp("a", calfL, 1, 3, 99),
			check: func(t *testing.T, r Report) {
				if r.CrampsDetected != 1 || r.FalseAlerts != 0 || len(r.MissedCramps) != 1 || !r.MissedCramps[0].Onset.Equal(at(0)) {
					t.Errorf("%+v", r)
				}
				// Matched to the second truth (59 s of overlap, not 29).
				if !near(r.AlertLatencyMedianS, -37) {
					t.Errorf("latency %v", r.AlertLatencyMedianS)
				}
			},
		},
		{
			name:   "ongoing only, never ended; wrong muscle",
			truth:  []firmwaresim.Truth{tr("a", "cramp", "calf", "left", 10, 70, "")},
			events: cramp("a", hamL, 11, 14, -1),
			check: func(t *testing.T, r Report) {
				if r.CrampsDetected != 1 || r.CrampMuscleMismatch != 1 || !near(r.DurationErrorMedianS, nan) || !near(r.AlertLatencyMedianS, 4) {
					t.Errorf("%+v", r)
				}
			},
		},
		{
			name: "latency quantiles",
			truth: []firmwaresim.Truth{
				tr("a", "cramp", "calf", "left", 0, 60, ""),
				tr("a", "cramp", "calf", "left", 100, 160, ""),
				tr("a", "cramp", "calf", "left", 200, 260, ""),
				tr("a", "cramp", "calf", "right", 300, 360, ""),
			},
			events: cat(cramp("a", calfL, 1, 2, 59), cramp("a", calfL, 101, 104, 159),
				cramp("a", calfL, 201, 208, 259), cramp("a", calfR, 301, 316, 359)),
			check: func(t *testing.T, r Report) {
				if !near(r.AlertLatencyMedianS, 4) || !near(r.AlertLatencyP95S, 16) || !near(r.AlertLatencyMaxS, 16) {
					t.Errorf("median %v p95 %v max %v", r.AlertLatencyMedianS, r.AlertLatencyP95S, r.AlertLatencyMaxS)
				}
			},
		},
		{
			name: "PLM F1, bilateral truth, LM false positive",
			truth: []firmwaresim.Truth{
				tr("a", "plm", "calf", "left", 0, 2, ""),
				tr("a", "plm", "calf", "both", 20, 22, ""),
				tr("a", "plm", "calf", "left", 40, 41, ""),
				tr("a", "plm", "calf", "left", 60, 63, ""),
				tr("a", "lm", "calf", "right", 300, 301, ""),
			},
			events: []detect.Event{
				ev("a", detect.KindPLM, calfL, 0.1, 1.9),
				ev("a", detect.KindPLM, calfR, 20.2, 22),
				ev("a", detect.KindPLM, calfL, 60, 62),
				ev("a", detect.KindPLM, calfR, 300, 301),
			},
			check: func(t *testing.T, r Report) {
				if r.PLMTruth != 4 || r.PLMEvents != 4 || r.PLMMatched != 3 {
					t.Errorf("%+v", r)
				}
				if !near(r.PLMPrecision, 0.75) || !near(r.PLMRecall, 0.75) || !near(r.PLMF1, 0.75) {
					t.Errorf("P %v R %v F1 %v", r.PLMPrecision, r.PLMRecall, r.PLMF1)
				}
				if !near(r.CrampSensitivity, nan) || !near(r.FalseAlertsPerNight, 0) {
					t.Errorf("no cramps: sensitivity %v, false alerts %v", r.CrampSensitivity, r.FalseAlertsPerNight)
				}
			},
		},
		{
			name: "artifacts by cause",
			truth: []firmwaresim.Truth{
				tr("a", "artifact", "calf", "left", 0, 10, "lead_off"),
				tr("a", "artifact", "calf", "left", 100, 105, "gap"),
				tr("a", "artifact", "calf", "right", 100, 105, "gap"),
			},
			events: []detect.Event{
				{Device: "a", Kind: detect.KindArtifact, State: detect.StateEnded, Channel: calfL, Onset: at(0.2), End: at(10), Cause: "lead_off"},
				{Device: "a", Kind: detect.KindArtifact, State: detect.StateEnded, Channel: calfL, Onset: at(100), End: at(105), Cause: "gap"},
			},
			check: func(t *testing.T, r Report) {
				if !near(r.ArtifactRecall, 2.0/3) || !near(r.ArtifactRecallByCause["lead_off"], 1) || !near(r.ArtifactRecallByCause["gap"], 0.5) {
					t.Errorf("recall %v by cause %v", r.ArtifactRecall, r.ArtifactRecallByCause)
				}
			},
		},
		{
			name:  "nothing at all",
			truth: []firmwaresim.Truth{tr("a", "movement", "calf", "left", 0, 2, "turn_over")},
			check: func(t *testing.T, r Report) {
				if r.Nights != 1 || !near(r.CrampSensitivity, nan) || !near(r.CrampPrecision, nan) || !near(r.PLMF1, nan) {
					t.Errorf("%+v", r)
				}
				b, err := json.Marshal(r)
				if err != nil {
					t.Fatal(err)
				}
				for _, want := range []string{`"cramp_sensitivity":null`, `"nights":1`, `"false_alerts_per_night":0`, `"plm_f1":null`} {
					if !strings.Contains(string(b), want) {
						t.Errorf("JSON lacks %s: %s", want, b)
					}
				}
				var back Report
				if err := json.Unmarshal(b, &back); err != nil || !near(back.CrampSensitivity, nan) || back.Nights != 1 {
					t.Errorf("round trip: %v %+v", err, back)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.check(t, Match(tt.truth, tt.events, MatchOptions{}))
		})
	}
}

func TestMatchReportKeys(t *testing.T) {
	b, err := json.Marshal(Match(nil, nil, MatchOptions{Nights: 3}))
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"nights", "cramps", "cramp_sensitivity", "cramp_precision", "false_alerts_per_night",
		"alert_latency_median_s", "alert_latency_p95_s", "plm_f1", "movement_false_cramps",
		"duration_error_median_s", "samples_per_second"} {
		if !strings.Contains(string(b), `"`+key+`":`) {
			t.Errorf("report JSON lacks %q", key)
		}
	}
}

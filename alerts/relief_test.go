package alerts

import (
	"math"
	"slices"
	"testing"
	"time"

	"github.com/crampwatch/crampwatch/detect"
)

func evID(label string, onset float64) string {
	return (&detect.Event{Device: dev, Kind: detect.KindCramp, Channel: chOf(label), Onset: at(onset)}).ID()
}

func TestDiaryLinking(t *testing.T) {
	// base is 01:00 UTC on 24 Nov: the night of 23 Nov (nights start at 18:00).
	cfg := testConfig()
	script := []op{
		whole("calf_left", 0, 40),          // 01:00
		whole("hamstring_right", 3600, 20), // 02:00
		whole("calf_right", 7200, 30),      // 03:00
	}
	hourS := func(h float64) time.Time { return at(h * 3600) }
	pain := 7
	for _, tc := range []struct {
		name       string
		entry      DiaryEntry
		at         time.Time
		wantEvent  string // empty: unlinked
		wantReason Reason
	}{
		{"written in the morning: the night's last cramp", DiaryEntry{Pain: &pain}, hourS(7), evID("calf_right", 7200), ""},
		{"t near the second cramp", DiaryEntry{Pain: &pain}, hourS(1.1), evID("hamstring_right", 3600), ""},
		{"early afternoon still that night", DiaryEntry{Helped: []Remedy{RemedyHeat}}, hourS(13), evID("calf_right", 7200), ""},
		{"next evening is another night", DiaryEntry{Note: "fine"}, hourS(18), "", ""},
		{"the evening before is another night", DiaryEntry{Note: "before bed"}, hourS(-8), "", ""},
		{"explicit alert id wins over nearness", DiaryEntry{ID: "al-" + evID("calf_left", 0), Pain: &pain}, hourS(7), evID("calf_left", 0), ""},
		{"explicit event id", DiaryEntry{EventID: evID("hamstring_right", 3600), Pain: &pain}, hourS(7), evID("hamstring_right", 3600), ""},
		{"unknown alert id", DiaryEntry{ID: "al-nope", Pain: &pain}, hourS(7), "", ReasonUnknownID},
		{"unknown event id", DiaryEntry{EventID: "nope", Pain: &pain}, hourS(7), "", ReasonUnknownID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, cfg).run(script...)
			err := h.p.diary(dev, tc.entry, tc.at)
			h.drain()
			checkReason(t, err, tc.wantReason)
			if tc.wantReason != "" {
				if len(h.diary) != 0 {
					t.Errorf("rejected entry recorded")
				}
				return
			}
			if len(h.diary) != 1 {
				t.Fatalf("%d diary records", len(h.diary))
			}
			r := h.diary[0]
			if r.Linked != (tc.wantEvent != "") || r.EventID != tc.wantEvent {
				t.Errorf("linked %v to %q, want %q", r.Linked, r.EventID, tc.wantEvent)
			}
			if r.Linked && (r.AlertID != "al-"+tc.wantEvent || r.OffsetS != tc.at.Sub(r.Onset).Seconds()) {
				t.Errorf("record %+v", r)
			}
		})
	}
}

func TestDiaryForUnknownDeviceIsKeptUnlinked(t *testing.T) {
	h := newHarness(t, testConfig())
	pain := 3
	if err := h.p.diary("never-seen", DiaryEntry{Pain: &pain}, base); err != nil {
		t.Fatal(err)
	}
	h.drain()
	if len(h.diary) != 1 || h.diary[0].Linked || h.diary[0].Night != "2025-11-23" {
		t.Errorf("records %+v", h.diary)
	}
	if len(h.p.devs) != 0 {
		t.Errorf("a diary entry must not create device state")
	}
}

func TestOutcomes(t *testing.T) {
	cfg := withTENS(testConfig())
	h := newHarness(t, cfg).run(
		confirm("calf_left", 0, 3), ack("calf_left", 0, 13, ActionOK), end("calf_left", 0, 45), // acked, short
		whole("calf_left", 60, 20),            // cooldown
		whole("quadriceps_right", 600, 150),   // escalated and prompted
		confirm("hamstring_left", 1200, 1204), // still going
	)
	pain := 8
	if err := h.p.diary(dev, DiaryEntry{Pain: &pain, Helped: []Remedy{RemedyStretch, RemedyTENS}, ID: "al-" + evID("quadriceps_right", 600)}, at(7200)); err != nil {
		t.Fatal(err)
	}
	out := h.p.outcomes(dev)
	if len(out) != 4 {
		t.Fatalf("%d outcomes", len(out))
	}
	a, b, c, d := out[0], out[1], out[2], out[3]
	if !a.Alerted || !a.Acked || a.AckAction != ActionOK || a.AckAfterS != 10 || a.ReliefAfterAlertS != 42 || a.DurationS != 45 || a.Night != "2025-11-23" {
		t.Errorf("acked cramp %+v", a)
	}
	if b.Alerted || b.Suppressed != SuppressCooldown || b.ReliefAfterAlertS != 0 {
		t.Errorf("cooldown cramp %+v", b)
	}
	if !c.Alerted || !c.Escalated || !c.TENSPrompted || c.Acked || !c.HasDiary || *c.Pain != 8 ||
		!slices.Equal(c.Helped, []Remedy{RemedyStretch, RemedyTENS}) || c.ReliefAfterAlertS != 147 {
		t.Errorf("long cramp %+v", c)
	}
	if d.Ended || !d.Alerted || d.DurationS != 0 {
		t.Errorf("ongoing cramp %+v", d)
	}
	if h.p.outcomes("nobody") != nil {
		t.Error("outcomes of an unknown device")
	}
}

func TestSummarize(t *testing.T) {
	mk := func(night string, dur, relief float64, acked bool, helped ...Remedy) CrampOutcome {
		return CrampOutcome{Night: night, Ended: true, DurationS: dur, Alerted: relief > 0, ReliefAfterAlertS: relief,
			Acked: acked, HasDiary: helped != nil, Helped: helped}
	}
	none := []Remedy{} // a diary entry that lists no remedy
	outcomes := []CrampOutcome{
		mk("2025-11-23", 40, 37, true, RemedyStretch),
		mk("2025-11-23", 120, 117, false, RemedyMagnesium),
		mk("2025-11-23", 30, 27, true, RemedyStretch, RemedyHeat),
		mk("2025-11-24", 90, 0, false),             // no diary, not alerted
		mk("2025-11-24", 200, 197, false, none...), // diary, nothing helped
		mk("2025-11-25", 50, 47, true, RemedyStretch),
		{Night: "2025-11-25", Alerted: true, Acked: true}, // still going: counted, not in medians
	}
	s := Summarize(outcomes)
	if s.Cramps != 7 || s.Ended != 6 || s.Alerted != 6 || s.Acked != 4 {
		t.Errorf("counts %+v", s)
	}
	if s.MedianDurationS != 70 || s.MedianReliefS != 47 { // durations 30 40 50 90 120 200; relief 27 37 47 117 197
		t.Errorf("medians %v %v", s.MedianDurationS, s.MedianReliefS)
	}
	if len(s.Nights) != 3 || s.Nights[0].Night != "2025-11-23" || s.Nights[0].Cramps != 3 || s.Nights[0].MedianDurationS != 40 ||
		s.Nights[1].MedianReliefS != 197 || s.Nights[2].Cramps != 2 || s.Nights[2].Acked != 2 {
		t.Errorf("nights %+v", s.Nights)
	}
	// Cramps with a diary: 40(stretch) 120(magnesium) 30(stretch,heat) 200(-) 50(stretch).
	want := map[Remedy]RemedyEffect{
		RemedyStretch:   {WithCount: 3, WithoutCount: 2, MedianDurationWithS: 40, MedianDurationWithoutS: 160, DifferenceS: -120, Comparable: true, MedianReliefWithS: 37},
		RemedyHeat:      {WithCount: 1, WithoutCount: 4, MedianDurationWithS: 30, MedianDurationWithoutS: 85, DifferenceS: -55, Comparable: true, MedianReliefWithS: 27},
		RemedyMagnesium: {WithCount: 1, WithoutCount: 4, MedianDurationWithS: 120, MedianDurationWithoutS: 45, DifferenceS: 75, Comparable: true, MedianReliefWithS: 117},
	}
	var order []Remedy
	for _, r := range s.Remedies {
		order = append(order, r.Remedy)
		w := want[r.Remedy]
		w.Remedy = r.Remedy
		if r != w {
			t.Errorf("%s: %+v, want %+v", r.Remedy, r, w)
		}
	}
	if !slices.Equal(order, []Remedy{RemedyStretch, RemedyHeat, RemedyMagnesium}) {
		t.Errorf("order %v: want the remedy with the shortest cramps first", order)
	}
	if e := Summarize(nil); e.Cramps != 0 || e.Nights != nil || e.Remedies != nil || math.IsNaN(e.MedianDurationS) {
		t.Errorf("empty summary %+v", e)
	}
}

package report

import (
	"bytes"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/crampwatch/crampwatch/alerts"
	"github.com/crampwatch/crampwatch/detect"
	"github.com/crampwatch/crampwatch/wire"
)

func TestNightWindow(t *testing.T) {
	berlin := mustLoc(t, "Europe/Berlin")
	tests := []struct {
		date      string
		loc       *time.Location
		hour      int
		from, to  string // RFC 3339 in UTC
		wantError bool
	}{
		{"2026-11-27", berlin, 18, "2026-11-27T17:00:00Z", "2026-11-28T17:00:00Z", false},
		// Daylight saving ends in the night of 24-25 Oct 2026: 25 hours.
		{"2026-10-24", berlin, 18, "2026-10-24T16:00:00Z", "2026-10-25T17:00:00Z", false},
		// ... and begins in the night of 28-29 Mar 2026: 23 hours.
		{"2026-03-28", berlin, 18, "2026-03-28T17:00:00Z", "2026-03-29T16:00:00Z", false},
		{"2026-11-27", time.UTC, 0, "2026-11-27T00:00:00Z", "2026-11-28T00:00:00Z", false},
		{"2026-12-31", time.UTC, 20, "2026-12-31T20:00:00Z", "2027-01-01T20:00:00Z", false},
		{"27.11.2026", berlin, 18, "", "", true},
		{"2026-02-30", berlin, 18, "", "", true},
		{"2026-11-27", berlin, 24, "", "", true},
		{"2026-11-27", berlin, -1, "", "", true},
		{"2026-11-27", nil, 18, "", "", true},
	}
	for _, tc := range tests {
		from, to, err := NightWindow(tc.date, tc.loc, tc.hour)
		if tc.wantError {
			if err == nil {
				t.Errorf("NightWindow(%q, %d) = %v, %v; want an error", tc.date, tc.hour, from, to)
			}
			continue
		}
		if err != nil {
			t.Errorf("NightWindow(%q, %d): %v", tc.date, tc.hour, err)
			continue
		}
		if got := from.UTC().Format(time.RFC3339); got != tc.from {
			t.Errorf("NightWindow(%q, %v, %d) from %s, want %s", tc.date, tc.loc, tc.hour, got, tc.from)
		}
		if got := to.UTC().Format(time.RFC3339); got != tc.to {
			t.Errorf("NightWindow(%q, %v, %d) to %s, want %s", tc.date, tc.loc, tc.hour, got, tc.to)
		}
		// Every instant of the window belongs to the night, and no other.
		if NightOf(from, tc.loc, tc.hour) != tc.date || NightOf(to.Add(-time.Microsecond), tc.loc, tc.hour) != tc.date ||
			NightOf(to, tc.loc, tc.hour) == tc.date || NightOf(from.Add(-time.Microsecond), tc.loc, tc.hour) == tc.date {
			t.Errorf("NightOf disagrees with NightWindow(%q) at its edges", tc.date)
		}
	}
}

func TestLastNight(t *testing.T) {
	berlin := mustLoc(t, "Europe/Berlin")
	for _, tc := range []struct{ now, want string }{
		{"2026-11-28T08:00:00+01:00", "2026-11-27"}, // morning after
		{"2026-11-28T17:30:00+01:00", "2026-11-27"}, // afternoon
		{"2026-11-28T20:00:00+01:00", "2026-11-27"}, // evening, a new night has begun
		{"2026-11-28T06:00:00+01:00", "2026-11-27"}, // still in the night
		{"2026-11-29T05:00:00+01:00", "2026-11-28"},
	} {
		now, _ := time.Parse(time.RFC3339, tc.now)
		if got := LastNight(now, berlin, 18); got != tc.want {
			t.Errorf("LastNight(%s) = %s, want %s", tc.now, got, tc.want)
		}
	}
}

func mustLoc(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

var (
	t0        = time.Date(2026, 11, 27, 22, 0, 0, 0, time.UTC)
	calfLeft  = wire.Channel{Muscle: wire.Calf, Side: wire.Left}
	calfRight = wire.Channel{Muscle: wire.Calf, Side: wire.Right}
)

// ev builds an event starting at minute m, lasting dur seconds, confirmed
// after conf seconds (0: no confirmation time).
func ev(k detect.Kind, ch wire.Channel, m, dur, conf float64) detect.Event {
	on := t0.Add(time.Duration(m * float64(time.Minute)))
	e := detect.Event{Device: "d", Kind: k, State: detect.StateEnded, Channel: ch, Onset: on,
		End: on.Add(time.Duration(dur * float64(time.Second))), DurationS: dur}
	if conf > 0 {
		e.ConfirmedAt = on.Add(time.Duration(conf * float64(time.Second)))
	}
	return e
}

func TestSummarize(t *testing.T) {
	// at is a decision time: sec seconds after minute m of the night.
	at := func(m, sec float64) time.Time {
		return t0.Add(time.Duration(m*float64(time.Minute) + sec*float64(time.Second)))
	}
	cramps := []detect.Event{
		ev(detect.KindCramp, calfLeft, 10, 60, 2), ev(detect.KindCramp, calfRight, 10.5, 30, 4),
		ev(detect.KindCramp, calfLeft, 100, 150, 3), ev(detect.KindCramp, calfLeft, 300, 20, 3),
	}
	id := func(i int) string { return cramps[i].ID() }
	ongoing := ev(detect.KindCramp, calfRight, 300, 3, 3)
	ongoing.State = detect.StateOngoing
	tests := []struct {
		name string
		data Data
		want Summary
	}{{
		name: "empty night",
		data: Data{RecordingBasis: BasisHealth},
		want: Summary{RecordingBasis: BasisHealth, CrampsPerHour: math.NaN(), PLMIndex: math.NaN(),
			MedianAlertLatencyS: math.NaN(), MedianConfirmS: math.NaN()},
	}, {
		name: "a night with everything",
		data: Data{
			Recording:      []Span{{t0, t0.Add(3 * time.Hour)}, {t0.Add(4 * time.Hour), t0.Add(5 * time.Hour)}},
			RecordingBasis: BasisHealth,
			Events: []detect.Event{
				cramps[0], cramps[1], cramps[2], // both legs at once: two cramps
				ev(detect.KindPLM, calfLeft, 20, 2, 0), ev(detect.KindPLM, calfLeft, 20.5, 2, 0),
				ev(detect.KindPLM, calfLeft, 21, 2, 0), ev(detect.KindPLM, calfLeft, 21.5, 2, 0),
				ev(detect.KindMovement, calfRight, 50, 4, 0),
				// Artifacts on two channels overlapping by 30 s: 90 s + 60 s - 30 s, plus 30 s.
				ev(detect.KindArtifact, calfLeft, 60, 90, 0),
				ev(detect.KindArtifact, calfRight, 61, 60, 0),
				ev(detect.KindArtifact, calfRight, 200, 30, 0),
				cramps[3],
			},
			AlertsKnown: true,
			// Both calves cramp at once (one episode, the right calf joins at
			// its confirmation), the left calf again later with escalation
			// and a TENS prompt. The last cramp of the list is not alerted.
			Alerts: []Alert{
				{Time: at(10, 2), AlertID: "a1", EventID: id(0), Type: alerts.TypeAlert, Outcome: alerts.OutcomeSent},
				{Time: at(10.5, 4), AlertID: "a1", EventID: id(1), Type: alerts.TypeAlert, Outcome: alerts.OutcomeSuppressed, Reason: alerts.SuppressConcurrent},
				{Time: at(10, 60), AlertID: "a1", EventID: id(0), Type: alerts.TypeEscalation, Outcome: alerts.OutcomeSent},
				{Time: at(10, 61), AlertID: "a1", EventID: id(0), Type: alerts.TypeEnded, Outcome: alerts.OutcomeSent},
				{Time: at(100, 3), AlertID: "a2", EventID: id(2), Type: alerts.TypeAlert, Outcome: alerts.OutcomeSent},
				{Time: at(100, 60), AlertID: "a2", EventID: id(2), Type: alerts.TypeEscalation, Outcome: alerts.OutcomeSent},
				{Time: at(100, 120), AlertID: "a2", EventID: id(2), Type: alerts.TypeTENSPrompt, Outcome: alerts.OutcomeSent},
				{Time: at(100, 150), AlertID: "a2", EventID: id(2), Type: alerts.TypeEnded, Outcome: alerts.OutcomeSent},
				{Time: at(300, 3), AlertID: "a3", EventID: id(3), Type: alerts.TypeAlert, Outcome: alerts.OutcomeSuppressed, Reason: alerts.SuppressHourlyCap},
			},
		},
		want: Summary{
			RecordingHours: 4, RecordingBasis: BasisHealth, Cramps: 4, CrampsPerHour: 1, TotalCrampS: 260, LongestCrampS: 150,
			PLMs: 4, PLMIndex: 1, Movements: 1, ArtifactMinutes: 2.5,
			AlertsKnown: true, Alerts: 2, AlertedCramps: 3, Escalations: 2, TENSPrompts: 1, Suppressed: 2,
			// Latencies 2 s, 4 s (joined) and 3 s.
			MedianAlertLatencyS: 3, MedianConfirmS: 3,
		},
	}, {
		name: "journal: no alerts, no recording time, a cramp without end",
		data: Data{
			RecordingBasis: BasisUnknown,
			Events:         []detect.Event{ev(detect.KindCramp, calfLeft, 1, 20, 5), ongoing},
		},
		want: Summary{
			RecordingHours: math.NaN(), RecordingBasis: BasisUnknown, Cramps: 2, OngoingCramps: 1, CrampsPerHour: math.NaN(),
			TotalCrampS: 23, LongestCrampS: 20, PLMIndex: math.NaN(), MedianAlertLatencyS: math.NaN(), MedianConfirmS: 4,
		},
	}}
	for _, tc := range tests {
		got := Summarize(&tc.data)
		if !sameSummary(got, tc.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", tc.name, got, tc.want)
		}
	}
}

// sameSummary compares summaries with NaN equal to NaN.
func sameSummary(a, b Summary) bool {
	same := func(x, y float64) bool { return x == y || math.IsNaN(x) && math.IsNaN(y) || math.Abs(x-y) < 1e-9 }
	fa := []float64{a.RecordingHours, a.CrampsPerHour, a.TotalCrampS, a.LongestCrampS, a.PLMIndex, a.ArtifactMinutes, a.MedianAlertLatencyS, a.MedianConfirmS}
	fb := []float64{b.RecordingHours, b.CrampsPerHour, b.TotalCrampS, b.LongestCrampS, b.PLMIndex, b.ArtifactMinutes, b.MedianAlertLatencyS, b.MedianConfirmS}
	for i := range fa {
		if !same(fa[i], fb[i]) {
			return false
		}
	}
	a.RecordingHours, a.CrampsPerHour, a.TotalCrampS, a.LongestCrampS, a.PLMIndex, a.ArtifactMinutes, a.MedianAlertLatencyS, a.MedianConfirmS = 0, 0, 0, 0, 0, 0, 0, 0
	b.RecordingHours, b.CrampsPerHour, b.TotalCrampS, b.LongestCrampS, b.PLMIndex, b.ArtifactMinutes, b.MedianAlertLatencyS, b.MedianConfirmS = 0, 0, 0, 0, 0, 0, 0, 0
	return a == b
}

func TestSpansFromWindows(t *testing.T) {
	w := 30 * time.Second
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	got := spansFromWindows([]time.Time{at(0), at(0), at(30), at(60), at(150), at(180), at(300)}, w)
	want := []Span{{at(0), at(90)}, {at(150), at(210)}, {at(300), at(330)}}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if !got[i].From.Equal(want[i].From) || !got[i].To.Equal(want[i].To) {
			t.Errorf("span %d = %v, want %v", i, got[i], want[i])
		}
	}
}

func TestMedianAndFormat(t *testing.T) {
	for _, tc := range []struct {
		xs   []float64
		want float64
	}{{[]float64{3, 1, 2}, 2}, {[]float64{4, 1, 3, 2}, 2.5}, {[]float64{7}, 7}} {
		if got := median(tc.xs); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.xs, got, tc.want)
		}
	}
	if !math.IsNaN(median(nil)) {
		t.Error("median of nothing is not NaN")
	}
	for _, tc := range []struct {
		s    float64
		want string
	}{{0, "0 s"}, {42.4, "42 s"}, {59.6, "1 min 00 s"}, {185, "3 min 05 s"}, {3720, "1 h 02 min"}, {math.NaN(), "n/a"}} {
		if got := durationText(tc.s); got != tc.want {
			t.Errorf("durationText(%v) = %q, want %q", tc.s, got, tc.want)
		}
	}
	if num(math.NaN(), 1) != "n/a" || num(2.345, 2) != "2.35" || seconds(math.NaN()) != "n/a" || seconds(2.35) != "2.4 s" {
		t.Error("num/seconds formatting")
	}
}

func TestTicks(t *testing.T) {
	berlin := mustLoc(t, "Europe/Berlin")
	lo := unix(time.Date(2026, 11, 27, 22, 40, 0, 0, berlin))
	hi := unix(time.Date(2026, 11, 28, 6, 10, 0, 0, berlin))
	var labels []string
	for _, tk := range (hourTicks{loc: berlin, labels: true}).Ticks(lo, hi) {
		if tk.Value < lo || tk.Value > hi {
			t.Errorf("tick %v outside [%v, %v]", tk.Value, lo, hi)
		}
		if tk.Label != "" {
			labels = append(labels, tk.Label)
		}
	}
	if got := strings.Join(labels, " "); got != "23:00 00:00 01:00 02:00 03:00 04:00 05:00 06:00" {
		t.Errorf("hour labels %q", got)
	}
	for _, tk := range (hourTicks{loc: berlin}).Ticks(lo, hi) {
		if strings.TrimSpace(tk.Label) != "" {
			t.Errorf("unlabelled ticker labels %q", tk.Label)
		}
	}
	labels = labels[:0]
	for _, tk := range (decadeTicks{}).Ticks(1, 1000) {
		if tk.Label != "" {
			labels = append(labels, tk.Label)
		}
	}
	if got := strings.Join(labels, " "); got != "1 10 100 1000" {
		t.Errorf("decade labels %q", got)
	}
	if (decadeTicks{}).Ticks(0, 10) != nil || (decadeTicks{}).Ticks(10, 1) != nil {
		t.Error("decadeTicks of an impossible range")
	}
}

// A report with no data at all still draws: a blank night, not a panic.
func TestRenderEmptyNight(t *testing.T) {
	berlin := mustLoc(t, "Europe/Berlin")
	from, to, _ := NightWindow("2026-11-27", berlin, 18)
	d := &Data{Device: "d", From: from, To: to, Window: DefaultWindow, RecordingBasis: BasisUnknown,
		Envelope: []Series{{Channel: calfLeft}}}
	r := &Report{Night: "2026-11-27", Location: berlin, Who: "<b>sub</b>", Source: "InfluxDB", Data: d, Summary: Summarize(d)}
	var png, page bytes.Buffer
	if err := RenderPNG(&png, r); err != nil {
		t.Fatal(err)
	}
	if png.Len() < 1000 {
		t.Errorf("png of %d bytes", png.Len())
	}
	if err := RenderHTML(&page, r, png.Bytes()); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(page.String(), "<b>sub</b>") || !strings.Contains(page.String(), "&lt;b&gt;sub&lt;/b&gt;") {
		t.Error("the wearer's name is not escaped")
	}
	if !strings.Contains(page.String(), "No cramps this night.") || !strings.Contains(page.String(), `id="cramps-per-hour">n/a<`) {
		t.Error("empty night page")
	}
}

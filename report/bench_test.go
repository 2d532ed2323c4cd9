package report

import (
	"bytes"
	"io"
	"math"
	"testing"
	"time"

	"github.com/crampwatch/crampwatch/detect"
	"github.com/crampwatch/crampwatch/wire"
)

// nineHourNight is a synthetic nine-hour night with four channels at 30 s
// windows, 10 cramps and 200 PLMs: what a typical report draws.
func nineHourNight() *Report {
	loc := time.UTC
	from, to, _ := NightWindow("2026-11-27", loc, 18)
	start := from.Add(4 * time.Hour)
	d := &Data{Device: "d", From: from, To: to, Window: DefaultWindow, RecordingBasis: BasisHealth,
		Recording: []Span{{start, start.Add(9 * time.Hour)}}}
	chans := []wire.Channel{{Muscle: wire.Calf, Side: wire.Left}, {Muscle: wire.Hamstring, Side: wire.Left},
		{Muscle: wire.Calf, Side: wire.Right}, {Muscle: wire.Hamstring, Side: wire.Right}}
	for ci, ch := range chans {
		s := Series{Channel: ch}
		for i := range 9 * 120 {
			v := 3 + math.Sin(float64(i+ci)/7)
			s.Points = append(s.Points, Point{Time: start.Add(time.Duration(i) * DefaultWindow), RMSUV: v, BaselineUV: 2.5})
		}
		d.Envelope = append(d.Envelope, s)
	}
	for i := range 10 {
		on := start.Add(time.Duration(i) * 50 * time.Minute)
		d.Events = append(d.Events, detect.Event{Device: "d", Kind: detect.KindCramp, State: detect.StateEnded, Channel: chans[i%4],
			Onset: on, End: on.Add(90 * time.Second), ConfirmedAt: on.Add(3 * time.Second), DurationS: 90})
	}
	for i := range 200 {
		on := start.Add(time.Hour + time.Duration(i)*25*time.Second)
		d.Events = append(d.Events, detect.Event{Device: "d", Kind: detect.KindPLM, State: detect.StateEnded, Channel: chans[i%2],
			Onset: on, End: on.Add(2 * time.Second), DurationS: 2})
	}
	sortEvents(d.Events)
	return &Report{Night: "2026-11-27", Location: loc, Who: "sub-bench", Source: "InfluxDB", Data: d, Summary: Summarize(d)}
}

// BenchmarkRenderPNG measures drawing and encoding the picture of a
// nine-hour, four-channel night.
func BenchmarkRenderPNG(b *testing.B) {
	r := nineHourNight()
	var buf bytes.Buffer
	for b.Loop() {
		buf.Reset()
		if err := RenderPNG(&buf, r); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(buf.Len()), "png-bytes")
}

// BenchmarkRenderHTML measures the page around an already drawn picture.
func BenchmarkRenderHTML(b *testing.B) {
	r := nineHourNight()
	var png bytes.Buffer
	if err := RenderPNG(&png, r); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := RenderHTML(io.Discard, r, png.Bytes()); err != nil {
			b.Fatal(err)
		}
	}
}

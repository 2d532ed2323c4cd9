package report

import (
	"bytes"
	"fmt"
	"image/color"
	"io"
	"math"
	"strings"
	"time"

	xfont "golang.org/x/image/font"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/crampwatch/crampwatch/detect"
	"github.com/crampwatch/crampwatch/wire"
)

// Picture geometry. The picture is meant to be read on a screen or printed
// on one page: 12 inches wide at 100 dpi is 1200 pixels.
const (
	pngDPI         = 100
	pngWidth       = 12 * vg.Inch
	headerHeight   = 0.95 * vg.Inch
	panelHeight    = 1.45 * vg.Inch
	notePanel      = 0.6 * vg.Inch
	timelineHeight = 2.1 * vg.Inch
	footerHeight   = 0.75 * vg.Inch
	margin         = 0.2 * vg.Inch
)

// Colours: the Okabe-Ito palette, which colour-blind readers can tell apart.
var (
	colCramp     = color.NRGBA{0xD5, 0x5E, 0x00, 0xFF} // vermillion
	colCrampFill = color.NRGBA{0xD5, 0x5E, 0x00, 0x48}
	colPLM       = color.NRGBA{0x00, 0x72, 0xB2, 0xFF} // blue
	colMovement  = color.NRGBA{0xE6, 0x9F, 0x00, 0xFF} // orange
	colArtifact  = color.NRGBA{0x8C, 0x8C, 0x8C, 0xFF} // grey
	colRecording = color.NRGBA{0x00, 0x9E, 0x73, 0xFF} // bluish green
	colEnvelope  = color.NRGBA{0x1B, 0x2A, 0x49, 0xFF} // dark navy
	colBaseline  = color.NRGBA{0x77, 0x77, 0x77, 0xFF}
	colGrid      = color.NRGBA{0xDD, 0xDD, 0xDD, 0xFF}
	colText      = color.NRGBA{0x22, 0x22, 0x22, 0xFF}
	colMuted     = color.NRGBA{0x55, 0x55, 0x55, 0xFF}
)

// kindColor is the colour of an event kind, the same on the picture and the page.
func kindColor(k detect.Kind) color.NRGBA {
	switch k {
	case detect.KindCramp:
		return colCramp
	case detect.KindPLM:
		return colPLM
	case detect.KindMovement:
		return colMovement
	}
	return colArtifact
}

// Report is one night's report: the data, its numbers, and what the
// heading says about it.
type Report struct {
	Night    string         // YYYY-MM-DD, the local date the night began
	Location *time.Location // the wearer's time zone; times are shown in it
	// Who names the wearer in the heading: the subject's pseudonym, or the
	// device id when the reader may see it.
	Who       string
	Source    string    // where the data came from, e.g. "InfluxDB"
	Generated time.Time // when the report was made
	Data      *Data
	Summary   Summary
}

// RenderPNG draws the report's picture: a heading with a legend, one panel
// per EMG channel (envelope on a log scale, cramps shaded, PLMs marked), a
// timeline of event kinds and the recording, and the key numbers.
func RenderPNG(w io.Writer, r *Report) error {
	d := r.Data
	loc := r.Location
	if loc == nil {
		loc = time.UTC
	}
	x0, x1 := xRange(d)

	var plots []*plot.Plot
	var heights []vg.Length
	for _, s := range d.Envelope {
		plots = append(plots, envelopePanel(d, s, loc, x0, x1))
		heights = append(heights, panelHeight)
	}
	plots = append(plots, timelinePanel(d, loc, x0, x1))
	heights = append(heights, timelineHeight)

	noteH := vg.Length(0)
	if len(d.Envelope) == 0 {
		noteH = notePanel
	}
	total := headerHeight + noteH + footerHeight + 2*margin
	for _, h := range heights {
		total += h
	}
	img := vgimg.NewWith(vgimg.UseWH(pngWidth, total), vgimg.UseDPI(pngDPI), vgimg.UseBackgroundColor(color.White))
	dc := draw.New(img)
	inner := draw.Crop(dc, margin, -margin, margin, -margin)

	// Lay out from the top: vg's y axis points up.
	top := inner.Max.Y
	header := band(inner, top-headerHeight, top)
	top -= headerHeight
	drawHeader(header, r, loc)
	if noteH > 0 {
		drawNote(band(inner, top-noteH, top),
			"No EMG envelope for this night ("+noEnvelopeReason(r)+"). The timeline below shows the events.")
		top -= noteH
	}
	canvases := make([]draw.Canvas, len(plots))
	for i, h := range heights {
		canvases[i] = band(inner, top-h, top)
		top -= h
	}
	alignData(plots, canvases)
	for i, p := range plots {
		p.Draw(canvases[i])
	}
	drawFooter(band(inner, top-footerHeight, top), r)

	var buf bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(&buf); err != nil {
		return fmt.Errorf("report: encode png: %w", err)
	}
	if _, err := w.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("report: write png: %w", err)
	}
	return nil
}

// noEnvelopeReason says briefly why the picture has no envelope.
func noEnvelopeReason(r *Report) string {
	if strings.Contains(r.Source, "journal") {
		return "the local journal keeps events only"
	}
	return "none stored in " + r.Source
}

// band is the horizontal strip of c between y0 and y1.
func band(c draw.Canvas, y0, y1 vg.Length) draw.Canvas {
	return draw.Crop(c, 0, 0, y0-c.Min.Y, y1-c.Max.Y)
}

// alignData crops the canvases so that every plot's data area has the same
// left and right edge, whatever the width of its axis labels: the panels
// share one time axis and must line up. (plot.Align does this only for
// tiles of equal height.)
func alignData(plots []*plot.Plot, cs []draw.Canvas) {
	var left, right vg.Length
	for i, p := range plots {
		dc := p.DataCanvas(cs[i])
		left = max(left, dc.Min.X-cs[i].Min.X)
		right = max(right, cs[i].Max.X-dc.Max.X)
	}
	for i, p := range plots {
		dc := p.DataCanvas(cs[i])
		cs[i] = draw.Crop(cs[i], left-(dc.Min.X-cs[i].Min.X), -(right - (cs[i].Max.X - dc.Max.X)), 0, 0)
	}
}

// xRange is the time axis, in Unix seconds: the recording and the events
// with a little room either side, within the night. A night without data
// shows the whole night.
func xRange(d *Data) (float64, float64) {
	var lo, hi time.Time
	widen := func(a, b time.Time) {
		if lo.IsZero() || a.Before(lo) {
			lo = a
		}
		if b.After(hi) {
			hi = b
		}
	}
	for _, s := range d.Recording {
		widen(s.From, s.To)
	}
	for _, e := range d.Events {
		widen(e.Onset, e.End)
	}
	for _, s := range d.Envelope {
		if n := len(s.Points); n > 0 {
			widen(s.Points[0].Time, s.Points[n-1].Time.Add(d.Window))
		}
	}
	if lo.IsZero() || !hi.After(lo) {
		lo, hi = d.From, d.To
	} else {
		pad := max(hi.Sub(lo)/50, 5*time.Minute)
		lo, hi = maxTime(lo.Add(-pad), d.From), minTime(hi.Add(pad), d.To)
	}
	if !hi.After(lo) { // no night window either
		hi = lo.Add(time.Hour)
	}
	return unix(lo), unix(hi)
}

func unix(t time.Time) float64 { return float64(t.UnixMicro()) / 1e6 }

// sans returns the plot's sans-serif font at size: easier to read on
// screen than the default serif.
func sans(size vg.Length, bold bool) font.Font {
	f := font.Font{Typeface: "Liberation", Variant: "Sans", Size: size}
	if bold {
		f.Weight = xfont.WeightBold
	}
	return f
}

// newPlot returns a plot with the report's fonts and the shared time axis.
func newPlot(loc *time.Location, x0, x1 float64, labels bool) *plot.Plot {
	p := plot.New()
	p.X.Min, p.X.Max = x0, x1
	p.X.Tick.Marker = hourTicks{loc: loc, labels: labels}
	p.X.Tick.Label.Font = sans(10, false)
	p.Y.Tick.Label.Font = sans(10, false)
	p.X.Label.TextStyle.Font = sans(11, false)
	p.Y.Label.TextStyle.Font = sans(11, false)
	p.X.Padding, p.Y.Padding = 0, 0
	p.Add(grid{})
	return p
}

// envelopePanel plots one channel's envelope and baseline on a log scale,
// with that channel's cramps shaded and its PLMs marked along the top.
// The time labels are on the timeline below, so panels have tick marks only.
func envelopePanel(d *Data, s Series, loc *time.Location, x0, x1 float64) *plot.Plot {
	p := newPlot(loc, x0, x1, false)
	p.Y.Label.Text = "µV RMS"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = decadeTicks{}

	var cramps []Span
	var plms []float64
	for _, e := range d.Events {
		if e.Channel != s.Channel {
			continue
		}
		switch e.Kind {
		case detect.KindCramp:
			cramps = append(cramps, Span{e.Onset, e.End})
		case detect.KindPLM:
			plms = append(plms, unix(e.Onset))
		}
	}
	p.Add(shade{spans: cramps, fill: colCrampFill, edge: colCramp})

	lo, hi := math.Inf(1), math.Inf(-1)
	for _, pt := range s.Points {
		for _, v := range []float64{pt.RMSUV, pt.BaselineUV} {
			if v > 0 && !math.IsInf(v, 0) {
				lo, hi = min(lo, v), max(hi, v)
			}
		}
	}
	if math.IsInf(lo, 1) {
		lo, hi = 1, 10
	}
	// Whole decades, so the axis always has at least two labels.
	p.Y.Min = math.Pow(10, math.Floor(math.Log10(lo)))
	p.Y.Max = math.Pow(10, math.Ceil(math.Log10(hi)))
	if p.Y.Max <= p.Y.Min {
		p.Y.Max = p.Y.Min * 10
	}
	// Points are window starts: draw them at the window's middle, and
	// break the line where a window is missing.
	gap, mid := 1.5*d.Window.Seconds(), d.Window.Seconds()/2
	p.Add(series{points: s.Points, value: func(pt Point) float64 { return pt.BaselineUV }, gap: gap, offset: mid, floor: p.Y.Min,
		style: draw.LineStyle{Color: colBaseline, Width: vg.Points(1), Dashes: []vg.Length{vg.Points(4), vg.Points(3)}}})
	p.Add(series{points: s.Points, value: func(pt Point) float64 { return pt.RMSUV }, gap: gap, offset: mid, floor: p.Y.Min,
		style: draw.LineStyle{Color: colEnvelope, Width: vg.Points(1.2)}})
	p.Add(marks{xs: plms, color: colPLM})
	p.Add(caption{text: channelName(s.Channel)})
	return p
}

// channelName is how a panel names its channel, e.g. "calf, left leg".
func channelName(c wire.Channel) string {
	return c.Muscle.String() + ", " + c.Side.String() + " leg"
}

// timelinePanel is the hypnogram-like timeline: one row per event kind,
// every event a bar from onset to end, and a row for when the device was
// recording (gaps show as holes) when the source knows it.
func timelinePanel(d *Data, loc *time.Location, x0, x1 float64) *plot.Plot {
	p := newPlot(loc, x0, x1, true)
	p.X.Label.Text = "local time (" + loc.String() + ")"
	rows := shownRows(d)
	n := len(rows)
	p.Y.Min, p.Y.Max = -0.5, float64(n)-0.5
	ticks := make(plot.ConstantTicks, n)
	for i, row := range rows {
		y := float64(n - 1 - i)
		ticks[i] = plot.Tick{Value: y, Label: row.label}
		var spans []Span
		if row.kind == "" {
			spans = d.Recording
		} else {
			for _, e := range d.Events {
				if e.Kind == row.kind {
					spans = append(spans, Span{e.Onset, e.End})
				}
			}
		}
		p.Add(bars{y: y, spans: spans, color: rowColor(row.kind)})
	}
	p.Y.Tick.Marker = ticks
	p.Y.Tick.Label.Font = sans(11, false)
	return p
}

type timelineRow struct {
	label string
	kind  detect.Kind // empty: the recording row
}

// shownRows are the timeline's rows, top to bottom, what matters most
// first; the recording row only when the source knows when it was.
func shownRows(d *Data) []timelineRow {
	rows := []timelineRow{
		{"cramp", detect.KindCramp},
		{"PLM", detect.KindPLM},
		{"movement", detect.KindMovement},
		{"artifact", detect.KindArtifact},
	}
	if d.RecordingBasis != BasisUnknown {
		rows = append(rows, timelineRow{"recording", ""})
	}
	return rows
}

func rowColor(k detect.Kind) color.NRGBA {
	if k == "" {
		return colRecording
	}
	return kindColor(k)
}

// drawHeader writes the title, the subtitle and the legend.
func drawHeader(c draw.Canvas, r *Report, loc *time.Location) {
	title := "Night report · " + nightTitle(r.Night, loc)
	if r.Who != "" {
		title += " · " + r.Who
	}
	y := c.Max.Y
	drawText(c, title, c.Min.X, y, sans(18, true), colText)
	y -= 26
	sub := fmt.Sprintf("%s · times in %s · data: %s", recordingText(r.Data, loc), loc, r.Source)
	if len(r.Data.Envelope) > 0 {
		sub += fmt.Sprintf(" · envelope: %s means", shortDuration(r.Data.Window))
	}
	drawText(c, sub, c.Min.X, y, sans(11, false), colMuted)
	y -= 22

	// Legend: swatches in the colours used below, in two groups.
	sty := text.Style{Color: colText, Font: sans(10, false), Handler: plot.DefaultTextHandler, YAlign: draw.YTop}
	group := sty
	group.Font = sans(10, true)
	x := c.Min.X
	entry := func(label string, sw func(x, ymid vg.Length)) {
		sw(x, y-6)
		x += 22
		c.FillText(sty, vg.Point{X: x, Y: y}, label)
		x += sty.Width(label) + 13
	}
	heading := func(label string) {
		c.FillText(group, vg.Point{X: x, Y: y}, label)
		x += group.Width(label) + 8
	}
	if len(r.Data.Envelope) > 0 {
		heading("Muscles:")
		entry(fmt.Sprintf("EMG envelope (%s mean)", shortDuration(r.Data.Window)), func(x, ym vg.Length) {
			c.StrokeLine2(draw.LineStyle{Color: colEnvelope, Width: vg.Points(1.5)}, x, ym, x+18, ym)
		})
		entry("resting baseline", func(x, ym vg.Length) {
			c.StrokeLine2(draw.LineStyle{Color: colBaseline, Width: vg.Points(1), Dashes: []vg.Length{vg.Points(4), vg.Points(3)}}, x, ym, x+18, ym)
		})
		entry("cramp", func(x, ym vg.Length) { fillRect(&c, x, ym-5, x+18, ym+5, colCrampFill) })
		entry("PLM", func(x, ym vg.Length) { triangle(&c, x+9, ym+4, 5, colPLM) })
	}
	x += 10
	heading("Timeline:")
	for _, row := range shownRows(r.Data) {
		col := rowColor(row.kind)
		entry(row.label, func(x, ym vg.Length) { fillRect(&c, x, ym-4, x+18, ym+4, col) })
	}
}

// drawNote writes a line of explanation in a framed box.
func drawNote(c draw.Canvas, msg string) {
	c.StrokeLines(draw.LineStyle{Color: colGrid, Width: vg.Points(1)}, []vg.Point{
		{X: c.Min.X, Y: c.Min.Y + 6}, {X: c.Max.X, Y: c.Min.Y + 6}, {X: c.Max.X, Y: c.Max.Y - 6}, {X: c.Min.X, Y: c.Max.Y - 6}, {X: c.Min.X, Y: c.Min.Y + 6},
	})
	sty := text.Style{Color: colMuted, Font: sans(12, false), Handler: plot.DefaultTextHandler, YAlign: draw.YCenter}
	c.FillText(sty, vg.Point{X: c.Min.X + 12, Y: (c.Min.Y + c.Max.Y) / 2}, msg)
}

// drawFooter writes the key numbers under the timeline; rates the data
// cannot give are left out rather than shown as n/a.
func drawFooter(c draw.Canvas, r *Report) {
	s := r.Summary
	rate := func(v float64, f string) string {
		if math.IsNaN(v) {
			return ""
		}
		return fmt.Sprintf(f, v)
	}
	line1 := fmt.Sprintf("Recording %s · Cramps %d%s · total %s, longest %s · PLMs %d%s",
		hours(s.RecordingHours), s.Cramps, rate(s.CrampsPerHour, " (%.2f per hour)"),
		durationText(s.TotalCrampS), durationText(s.LongestCrampS),
		s.PLMs, rate(s.PLMIndex, " (index %.1f per hour of recording)"))
	alertsText := "alerts n/a (no alert records)"
	if s.AlertsKnown {
		alertsText = fmt.Sprintf("alerts %d, median latency %s", s.Alerts, seconds(s.MedianAlertLatencyS))
	}
	line2 := fmt.Sprintf("Movements %d · Artifacts %s min · %s · detector confirmation median %s",
		s.Movements, num(s.ArtifactMinutes, 2), alertsText, seconds(s.MedianConfirmS))
	y := c.Max.Y - 12
	drawText(c, line1, c.Min.X, y, sans(12, true), colText)
	drawText(c, line2, c.Min.X, y-20, sans(12, false), colText)
}

func drawText(c draw.Canvas, s string, x, y vg.Length, f font.Font, col color.Color) {
	sty := text.Style{Color: col, Font: f, Handler: plot.DefaultTextHandler, YAlign: draw.YTop}
	c.FillText(sty, vg.Point{X: x, Y: y}, s)
}

func fillRect(c *draw.Canvas, x0, y0, x1, y1 vg.Length, col color.Color) {
	c.FillPolygon(col, []vg.Point{{X: x0, Y: y0}, {X: x1, Y: y0}, {X: x1, Y: y1}, {X: x0, Y: y1}})
}

// triangle draws a downward-pointing triangle whose tip is r below (x, y).
func triangle(c *draw.Canvas, x, y, r vg.Length, col color.Color) {
	c.FillPolygon(col, []vg.Point{{X: x - r, Y: y}, {X: x + r, Y: y}, {X: x, Y: y - 1.6*r}})
}

// nightTitle names a night by its two dates, e.g. "Fri 27 – Sat 28 Nov 2026".
func nightTitle(night string, loc *time.Location) string {
	d, err := time.ParseInLocation(time.DateOnly, night, loc)
	if err != nil {
		return night
	}
	next := d.AddDate(0, 0, 1)
	if d.Month() == next.Month() {
		return d.Format("Mon 2") + " – " + next.Format("Mon 2 Jan 2006")
	}
	return d.Format("Mon 2 Jan") + " – " + next.Format("Mon 2 Jan 2006")
}

// recordingText describes when the device recorded, e.g. "recorded
// 22:31–06:02 (1 gap)", or when the events were if that is unknown.
func recordingText(d *Data, loc *time.Location) string {
	if len(d.Recording) == 0 {
		if len(d.Events) == 0 {
			return "no data"
		}
		from, to := d.Events[0].Onset, d.Events[0].End
		for _, e := range d.Events {
			to = maxTime(to, e.End)
		}
		return "events " + from.In(loc).Format("15:04") + "–" + to.In(loc).Format("15:04") + ", recording time unknown"
	}
	from, to := d.Recording[0].From, d.Recording[len(d.Recording)-1].To
	s := "recorded " + from.In(loc).Format("15:04") + "–" + to.In(loc).Format("15:04")
	if n := len(d.Recording) - 1; n == 1 {
		s += " (1 gap)"
	} else if n > 1 {
		s += fmt.Sprintf(" (%d gaps)", n)
	}
	return s
}

// ---- plotters ----

// hourTicks puts major ticks on whole local hours (every second hour for
// long ranges) and minor ticks between them.
type hourTicks struct {
	loc    *time.Location
	labels bool
}

func (h hourTicks) Ticks(lo, hi float64) []plot.Tick {
	span := time.Duration((hi - lo) * float64(time.Second))
	step, minor := time.Hour, 15*time.Minute
	switch {
	case span > 16*time.Hour:
		step, minor = 2*time.Hour, time.Hour
	case span > 8*time.Hour:
		minor = 30 * time.Minute
	case span < 2*time.Hour:
		step, minor = 15*time.Minute, 5*time.Minute
	}
	start := time.Unix(int64(math.Floor(lo)), 0).In(h.loc)
	// The first minor tick at or after lo, on the local clock.
	t := time.Date(start.Year(), start.Month(), start.Day(), start.Hour(), 0, 0, 0, h.loc)
	for unix(t) < lo {
		t = t.Add(minor)
	}
	var ticks []plot.Tick
	for ; unix(t) <= hi && len(ticks) < 500; t = t.Add(minor) {
		tk := plot.Tick{Value: unix(t)}
		l := t.In(h.loc)
		if (l.Hour()*60+l.Minute())%int(step/time.Minute) == 0 {
			tk.Label = " " // a major tick; blank keeps its length
			if h.labels {
				tk.Label = l.Format("15:04")
			}
		}
		ticks = append(ticks, tk)
	}
	return ticks
}

// decadeTicks labels powers of ten on a log axis, with unlabelled minor
// ticks at 2 and 5 times them when there is room (three decades or fewer
// in a short panel).
type decadeTicks struct{}

func (decadeTicks) Ticks(lo, hi float64) []plot.Tick {
	if lo <= 0 || hi <= lo || math.IsInf(hi, 0) {
		return nil
	}
	first, last := math.Floor(math.Log10(lo)), math.Log10(hi)
	minor := last-first <= 3
	var ticks []plot.Tick
	for e := first; e <= last+1e-9 && len(ticks) < 100; e++ {
		d := math.Pow(10, e)
		ticks = append(ticks, plot.Tick{Value: d, Label: trimFloat(d)})
		for _, m := range []float64{2, 5} {
			if minor && d*m <= hi {
				ticks = append(ticks, plot.Tick{Value: d * m})
			}
		}
	}
	return ticks
}

func trimFloat(v float64) string { return fmt.Sprintf("%g", v) }

// grid draws light vertical lines at the labelled time ticks and
// horizontal lines at the labelled value ticks.
type grid struct{}

func (grid) Plot(c draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&c)
	sty := draw.LineStyle{Color: colGrid, Width: vg.Points(0.6)}
	for _, t := range p.X.Tick.Marker.Ticks(p.X.Min, p.X.Max) {
		if t.Label != "" {
			x := trX(t.Value)
			c.StrokeLine2(sty, x, c.Min.Y, x, c.Max.Y)
		}
	}
	if _, ok := p.Y.Tick.Marker.(decadeTicks); ok {
		for _, t := range p.Y.Tick.Marker.Ticks(p.Y.Min, p.Y.Max) {
			if t.Label != "" {
				y := trY(t.Value)
				c.StrokeLine2(sty, c.Min.X, y, c.Max.X, y)
			}
		}
	}
}

// shade fills the full height of the panel over each span, with a thin
// edge so short cramps stay visible.
type shade struct {
	spans      []Span
	fill, edge color.Color
}

func (s shade) Plot(c draw.Canvas, p *plot.Plot) {
	trX, _ := p.Transforms(&c)
	for _, sp := range s.spans {
		x0, x1 := trX(unix(sp.From)), trX(unix(sp.To))
		x0, x1 = max(x0, c.Min.X), min(x1, c.Max.X)
		if x1 < x0 {
			continue
		}
		if x1-x0 < 2 {
			x1 = x0 + 2
		}
		fillRect(&c, x0, c.Min.Y, x1, c.Max.Y, s.fill)
		c.FillPolygon(s.edge, []vg.Point{{X: x0, Y: c.Max.Y}, {X: x1, Y: c.Max.Y}, {X: x1, Y: c.Max.Y - 3}, {X: x0, Y: c.Max.Y - 3}})
	}
}

// series draws one value of the envelope points as a line, broken where
// windows are missing (a gap in the recording is not a flat line).
type series struct {
	points []Point
	value  func(Point) float64
	gap    float64 // seconds between points that breaks the line
	offset float64 // seconds from a point's time to where it is drawn
	floor  float64 // values below are drawn at the floor (log axis)
	style  draw.LineStyle
}

func (s series) Plot(c draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&c)
	var line []vg.Point
	flush := func() {
		if len(line) > 1 {
			c.StrokeLines(s.style, c.ClipLinesXY(line)...)
		}
		line = line[:0]
	}
	prev := math.Inf(-1)
	for _, pt := range s.points {
		v := s.value(pt)
		x := unix(pt.Time) + s.offset
		if math.IsNaN(v) || math.IsInf(v, 0) || x-prev > s.gap {
			flush()
		}
		prev = x
		if math.IsNaN(v) || math.IsInf(v, 0) {
			continue
		}
		line = append(line, vg.Point{X: trX(x), Y: trY(max(v, s.floor))})
	}
	flush()
}

// marks draws a small triangle along the top of the panel at each x.
type marks struct {
	xs    []float64
	color color.Color
}

func (m marks) Plot(c draw.Canvas, p *plot.Plot) {
	trX, _ := p.Transforms(&c)
	for _, x := range m.xs {
		if px := trX(x); c.ContainsX(px) {
			triangle(&c, px, c.Max.Y-1, 4, m.color)
		}
	}
}

// caption writes a panel's name in its top left corner.
type caption struct{ text string }

func (k caption) Plot(c draw.Canvas, _ *plot.Plot) {
	sty := text.Style{Color: colText, Font: sans(11, true), Handler: plot.DefaultTextHandler, YAlign: draw.YTop}
	w := sty.Width(k.text)
	fillRect(&c, c.Min.X+2, c.Max.Y-20, c.Min.X+14+w, c.Max.Y-4, color.NRGBA{0xFF, 0xFF, 0xFF, 0xD0})
	c.FillText(sty, vg.Point{X: c.Min.X + 8, Y: c.Max.Y - 6}, k.text)
}

// bars draws each span as a bar on timeline row y, at least a little wide
// so that a one-second PLM on a nine-hour axis still shows.
type bars struct {
	y     float64
	spans []Span
	color color.Color
}

func (b bars) Plot(c draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&c)
	y0, y1 := trY(b.y-0.3), trY(b.y+0.3)
	for _, sp := range b.spans {
		x0, x1 := trX(unix(sp.From)), trX(unix(sp.To))
		x0, x1 = max(x0, c.Min.X), min(x1, c.Max.X)
		if x1 < x0 {
			continue
		}
		if x1-x0 < 1.5 {
			x1 = x0 + 1.5
		}
		fillRect(&c, x0, y0, x1, y1, b.color)
	}
}

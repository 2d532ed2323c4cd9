package report

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"html"
	"image"
	"image/color"
	"image/png"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crampwatch/crampwatch/alerts"
	"github.com/crampwatch/crampwatch/detect"
	firmwaresim "github.com/crampwatch/crampwatch/firmware-sim"
	"github.com/crampwatch/crampwatch/ingest"
	"github.com/crampwatch/crampwatch/internal/testenv"
	"github.com/crampwatch/crampwatch/journal"
	"github.com/crampwatch/crampwatch/pipeline"
	"github.com/crampwatch/crampwatch/store"
	"github.com/crampwatch/crampwatch/wire"
)

// testDir holds the simulated night's journal; removed when the tests end.
var testDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "crampwatch-report-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	testDir = dir
	code := testenv.Run(m)
	os.RemoveAll(dir)
	os.Exit(code)
}

const (
	simDevice = "report-sim-01"
	simNight  = "2026-11-27"
	simTZ     = "Europe/Berlin"
)

// collector keeps every event's final report, as the pipeline emitted it.
type collector struct {
	mu     sync.Mutex
	events map[string]detect.Event
}

func (c *collector) Event(e detect.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.events[e.ID()] = e
}
func (c *collector) Envelope(detect.Envelope)    {}
func (c *collector) Motion(detect.Motion)        {}
func (c *collector) Health(ingest.Health)        {}
func (c *collector) Close(context.Context) error { return nil }

func (c *collector) count(k detect.Kind) int {
	n := 0
	for _, e := range c.events {
		if e.Kind == k {
			n++
		}
	}
	return n
}

// discard is the alert engine's MQTT publisher: the wearer's phone is not
// under test, the engine's records are.
type discard struct{}

func (discard) Publish(context.Context, string, byte, bool, []byte) error { return nil }

// night is a simulated night stored in InfluxDB and in a journal file.
type night struct {
	influx   testenv.Influx
	journal  string
	hours    float64 // length of the simulated night
	channels []wire.Channel
	got      *collector
	truth    []firmwaresim.Truth
}

var (
	nightOnce sync.Once
	nightVal  night
	nightErr  string
)

// simulatedNight runs a simulated night once per test binary through the
// production path: firmware simulator -> ingest router -> pipeline with the
// real detector -> the real alert engine, the InfluxDB sink (the alert
// engine records through it) and the journal.
func simulatedNight(t *testing.T) night {
	t.Helper()
	nightOnce.Do(func() { nightVal, nightErr = runNight(t) })
	if nightErr != "" {
		t.Fatal(nightErr)
	}
	return nightVal
}

func runNight(t *testing.T) (night, string) {
	loc, err := time.LoadLocation(simTZ)
	if err != nil {
		return night{}, err.Error()
	}
	sc := firmwaresim.DefaultScenario()
	sc.Hours = 2.5
	sc.Encoding = "binary"
	sc.Channels = []string{"calf_left", "calf_right", "hamstring_left", "hamstring_right"}
	sc.Cramps.PerNight = 4
	sc.Cramps.DurationS = firmwaresim.Range{10, 240}
	sc.PLM.WearerFraction = 1
	sc.PLM.SeriesPerNight = 2
	start := time.Date(2026, 11, 27, 22, 40, 0, 0, loc)

	// The first seed whose night has what the report shows: cramps, a PLM
	// series, movements and artifacts. Truth is known up front.
	var dev *firmwaresim.Device
	for seed := int64(1); seed < 300 && dev == nil; seed++ {
		d := firmwaresim.NewDevice(simDevice, sc, seed, start)
		if err := d.Err(); err != nil {
			return night{}, "scenario: " + err.Error()
		}
		n := map[string]int{}
		for _, tr := range d.Truth() {
			n[tr.Kind]++
		}
		if n["cramp"] >= 3 && n["plm"] >= 8 && n["movement"] >= 2 && n["artifact"] >= 1 {
			dev = d
		}
	}
	if dev == nil {
		return night{}, "no seed gives a night with cramps, PLMs, movements and artifacts"
	}

	db := testenv.InfluxDB(t)
	reg := prometheus.NewRegistry()
	log := slog.New(slog.DiscardHandler)
	cfg := store.DefaultConfig()
	cfg.URL, cfg.Token, cfg.Org, cfg.Bucket, cfg.Logger = db.URL, db.Token, db.Org, db.Bucket, log
	sink, err := store.New(cfg, reg)
	if err != nil {
		return night{}, err.Error()
	}
	jpath := filepath.Join(testDir, "journal.jsonl")
	jr, err := journal.Open(journal.Config{Path: jpath, Logger: log}, reg)
	if err != nil {
		return night{}, err.Error()
	}
	acfg := alerts.DefaultConfig()
	acfg.TimeZone = simTZ
	eng, err := alerts.NewEngine(acfg, alerts.Deps{Publisher: discard{}, Recorder: store.NewAlertRecorder(sink), Logger: log})
	if err != nil {
		return night{}, err.Error()
	}
	got := &collector{events: map[string]detect.Event{}}
	// The engine closes before the InfluxDB sink, so its records are
	// queued before the sink's final flush.
	pipe := pipeline.New(detect.DefaultConfig(), pipeline.NewMetrics(reg), log, eng, sink, jr, got)
	router := ingest.NewRouter(ingest.Config{}, pipe, ingest.NewMetrics(reg), log)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	buf := make([]byte, 0, 64<<10)
	for {
		m, ok := dev.Next(buf)
		if !ok {
			break
		}
		if err := router.Feed(ctx, wire.Topic(wire.DefaultPrefix, simDevice, m.Stream), m.Payload); err != nil {
			return night{}, "feed: " + err.Error()
		}
		buf = m.Payload[:0]
	}
	if err := dev.Err(); err != nil {
		return night{}, "simulator: " + err.Error()
	}
	router.Close()
	pipe.EndStreams()
	if err := pipe.Close(ctx); err != nil {
		return night{}, "close pipeline: " + err.Error()
	}
	var chans []wire.Channel
	for _, l := range sc.Channels {
		c, _ := wire.ParseChannel(l)
		chans = append(chans, c)
	}
	return night{influx: db, journal: jpath, hours: sc.Hours, channels: chans, got: got, truth: dev.Truth()}, ""
}

func berlin(t *testing.T) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(simTZ)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func influxSource(t *testing.T, db testenv.Influx) *InfluxSource {
	t.Helper()
	cfg := store.DefaultConfig()
	cfg.URL, cfg.Token, cfg.Org, cfg.Bucket = db.URL, db.Token, db.Org, db.Bucket
	cfg.Logger = slog.New(slog.DiscardHandler)
	src, err := NewInfluxSource(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close(context.Background()) })
	return src
}

// keep writes a test's output files to $CRAMPWATCH_REPORT_OUT, if set, for
// a person to look at.
func keep(t *testing.T, name string, b []byte) {
	if dir := os.Getenv("CRAMPWATCH_REPORT_OUT"); dir != "" {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Error(err)
		}
	}
}

func eventIDs(events []detect.Event) []string {
	ids := make([]string, len(events))
	for i, e := range events {
		ids[i] = e.ID()
	}
	slices.Sort(ids)
	return ids
}

func TestInfluxNightReport(t *testing.T) {
	n := simulatedNight(t)
	src := influxSource(t, n.influx)
	r, err := Build(t.Context(), src, Options{Night: simNight, Location: berlin(t), StartHour: DefaultNightStartHour, Device: simDevice, Who: "sub-test"})
	if err != nil {
		t.Fatal(err)
	}
	d, s := r.Data, r.Summary
	t.Logf("summary: %+v", s)

	// The report shows exactly what the pipeline detected.
	var want []detect.Event
	for _, e := range n.got.events {
		want = append(want, e)
	}
	if g, w := eventIDs(d.Events), eventIDs(want); !slices.Equal(g, w) {
		t.Fatalf("events from InfluxDB: %d, pipeline emitted %d\n got %v\nwant %v", len(g), len(w), g, w)
	}
	for k, got := range map[detect.Kind]int{detect.KindCramp: s.Cramps, detect.KindPLM: s.PLMs, detect.KindMovement: s.Movements} {
		if w := n.got.count(k); got != w || w == 0 {
			t.Errorf("%s: summary %d, pipeline %d (the night must have some)", k, got, w)
		}
	}

	// Envelope: every channel, a point per 30 s window of the night.
	if len(d.Envelope) != len(n.channels) {
		t.Fatalf("envelope series %d, want one per channel (%d)", len(d.Envelope), len(n.channels))
	}
	windows := n.hours * 3600 / DefaultWindow.Seconds()
	for _, ser := range d.Envelope {
		if !slices.Contains(n.channels, ser.Channel) {
			t.Errorf("envelope of unknown channel %v", ser.Channel)
		}
		if p := float64(len(ser.Points)); p < 0.9*windows || p > windows+2 {
			t.Errorf("%v: %v envelope windows, want about %.0f", ser.Channel, p, windows)
		}
		for _, p := range ser.Points {
			if !(p.RMSUV > 0 && p.RMSUV < 20000) || !(p.BaselineUV > 0 && p.BaselineUV < 500) {
				t.Fatalf("%v at %v: rms %v baseline %v µV", ser.Channel, p.Time, p.RMSUV, p.BaselineUV)
			}
		}
	}
	// Recording: the simulated night, less its sensor gaps.
	var gaps float64
	for _, tr := range n.truth {
		if tr.Kind == "artifact" && tr.Cause == "gap" {
			gaps += tr.Duration().Hours()
		}
	}
	if s.RecordingBasis != BasisHealth || s.RecordingHours > n.hours+0.01 || s.RecordingHours < n.hours-gaps-0.05 {
		t.Errorf("recording %.3f h from %q, want %.2f h less up to %.3f h of gaps", s.RecordingHours, s.RecordingBasis, n.hours, gaps)
	}
	wantIdx := float64(s.PLMs) / s.RecordingHours
	if math.Abs(s.PLMIndex-wantIdx) > 1e-9 || math.Abs(s.CrampsPerHour-float64(s.Cramps)/s.RecordingHours) > 1e-9 {
		t.Errorf("rates: PLM index %v (want %v), cramps/h %v", s.PLMIndex, wantIdx, s.CrampsPerHour)
	}
	// Alerts come from the engine's records: at least one episode, never
	// more episodes than alerted cramps, buzzed within seconds.
	if !s.AlertsKnown || s.Alerts < 1 || s.Alerts > s.AlertedCramps || s.AlertedCramps > s.Cramps {
		t.Errorf("alerts: known %v, %d episodes covering %d of %d cramps", s.AlertsKnown, s.Alerts, s.AlertedCramps, s.Cramps)
	}
	if !(s.MedianAlertLatencyS > 0 && s.MedianAlertLatencyS < 30) || !(s.MedianConfirmS > 0 && s.MedianConfirmS < 30) {
		t.Errorf("latency: alert %v s, confirmation %v s", s.MedianAlertLatencyS, s.MedianConfirmS)
	}

	var pngBuf bytes.Buffer
	if err := RenderPNG(&pngBuf, r); err != nil {
		t.Fatal(err)
	}
	keep(t, "influx-night.png", pngBuf.Bytes())
	img := checkPNG(t, pngBuf.Bytes(), len(d.Envelope))
	// Every kind of mark is drawn in its own colour.
	for name, c := range map[string]color.NRGBA{"cramp": colCramp, "PLM": colPLM, "movement": colMovement, "artifact": colArtifact, "recording": colRecording} {
		if n := countColor(img, c); n < 20 {
			t.Errorf("%s colour: %d pixels", name, n)
		}
	}
	if n := countNear(img, blend(colCrampFill)); n < 200 {
		t.Errorf("cramp shading: %d pixels", n)
	}

	var page bytes.Buffer
	if err := RenderHTML(&page, r, pngBuf.Bytes()); err != nil {
		t.Fatal(err)
	}
	keep(t, "influx-night.html", page.Bytes())
	vals := checkHTML(t, page.String(), pngBuf.Bytes())
	for id, want := range map[string]string{
		"cramps":           strconv.Itoa(s.Cramps),
		"plms":             strconv.Itoa(s.PLMs),
		"movements":        strconv.Itoa(s.Movements),
		"alerts":           strconv.Itoa(s.Alerts),
		"recording-hours":  strconv.FormatFloat(s.RecordingHours, 'f', 2, 64) + " h",
		"plm-index":        strconv.FormatFloat(s.PLMIndex, 'f', 2, 64),
		"cramps-per-hour":  strconv.FormatFloat(s.CrampsPerHour, 'f', 2, 64),
		"artifact-minutes": strconv.FormatFloat(s.ArtifactMinutes, 'f', 2, 64) + " min",
		"alert-latency":    strconv.FormatFloat(s.MedianAlertLatencyS, 'f', 1, 64) + " s",
		"longest-cramp":    durationText(s.LongestCrampS),
		"total-cramp":      durationText(s.TotalCrampS),
	} {
		if vals[id] != want {
			t.Errorf("page %s = %q, want %q", id, vals[id], want)
		}
	}
	if strings.Contains(page.String(), simDevice) {
		t.Error("page shows the device id although a subject name was given")
	}
	if c := strings.Count(page.String(), "<tr><td>"); c != s.Cramps {
		t.Errorf("cramp table has %d rows, want %d", c, s.Cramps)
	}
}

func TestJournalNightReport(t *testing.T) {
	n := simulatedNight(t)
	loc := berlin(t)
	opt := Options{Night: simNight, Location: loc, StartHour: DefaultNightStartHour, Device: simDevice}
	jr, err := Build(t.Context(), JournalSource{Path: n.journal}, opt)
	if err != nil {
		t.Fatal(err)
	}
	ir, err := Build(t.Context(), influxSource(t, n.influx), opt)
	if err != nil {
		t.Fatal(err)
	}
	// The journal holds the same events, in their final state.
	if g, w := eventIDs(jr.Data.Events), eventIDs(ir.Data.Events); !slices.Equal(g, w) {
		t.Fatalf("journal events %v\ninflux events %v", g, w)
	}
	for i, e := range jr.Data.Events {
		f := ir.Data.Events[i]
		if e.State != f.State || math.Abs(e.DurationS-f.DurationS) > 1e-3 || e.ConfirmedAt.Sub(f.ConfirmedAt).Abs() > time.Millisecond {
			t.Errorf("%s: journal %s %.3f s confirmed %v, influx %s %.3f s confirmed %v",
				e.ID(), e.State, e.DurationS, e.ConfirmedAt, f.State, f.DurationS, f.ConfirmedAt)
		}
	}
	js, is := jr.Summary, ir.Summary
	if js.Cramps != is.Cramps || js.PLMs != is.PLMs || js.Movements != is.Movements ||
		math.Abs(js.TotalCrampS-is.TotalCrampS) > 0.01 || math.Abs(js.ArtifactMinutes-is.ArtifactMinutes) > 0.01 {
		t.Errorf("journal summary %+v\ndiffers from influx %+v", js, is)
	}
	if jr.Data.Envelope != nil || js.AlertsKnown || js.RecordingBasis != BasisUnknown || !math.IsNaN(js.MedianAlertLatencyS) {
		t.Errorf("journal: envelope %v, alerts known %v, basis %q, alert latency %v", jr.Data.Envelope != nil, js.AlertsKnown, js.RecordingBasis, js.MedianAlertLatencyS)
	}
	if !math.IsNaN(js.RecordingHours) || !math.IsNaN(js.CrampsPerHour) || !math.IsNaN(js.PLMIndex) {
		t.Errorf("journal: recording %v h, %v cramps/h, PLM index %v; the journal cannot know", js.RecordingHours, js.CrampsPerHour, js.PLMIndex)
	}
	if math.Abs(js.MedianConfirmS-is.MedianConfirmS) > 1e-3 {
		t.Errorf("confirmation latency: journal %v s, influx %v s", js.MedianConfirmS, is.MedianConfirmS)
	}

	var pngBuf bytes.Buffer
	if err := RenderPNG(&pngBuf, jr); err != nil {
		t.Fatal(err)
	}
	keep(t, "journal-night.png", pngBuf.Bytes())
	img := checkPNG(t, pngBuf.Bytes(), 0)
	for name, c := range map[string]color.NRGBA{"cramp": colCramp, "PLM": colPLM, "movement": colMovement} {
		if n := countColor(img, c); n < 20 {
			t.Errorf("%s colour: %d pixels", name, n)
		}
	}
	var page bytes.Buffer
	if err := RenderHTML(&page, jr, pngBuf.Bytes()); err != nil {
		t.Fatal(err)
	}
	keep(t, "journal-night.html", page.Bytes())
	vals := checkHTML(t, page.String(), pngBuf.Bytes())
	for id, want := range map[string]string{
		"cramps": strconv.Itoa(js.Cramps), "plms": strconv.Itoa(js.PLMs), "alerts": "n/a", "alert-latency": "n/a",
		"recording-hours": "n/a", "cramps-per-hour": "n/a", "plm-index": "n/a",
		"confirm-latency": strconv.FormatFloat(js.MedianConfirmS, 'f', 1, 64) + " s",
	} {
		if vals[id] != want {
			t.Errorf("journal page %s = %q, want %q", id, vals[id], want)
		}
	}
	for _, want := range []string{"No envelope: the local journal keeps events only", "No alert records", "Recording time unknown", simDevice} {
		if !strings.Contains(page.String(), want) {
			t.Errorf("journal page lacks %q", want)
		}
	}
}

func TestWriteFilesAndFindDevice(t *testing.T) {
	n := simulatedNight(t)
	loc := berlin(t)
	src := JournalSource{Path: n.journal}
	dev, err := FindDevice(t.Context(), src, simNight, loc, DefaultNightStartHour, func(d string) bool { return d == simDevice })
	if err != nil || dev != simDevice {
		t.Fatalf("FindDevice = %q, %v", dev, err)
	}
	if _, err := FindDevice(t.Context(), src, simNight, loc, DefaultNightStartHour, func(string) bool { return false }); err == nil {
		t.Error("FindDevice found a device nothing matches")
	}
	if _, err := FindDevice(t.Context(), src, "2026-11-20", loc, DefaultNightStartHour, func(string) bool { return true }); err == nil {
		t.Error("FindDevice found a device in a night without events")
	}
	idev, err := FindDevice(t.Context(), influxSource(t, n.influx), simNight, loc, DefaultNightStartHour, func(d string) bool { return d == simDevice })
	if err != nil || idev != simDevice {
		t.Fatalf("FindDevice on InfluxDB = %q, %v", idev, err)
	}

	dir := t.TempDir()
	opt := Options{Night: simNight, Location: loc, StartHour: DefaultNightStartHour, Device: simDevice,
		PNGPath: filepath.Join(dir, "night.png"), HTMLPath: filepath.Join(dir, "night.html")}
	if _, err := Write(t.Context(), src, opt); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("directory holds %d files, want the two reports and no temporary file", len(entries))
	}
	for _, p := range []string{opt.PNGPath, opt.HTMLPath} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != FileMode || fi.Size() < 10_000 {
			t.Errorf("%s: mode %v, %d bytes", p, fi.Mode().Perm(), fi.Size())
		}
	}
	// A cancelled run writes nothing.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	opt.PNGPath, opt.HTMLPath = filepath.Join(dir, "c.png"), filepath.Join(dir, "c.html")
	if _, err := Write(ctx, src, opt); err == nil {
		t.Error("cancelled Write succeeded")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 2 {
		t.Errorf("cancelled Write left %d files", len(entries))
	}
}

// checkPNG decodes the picture and checks that it has the expected size
// and is a picture rather than a blank page.
func checkPNG(t *testing.T, b []byte, panels int) image.Image {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("decode png: %v", err)
	}
	bounds := img.Bounds()
	if bounds.Dx() != 1200 {
		t.Errorf("width %d px, want 1200", bounds.Dx())
	}
	// Height grows with the number of envelope panels: about 145 px each
	// under a heading, timeline and footer of about 420 px.
	minH := 400 + panels*140
	if bounds.Dy() < minH || bounds.Dy() > minH+150 {
		t.Errorf("height %d px for %d panels, want %d..%d", bounds.Dy(), panels, minH, minH+150)
	}
	colours := map[color.RGBA]bool{}
	inked := 0
	for y := bounds.Min.Y; y < bounds.Max.Y; y++ {
		for x := bounds.Min.X; x < bounds.Max.X; x++ {
			c := color.RGBAModel.Convert(img.At(x, y)).(color.RGBA)
			colours[c] = true
			if c.R < 0xF0 || c.G < 0xF0 || c.B < 0xF0 {
				inked++
			}
		}
	}
	frac := float64(inked) / float64(bounds.Dx()*bounds.Dy())
	t.Logf("png: %dx%d px, %d bytes, %d colours, %.1f%% inked", bounds.Dx(), bounds.Dy(), len(b), len(colours), 100*frac)
	if len(colours) < 50 {
		t.Errorf("%d distinct colours: too few for text, lines and marks", len(colours))
	}
	if frac < 0.03 || frac > 0.5 {
		t.Errorf("%.1f%% of pixels inked: want a drawn picture, neither blank nor a smear", 100*frac)
	}
	return img
}

// countColor counts the pixels of exactly c (opaque fills are drawn without
// antialiasing inside).
func countColor(img image.Image, c color.NRGBA) int {
	want := color.RGBAModel.Convert(c).(color.RGBA)
	n := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			if color.RGBAModel.Convert(img.At(x, y)).(color.RGBA) == want {
				n++
			}
		}
	}
	return n
}

// countNear counts pixels within a few levels of c.
func countNear(img image.Image, c color.RGBA) int {
	n := 0
	b := img.Bounds()
	near := func(a, b uint8) bool { return math.Abs(float64(a)-float64(b)) <= 3 }
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			p := color.RGBAModel.Convert(img.At(x, y)).(color.RGBA)
			if near(p.R, c.R) && near(p.G, c.G) && near(p.B, c.B) {
				n++
			}
		}
	}
	return n
}

// blend is c drawn over white.
func blend(c color.NRGBA) color.RGBA {
	a := float64(c.A) / 255
	mix := func(v uint8) uint8 { return uint8(math.Round(float64(v)*a + 255*(1-a))) }
	return color.RGBA{mix(c.R), mix(c.G), mix(c.B), 0xFF}
}

var idValue = regexp.MustCompile(`id="([a-z-]+)">([^<]*)<`)

// checkHTML checks that the page is self-contained and embeds exactly the
// picture, and returns the summary values by id.
func checkHTML(t *testing.T, page string, pngBytes []byte) map[string]string {
	t.Helper()
	const prefix = `src="data:image/png;base64,`
	i := strings.Index(page, prefix)
	if i < 0 {
		t.Fatal("page has no embedded PNG")
	}
	rest := page[i+len(prefix):]
	b64 := html.UnescapeString(rest[:strings.IndexByte(rest, '"')])
	img, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || !bytes.Equal(img, pngBytes) {
		t.Errorf("embedded image is not the PNG (%v)", err)
	}
	for _, external := range []string{"http://", "https://", "<script", "<link"} {
		if strings.Contains(page, external) {
			t.Errorf("page is not self-contained: has %q", external)
		}
	}
	vals := map[string]string{}
	for _, m := range idValue.FindAllStringSubmatch(page, -1) {
		vals[m[1]] = m[2]
	}
	if len(vals) < 12 {
		t.Errorf("page has %d summary values: %v", len(vals), vals)
	}
	return vals
}

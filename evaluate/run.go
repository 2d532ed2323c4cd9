package evaluate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"runtime"
	"sort"
	"sync"
	"time"

	"github.com/crampwatch/crampwatch/detect"
	firmwaresim "github.com/crampwatch/crampwatch/firmware-sim"
	"github.com/crampwatch/crampwatch/ingest"
	"github.com/crampwatch/crampwatch/pipeline"
	"github.com/crampwatch/crampwatch/wire"
)

// Options configures Run.
type Options struct {
	Nights   int                  // nights to simulate (one device each), at least 1
	Seed     int64                // run seed: night i is firmwaresim device i of this seed
	Scenario firmwaresim.Scenario // zero value: firmwaresim.DefaultScenario()
	// Overrides of the scenario, applied when positive.
	Rate  float64 // EMG sample rate, Hz
	Mains float64 // mains frequency, 50 or 60 Hz
	Gain  float64 // factor on the scenario's gain range
	Hours float64 // night length; per-night event counts are scaled to keep hourly rates
	// Start is the sample time the nights start at; zero means
	// 2025-01-06T22:00:00Z, so reports do not depend on when they were run.
	Start time.Time
	// Detect configures the detector; nil means detect.DefaultConfig().
	Detect *detect.Config
	// Ingest configures the router (Prefix is set by Run).
	Ingest ingest.Config
	// Parallel is the number of nights generated at once; zero means GOMAXPROCS.
	Parallel int
	Match    MatchOptions // Nights is set by Run
	// Truth and Events, if set, receive the truth and the detected events as
	// JSON Lines, for a closer look or a re-match.
	Truth  io.Writer
	Events io.Writer
	Logger *slog.Logger
}

// DefaultStart is the sample time evaluation nights start at unless
// Options.Start says otherwise.
var DefaultStart = time.Date(2025, 1, 6, 22, 0, 0, 0, time.UTC)

// EffectiveScenario returns the scenario Run simulates: o.Scenario (or the default)
// with o's overrides applied.
func (o *Options) EffectiveScenario() firmwaresim.Scenario {
	sc := o.Scenario
	if sc.Hours == 0 {
		sc = firmwaresim.DefaultScenario()
	}
	if o.Rate > 0 {
		sc.Rate = o.Rate
	}
	if o.Mains > 0 {
		sc.Mains = o.Mains
	}
	if o.Gain > 0 {
		sc.Wearer.Gain = firmwaresim.Range{sc.Wearer.Gain[0] * o.Gain, sc.Wearer.Gain[1] * o.Gain}
	}
	if o.Hours > 0 {
		sc = sc.WithHours(o.Hours)
	}
	return sc
}

// Run simulates o.Nights nights and pushes every message through the
// production path: an ingest.Router (Feed, which waits rather than drops)
// feeding a pipeline.Pipeline whose detectors report to a collecting sink.
// Nights are generated in parallel; each night's messages are fed in order
// by one goroutine, so the events, and the Report apart from its
// throughput figures, depend only on the options. At the end the streams
// are ended (open events close at the last sample) and the events are
// matched against the truth.
func Run(ctx context.Context, o Options) (Report, error) {
	if o.Nights < 1 {
		return Report{}, fmt.Errorf("evaluate: nights %d: want at least 1", o.Nights)
	}
	sc := o.EffectiveScenario()
	if err := sc.Validate(); err != nil {
		return Report{}, fmt.Errorf("evaluate: scenario: %w", err)
	}
	dcfg := detect.DefaultConfig()
	if o.Detect != nil {
		dcfg = *o.Detect
	}
	if err := dcfg.Validate(); err != nil {
		return Report{}, fmt.Errorf("evaluate: %w", err)
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	start := o.Start
	if start.IsZero() {
		start = DefaultStart
	}
	par := o.Parallel
	if par <= 0 {
		par = runtime.GOMAXPROCS(0)
	}

	sink := &collector{health: map[string]ingest.Health{}}
	pl := pipeline.New(dcfg, nil, log, sink)
	icfg := o.Ingest
	icfg.Prefix = wire.DefaultPrefix
	// Nights are fed faster than real time: never evict a device for
	// wall-clock silence while its neighbours are being fed.
	icfg.IdleTimeout = -1
	router := ingest.NewRouter(icfg, pl, nil, log)
	rc := firmwaresim.RunConfig{Prefix: icfg.Prefix, DevicePrefix: "night-", Seed: o.Seed, Scenario: sc, Start: start}

	wall := time.Now()
	truths := make([][]firmwaresim.Truth, o.Nights)
	errs := make([]error, o.Nights)
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range min(par, o.Nights) {
		wg.Go(func() {
			var buf []byte
			for i := range jobs {
				truths[i], errs[i] = feedNight(ctx, router, rc, i, &buf)
			}
		})
	}
feed:
	for i := range o.Nights {
		select {
		case jobs <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	router.Close()
	pl.EndStreams()
	closeErr := pl.Close(context.WithoutCancel(ctx))
	elapsed := time.Since(wall)
	if err := ctx.Err(); err != nil {
		return Report{}, fmt.Errorf("evaluate: %w", err)
	}
	if err := errors.Join(append(errs, closeErr)...); err != nil {
		return Report{}, fmt.Errorf("evaluate: %w", err)
	}

	var truth []firmwaresim.Truth
	for _, ts := range truths {
		truth = append(truth, ts...)
	}
	events := sink.sorted()
	if err := writeJSONL(o.Truth, o.Events, truth, events); err != nil {
		return Report{}, err
	}
	mo := o.Match
	mo.Nights = o.Nights
	r := Match(truth, events, mo)
	r.Hours = sc.Hours * float64(o.Nights)
	r.WallS = elapsed.Seconds()
	samples := r.Hours * 3600 * sc.Rate * float64(len(sc.Channels))
	r.SamplesPerSecond = Float(samples / elapsed.Seconds())
	r.RealtimeFactor = Float(r.Hours * 3600 / elapsed.Seconds())
	for _, h := range sink.health {
		r.Ingest.FramesIn += h.FramesIn
		r.Ingest.FramesLost += h.FramesLost
		r.Ingest.FramesDup += h.FramesDup
		r.Ingest.Rejected += h.Rejected
	}
	log.Info("evaluation done", "nights", o.Nights, "scenario", sc.Name, "wall", elapsed,
		"cramps", r.Cramps, "sensitivity", float64(r.CrampSensitivity), "false_alerts", r.FalseAlerts)
	return r, nil
}

// feedNight feeds night i's messages to the router, in order, and returns
// its truth.
func feedNight(ctx context.Context, router *ingest.Router, rc firmwaresim.RunConfig, i int, buf *[]byte) ([]firmwaresim.Truth, error) {
	d := rc.Device(i)
	topics := map[wire.Stream]string{}
	for _, s := range []wire.Stream{wire.StreamEMG, wire.StreamIMU, wire.StreamStatus} {
		topics[s] = wire.Topic(rc.Prefix, d.ID(), s)
	}
	for {
		m, ok := d.Next(*buf)
		if !ok {
			break
		}
		*buf = m.Payload
		if err := router.Feed(ctx, topics[m.Stream], m.Payload); err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			// Rejections are counted by ingest (Report.Ingest.Rejected);
			// a simulated frame should never be one.
			var werr *wire.Error
			if !errors.As(err, &werr) {
				return nil, fmt.Errorf("night %d: feed: %w", i, err)
			}
		}
	}
	if err := d.Err(); err != nil {
		return nil, err
	}
	return d.Truth(), nil
}

// collector is the pipeline sink of an evaluation: it keeps every event and
// each device's latest health report, and ignores envelopes and motion.
type collector struct {
	mu     sync.Mutex
	events []detect.Event
	health map[string]ingest.Health
}

func (c *collector) Event(e detect.Event) {
	c.mu.Lock()
	c.events = append(c.events, e)
	c.mu.Unlock()
}

func (c *collector) Envelope(detect.Envelope) {}
func (c *collector) Motion(detect.Motion)     {}

func (c *collector) Health(h ingest.Health) {
	c.mu.Lock()
	c.health[h.Device] = h
	c.mu.Unlock()
}

func (c *collector) Close(context.Context) error { return nil }

// sorted returns the events in a deterministic order: shards interleave
// devices differently from run to run, but each device's own order is fixed.
func (c *collector) sorted() []detect.Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := append([]detect.Event(nil), c.events...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Device < out[j].Device })
	return out
}

var _ pipeline.Sink = (*collector)(nil)

// eventLine is an event as written to Options.Events.
type eventLine struct {
	Device       string    `json:"device"`
	Kind         string    `json:"kind"`
	State        string    `json:"state"`
	Muscle       string    `json:"muscle"`
	Side         string    `json:"side"`
	Onset        time.Time `json:"onset"`
	End          time.Time `json:"end"`
	ConfirmedAt  time.Time `json:"confirmed_at"`
	DurationS    float64   `json:"duration_s"`
	PeakUV       float64   `json:"peak_uv"`
	MeanUV       float64   `json:"mean_uv"`
	MedianFreqHz float64   `json:"median_freq_hz"`
	Confidence   float64   `json:"confidence"`
	Cause        string    `json:"cause,omitempty"`
}

func writeJSONL(tw, ew io.Writer, truth []firmwaresim.Truth, events []detect.Event) error {
	if tw != nil {
		if err := firmwaresim.WriteTruth(tw, truth); err != nil {
			return fmt.Errorf("evaluate: %w", err)
		}
	}
	if ew == nil {
		return nil
	}
	enc := json.NewEncoder(ew)
	for _, e := range events {
		l := eventLine{
			Device: e.Device, Kind: string(e.Kind), State: string(e.State),
			Muscle: e.Channel.Muscle.String(), Side: e.Channel.Side.String(),
			Onset: e.Onset.UTC(), End: e.End.UTC(), ConfirmedAt: e.ConfirmedAt.UTC(),
			DurationS: e.DurationS, PeakUV: finite(e.PeakUV), MeanUV: finite(e.MeanUV),
			MedianFreqHz: finite(e.MedianFreqHz), Confidence: finite(e.Confidence), Cause: e.Cause,
		}
		if err := enc.Encode(&l); err != nil {
			return fmt.Errorf("evaluate: events: %w", err)
		}
	}
	return nil
}

func finite(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	return v
}

package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/crampwatch/crampwatch/embedbroker"
	firmwaresim "github.com/crampwatch/crampwatch/firmware-sim"
	"github.com/crampwatch/crampwatch/mqttclient"
)

// soakOptions are the soak command's own flags, on top of the service's.
type soakOptions struct {
	devices  int
	duration time.Duration
	speed    float64
	seed     int64
	encoding string
	embedded bool
	every    time.Duration
}

// runSoak runs the firmware simulator against the service, both in this
// process, for a chosen wall-clock time, and reports what an operator sizes
// a deployment by: frames published and received, frames lost, events,
// ingest lag percentiles and peak memory.
func runSoak(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	dir, err := os.MkdirTemp("", "crampwatch-soak-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cfg := defaultServeConfig()
	cfg.logLevel = "warn"
	cfg.httpAddr = "127.0.0.1:0"
	cfg.journalPath = filepath.Join(dir, "journal.jsonl")
	cfg.mqtt.ClientID = fmt.Sprintf("crampwatch-soak-%d", os.Getpid())
	opt := soakOptions{devices: 200, duration: 30 * time.Minute, speed: 1, seed: 1, encoding: "binary", every: time.Minute}
	_, _, err = parseServeFlags("soak", args, &cfg, stderr, func(fs *flag.FlagSet) {
		fs.IntVar(&opt.devices, "devices", opt.devices, "virtual wearers")
		fs.DurationVar(&opt.duration, "duration", opt.duration, "wall-clock time to run")
		fs.Float64Var(&opt.speed, "speed", opt.speed, "simulated seconds per wall-clock second (1: live devices)")
		fs.Int64Var(&opt.seed, "seed", opt.seed, "seed of the simulated nights")
		fs.StringVar(&opt.encoding, "encoding", opt.encoding, "frame encoding the devices use: binary or json")
		fs.BoolVar(&opt.embedded, "embedded-broker", opt.embedded, "use an in-process broker instead of --mqtt-url")
		fs.DurationVar(&opt.every, "progress", opt.every, "interval of progress lines on stderr; 0: none")
	})
	if err != nil {
		return err
	}
	if opt.devices < 1 || opt.duration <= 0 || !(opt.speed > 0) {
		return errors.New("soak: --devices, --duration and --speed must be positive")
	}
	log, err := newLogger(stderr, cfg.logLevel, cfg.logFormat)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if opt.embedded {
		broker, err := embedbroker.Start(ctx, "127.0.0.1:0", log.With("component", "broker"))
		if err != nil {
			return err
		}
		defer broker.Close()
		cfg.mqtt.URL = broker.URL()
	}

	reg := newRegistry()
	svc, err := startService(ctx, cfg, log, reg)
	if err != nil {
		return err
	}
	simCfg := cfg.mqtt
	simCfg.ClientID += "-sim"
	simCfg.CleanSession = true
	simCfg.StoreDir = ""
	simCfg.Metrics = nil
	sim, err := mqttclient.Connect(ctx, simCfg, log.With("mqtt", "sim"))
	if err != nil {
		svc.stop(context.Background(), true)
		return fmt.Errorf("simulator: %w", err)
	}
	defer sim.Close(time.Second)

	// Retained status messages of devices of earlier runs arrive as soon
	// as the service subscribes; they are not this run's.
	time.Sleep(time.Second)
	retained := gatherSoak(reg).received

	sc := firmwaresim.DefaultScenario().WithHours(opt.duration.Hours() * opt.speed)
	sc.Encoding = opt.encoding
	// Live devices: sample time is the wall clock, so the lag is real. A
	// run-unique device prefix keeps retained status messages of earlier
	// runs out of the count.
	run := firmwaresim.RunConfig{
		Prefix: cfg.prefix, Devices: opt.devices, Seed: opt.seed, Speed: opt.speed, Scenario: sc,
		DevicePrefix: fmt.Sprintf("soak%d-", time.Now().Unix()%100000),
	}
	fmt.Fprintf(stdout, "crampwatch soak: %d devices, %s of wall time at %gx, %s frames, broker %s\n",
		opt.devices, opt.duration, opt.speed, opt.encoding, cfg.mqtt.URL)

	loadBefore := loadAverage()
	began := time.Now()
	run.Start = began.UTC().Truncate(time.Millisecond)
	simCtx, stopSim := context.WithTimeout(ctx, opt.duration)
	defer stopSim()
	done := make(chan struct{})
	var stats firmwaresim.Stats
	var simErr error
	go func() {
		defer close(done)
		stats, simErr = firmwaresim.Run(simCtx, run, sim)
	}()
	var tick <-chan time.Time
	if opt.every > 0 {
		t := time.NewTicker(opt.every)
		defer t.Stop()
		tick = t.C
	}
wait:
	for {
		select {
		case <-done:
			break wait
		case <-tick:
			s := gatherSoak(reg)
			fmt.Fprintf(stderr, "soak %s: received %.0f frames, lag p99 %s, events %.0f, rss %s\n",
				time.Since(began).Round(time.Second), s.received-retained, fmtSeconds(s.lagQ(0.99)), s.events(), fmtKiB(procStatusKiB("VmRSS")))
		}
	}
	if simErr != nil && !errors.Is(simErr, context.DeadlineExceeded) && !errors.Is(simErr, context.Canceled) {
		log.Warn("simulator stopped with an error", "err", simErr)
	}
	// Let the service work through what the broker still has for it, until
	// the count stops moving: frames held for reordering behind a frame the
	// simulator lost on purpose are only counted when the router closes.
	published := float64(stats.Frames)
	drain := time.Now()
	last, still := -1.0, time.Now()
	for time.Since(drain) < 30*time.Second && time.Since(still) < 2*time.Second && ctx.Err() == nil {
		n := gatherSoak(reg).received - retained
		if n >= published {
			break
		}
		if n != last {
			last, still = n, time.Now()
		}
		time.Sleep(100 * time.Millisecond)
	}
	drained := time.Since(drain)
	stopCtx, stop := context.WithTimeout(context.Background(), cfg.shutdownTimeout)
	defer stop()
	stopErr := svc.stop(stopCtx, true)
	wall := time.Since(began)

	s := gatherSoak(reg)
	s.received -= retained
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)

	w := stdout
	fmt.Fprintf(w, "wall time            %s (simulated %.1f min per device; %.1f s to drain after the simulator stopped)\n",
		wall.Round(time.Second), sc.Hours*60, drained.Seconds())
	fmt.Fprintf(w, "frames published     %.0f (simulator: %d publish errors, %d dropped and %d duplicated on purpose)\n",
		published, stats.PublishErrors, stats.Lost+stats.GapLost, stats.Duplicates)
	fmt.Fprintf(w, "frames received      %.0f (in order %.0f, duplicates dropped %.0f, late %.0f, rejected %.0f; %.0f retained status messages of earlier runs not counted)\n",
		s.received, s.delivered-retained, s.dup, s.late, s.rejected, retained)
	fmt.Fprintf(w, "frames lost          %.0f (published but never received)\n", math.Max(0, published-s.received))
	fmt.Fprintf(w, "queue drops          %.0f, rate limited %.0f, queue waits %.0f\n", s.queueDropped, s.rateLimited, s.queueWaits)
	fmt.Fprintf(w, "events               %s\n", s.eventLine())
	fmt.Fprintf(w, "sink drops           %s; alert deliveries dropped %s\n", countsLine(s.sinkDropped), countsLine(s.alertDropped))
	fmt.Fprintf(w, "ingest lag           p50 %s  p90 %s  p99 %s  p99.9 %s  (%.0f frames; %.2f%% over 1 s, %.2f%% over 5 s)\n",
		fmtSeconds(s.lagQ(0.5)), fmtSeconds(s.lagQ(0.9)), fmtSeconds(s.lagQ(0.99)), fmtSeconds(s.lagQ(0.999)), s.lagCount,
		100*s.lagOver(1), 100*s.lagOver(5))
	fmt.Fprintf(w, "simulator lateness   max %.2f s behind its schedule when publishing (part of the lag above)\n", stats.MaxLagS)
	fmt.Fprintf(w, "memory               peak RSS %s, final RSS %s, Go heap in use %s (simulator and service in one process)\n",
		fmtKiB(procStatusKiB("VmHWM")), fmtKiB(procStatusKiB("VmRSS")), fmtKiB(int64(ms.HeapInuse/1024)))
	fmt.Fprintf(w, "cpu                  %s (%.2f cores on average; %d CPUs, load average %s at the start, %s at the end)\n",
		cpu.Round(time.Second), cpu.Seconds()/wall.Seconds(), runtime.NumCPU(), loadBefore, loadAverage())
	return stopErr
}

// soakFigures are the metrics the soak report is made of.
type soakFigures struct {
	delivered, dup, late, rejected, received float64
	queueDropped, rateLimited, queueWaits    float64
	byKind                                   map[string]float64
	sinkDropped                              map[string]float64 // by sink/measurement
	alertDropped                             map[string]float64 // by channel
	lagBuckets                               []*dto.Bucket
	lagCount                                 float64
}

func gatherSoak(g prometheus.Gatherer) soakFigures {
	s := soakFigures{byKind: map[string]float64{}, sinkDropped: map[string]float64{}, alertDropped: map[string]float64{}}
	mfs, err := g.Gather()
	if err != nil {
		return s
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			v := m.GetCounter().GetValue()
			switch mf.GetName() {
			case "crampwatch_ingest_frames_total":
				s.delivered += v
			case "crampwatch_ingest_duplicate_frames_total":
				s.dup += v
			case "crampwatch_ingest_late_frames_total":
				s.late += v
			case "crampwatch_ingest_rejected_total":
				s.rejected += v
				if labelValue(m, "reason") == "rate_limited" {
					s.rateLimited += v
				}
			case "crampwatch_ingest_queue_dropped_total":
				s.queueDropped += v
			case "crampwatch_ingest_queue_waits_total":
				s.queueWaits += v
			case "crampwatch_events_total":
				if labelValue(m, "state") == "ended" {
					s.byKind[labelValue(m, "kind")] += v
				}
			case "crampwatch_sink_dropped_total":
				if v > 0 {
					s.sinkDropped[labelValue(m, "sink")+"/"+labelValue(m, "measurement")] += v
				}
			case "crampwatch_alert_deliveries_total":
				if labelValue(m, "result") == "dropped" && v > 0 {
					s.alertDropped[labelValue(m, "channel")] += v
				}
			case "crampwatch_ingest_lag_seconds":
				s.lagBuckets = m.GetHistogram().GetBucket()
				s.lagCount = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	// Every message the service took from the broker ends up delivered,
	// dropped as a duplicate or late, or rejected; queue drops are included
	// in none of these, so they count as lost.
	s.received = s.delivered + s.dup + s.late + s.rejected
	return s
}

func labelValue(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func (s soakFigures) events() float64 {
	var n float64
	for _, v := range s.byKind {
		n += v
	}
	return n
}

// eventLine lists the ended events by kind (a cramp counts once).
func (s soakFigures) eventLine() string { return countsLine(s.byKind) }

func countsLine(m map[string]float64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %.0f", k, m[k]))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// lagQ estimates quantile q of the lag histogram the way Prometheus's
// histogram_quantile does: linear interpolation inside the bucket. It
// returns +Inf when q falls beyond the last finite bucket and NaN without
// observations.
func (s soakFigures) lagQ(q float64) float64 {
	return histogramQuantile(q, s.lagBuckets, s.lagCount)
}

// lagOver is the fraction of frames whose lag exceeded the bucket bound le.
func (s soakFigures) lagOver(le float64) float64 {
	if s.lagCount == 0 {
		return math.NaN()
	}
	for _, b := range s.lagBuckets {
		if b.GetUpperBound() == le {
			return 1 - float64(b.GetCumulativeCount())/s.lagCount
		}
	}
	return math.NaN()
}

// loadAverage returns the 1-minute load average from /proc/loadavg, or
// "n/a": on a shared machine it says how much the figures were disturbed.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "n/a"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "n/a"
	}
	return f[0]
}

func histogramQuantile(q float64, buckets []*dto.Bucket, count float64) float64 {
	if count == 0 {
		return math.NaN()
	}
	rank := q * count
	lower, below := 0.0, 0.0
	for _, b := range buckets {
		upper, cum := b.GetUpperBound(), float64(b.GetCumulativeCount())
		if cum >= rank {
			if cum == below {
				return upper
			}
			return lower + (upper-lower)*(rank-below)/(cum-below)
		}
		lower, below = upper, cum
	}
	return math.Inf(1)
}

func fmtSeconds(v float64) string {
	switch {
	case math.IsNaN(v):
		return "n/a"
	case math.IsInf(v, 1):
		return "> 300 s"
	case v < 1:
		return fmt.Sprintf("%.0f ms", v*1000)
	}
	return fmt.Sprintf("%.2f s", v)
}

func fmtKiB(k int64) string {
	if k < 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.0f MiB", float64(k)/1024)
}

// procStatusKiB reads a kB field (VmHWM: peak resident set, VmRSS: current)
// of /proc/self/status; -1 where there is no /proc.
func procStatusKiB(field string) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || name != field {
			continue
		}
		v, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		if err != nil {
			return -1
		}
		return v
	}
	return -1
}

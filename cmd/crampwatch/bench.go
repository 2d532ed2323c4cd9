package main

// "crampwatch bench": the end-to-end throughput benchmark of docs/performance.md.
//
// It starts (or is given) a real Mosquitto and a real InfluxDB, runs the
// service in this process exactly as "serve" runs it, and drives it with the
// simulator ("crampwatch sim") in a child process, so that the CPU of the
// service, the simulator, the broker and the database can each be measured
// on their own. After a warm-up it measures for a fixed window: frames and
// samples per second, the lag from a point's sample time to the moment the
// detector emits it, events, CPU and memory; then it lets the simulator
// finish and checks that every frame it published was delivered.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/crampwatch/crampwatch/detect"
	firmwaresim "github.com/crampwatch/crampwatch/firmware-sim"
	"github.com/crampwatch/crampwatch/ingest"
	"github.com/crampwatch/crampwatch/internal/localserver"
	"github.com/crampwatch/crampwatch/wire"
)

// benchOptions are the bench command's own flags; serve flags go after "--".
type benchOptions struct {
	devices    int
	duration   time.Duration
	warmup     time.Duration
	encoding   string
	mqttURL    string
	influxURL  string
	bucket     string
	noInflux   bool
	noService  bool
	cpuProfile string
	jsonOut    bool
	// simCommand builds the simulator's command line; nil runs this
	// executable's "sim". Tests replace it.
	simCommand func(ctx context.Context, args []string) *exec.Cmd
}

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	opt := benchOptions{devices: 1000, duration: 3 * time.Minute, warmup: 30 * time.Second, encoding: "json"}
	benchArgs, serveArgs := splitArgs(args)
	fs := flag.NewFlagSet("crampwatch bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: crampwatch bench [flags] [-- serve flags]")
		fmt.Fprintln(stderr, "\nRuns the service against N simulated devices on a real Mosquitto and InfluxDB and")
		fmt.Fprintln(stderr, "reports throughput, lag, frames lost, CPU and memory. Flags after -- go to the service.")
		fs.PrintDefaults()
	}
	fs.IntVar(&opt.devices, "devices", opt.devices, "simulated devices (2 EMG channels at 1 kHz, 2 IMUs at 50 Hz, 100 ms frames)")
	fs.DurationVar(&opt.duration, "duration", opt.duration, "length of the measured window")
	fs.DurationVar(&opt.warmup, "warmup", opt.warmup, "time before the window, not measured (connections, first allocations, baselines)")
	fs.StringVar(&opt.encoding, "encoding", opt.encoding, "frame encoding: json or binary")
	fs.StringVar(&opt.mqttURL, "mqtt-url", "", "broker to use; empty: start a Mosquitto on a free loopback port")
	fs.StringVar(&opt.influxURL, "influx-url", "", "InfluxDB to use; empty: start an InfluxDB 1.8 on a free loopback port")
	fs.StringVar(&opt.bucket, "influx-bucket", "", "bucket with --influx-url (a given server's token: pass --influx-token after --)")
	fs.BoolVar(&opt.noInflux, "no-influx", false, "run the service without a database (journal only)")
	fs.BoolVar(&opt.noService, "no-service", false, "run only the broker and the simulator: measures the load generator")
	fs.StringVar(&opt.cpuProfile, "cpuprofile", "", "write a CPU profile of the service over the measured window to this file")
	fs.BoolVar(&opt.jsonOut, "json", false, "print the report as JSON")
	if err := fs.Parse(benchArgs); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		fmt.Fprintf(stderr, "crampwatch bench: unexpected argument %q (serve flags go after --)\n", fs.Arg(0))
		return errUsage
	case opt.devices < 1 || opt.duration <= 0 || opt.warmup < 0:
		fmt.Fprintln(stderr, "crampwatch bench: want --devices >= 1, --duration > 0 and --warmup >= 0")
		return errUsage
	case opt.encoding != "json" && opt.encoding != "binary":
		fmt.Fprintf(stderr, "crampwatch bench: --encoding %q: want json or binary\n", opt.encoding)
		return errUsage
	case (opt.influxURL == "") != (opt.bucket == ""):
		fmt.Fprintln(stderr, "crampwatch bench: --influx-url and --influx-bucket go together")
		return errUsage
	}
	log, err := newLogger(stderr, "info", "text")
	if err != nil {
		return err
	}
	rep, err := runBenchmark(ctx, opt, serveArgs, log, stderr)
	if rep != nil {
		if opt.jsonOut {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			if jerr := enc.Encode(rep); jerr != nil {
				err = errors.Join(err, jerr)
			}
		} else {
			rep.print(stdout)
		}
	}
	return err
}

// splitArgs splits the command line at the first "--".
func splitArgs(args []string) (before, after []string) {
	for i, a := range args {
		if a == "--" {
			return args[:i], args[i+1:]
		}
	}
	return args, nil
}

// benchReport is what a run measured. Rates are per second of the measured
// window; CPU is in cores (CPU seconds per wall-clock second).
type benchReport struct {
	Devices  int     `json:"devices"`
	Encoding string  `json:"encoding"`
	WindowS  float64 `json:"window_s"`
	WarmupS  float64 `json:"warmup_s"`

	LoadAvgStart string  `json:"loadavg_start"`
	LoadAvgEnd   string  `json:"loadavg_end"`
	MachineBusy  float64 `json:"machine_busy_cores"` // all processes, from /proc/stat
	OthersBusy   float64 `json:"others_busy_cores"`  // machine minus the processes measured here
	MachineCores int     `json:"machine_cores"`

	FramesPerS    float64            `json:"frames_per_s"`
	FramesByS     map[string]float64 `json:"frames_per_s_by_stream"`
	EMGSamplesPS  float64            `json:"emg_samples_per_s"` // all channels
	IMUSamplesPS  float64            `json:"imu_samples_per_s"` // 6-axis samples, all sites
	LagP50S       float64            `json:"lag_p50_s"`
	LagP99S       float64            `json:"lag_p99_s"`
	LagMaxS       float64            `json:"lag_max_s"`
	LagPoints     uint64             `json:"lag_points"`
	LagOffsetS    float64            `json:"lag_offset_s"` // simulator start-up subtracted from raw lags
	Events        map[string]float64 `json:"events"`       // whole run, by kind/state
	FramesSent    uint64             `json:"frames_published"`
	FramesIn      float64            `json:"frames_delivered"`
	FramesLost    int64              `json:"frames_lost"`
	SeqGaps       float64            `json:"sequence_gaps"`
	QueueDropped  float64            `json:"queue_dropped"`
	Rejected      float64            `json:"rejected"`
	PublishErrors uint64             `json:"publish_errors"`
	SimMaxLagS    float64            `json:"sim_max_publish_lag_s"`

	ServiceCPU float64 `json:"service_cpu_cores"`
	ServiceRSS int64   `json:"service_rss_bytes"`
	ServiceHWM int64   `json:"service_rss_peak_bytes"`
	HeapInuse  uint64  `json:"service_heap_inuse_bytes"`
	SimCPU     float64 `json:"sim_cpu_cores"`
	SimRSS     int64   `json:"sim_rss_bytes"`
	// The simulator's whole run (set-up included), from its rusage: CPU per
	// published frame, and the cores it needs for the devices in real time.
	// Unlike SimCPU these hold when the machine is too busy for it to keep up.
	SimCPUPerFrameUS float64 `json:"sim_cpu_per_frame_us"`
	SimCoresNeeded   float64 `json:"sim_cores_for_real_time"`
	SimElapsedS      float64 `json:"sim_elapsed_s"`
	NightS           float64 `json:"sim_night_s"`
	// The service's CPU per delivered frame over the window.
	ServiceCPUPerFrameUS float64 `json:"service_cpu_per_frame_us"`
	BrokerCPU            float64 `json:"broker_cpu_cores"`
	InfluxCPU            float64 `json:"influx_cpu_cores"`
	PointsPerS           float64 `json:"influx_points_per_s"`
	PointsDrop           float64 `json:"influx_points_dropped"`
	InfluxErrors         float64 `json:"influx_write_errors"`
	Serve                string  `json:"serve_args"`
	NoService            bool    `json:"no_service"`
}

func (r *benchReport) print(w io.Writer) {
	mib := func(b int64) float64 { return float64(b) / (1 << 20) }
	fmt.Fprintf(w, "crampwatch bench: %d devices, %s frames, %.0f s measured after %.0f s warm-up\n", r.Devices, r.Encoding, r.WindowS, r.WarmupS)
	fmt.Fprintf(w, "  machine        %d cores; load average %s -> %s; busy %.2f cores, of which %.2f by other processes\n",
		r.MachineCores, r.LoadAvgStart, r.LoadAvgEnd, r.MachineBusy, r.OthersBusy)
	if r.Serve != "" {
		fmt.Fprintf(w, "  serve flags    %s\n", r.Serve)
	}
	if r.NoService {
		fmt.Fprintf(w, "  published      %d frames, %d publish errors; simulator max publish lag %.2f s\n", r.FramesSent, r.PublishErrors, r.SimMaxLagS)
		fmt.Fprintf(w, "  simulator      CPU %.2f cores, RSS %.0f MiB; whole run %.1f us per frame, so %.2f cores for real time; night of %.0f s sent in %.0f s\n",
			r.SimCPU, mib(r.SimRSS), r.SimCPUPerFrameUS, r.SimCoresNeeded, r.NightS, r.SimElapsedS)
		fmt.Fprintf(w, "  mosquitto      CPU %.2f cores\n", r.BrokerCPU)
		return
	}
	fmt.Fprintf(w, "  frames/s       %.0f (emg %.0f, imu %.0f, status %.1f)\n", r.FramesPerS, r.FramesByS["emg"], r.FramesByS["imu"], r.FramesByS["status"])
	fmt.Fprintf(w, "  samples/s      %.0f EMG (all channels) + %.0f IMU (6-axis)\n", r.EMGSamplesPS, r.IMUSamplesPS)
	fmt.Fprintf(w, "  lag            p50 %.0f ms  p99 %.0f ms  max %.0f ms  (sample time -> detector output, %d points; %.0f ms simulator start-up removed)\n",
		r.LagP50S*1000, r.LagP99S*1000, r.LagMaxS*1000, r.LagPoints, r.LagOffsetS*1000)
	fmt.Fprintf(w, "  frames lost    %d (published %d, delivered %.0f; sequence gaps %.0f, queue drops %.0f, rejected %.0f; publish errors %d; simulator max publish lag %.2f s)\n",
		r.FramesLost, r.FramesSent, r.FramesIn, r.SeqGaps, r.QueueDropped, r.Rejected, r.PublishErrors, r.SimMaxLagS)
	fmt.Fprintf(w, "  events         %s\n", formatEvents(r.Events))
	fmt.Fprintf(w, "  service        CPU %.2f cores (%.1f us per frame), RSS %.0f MiB (peak %.0f MiB), Go heap in use %.0f MiB\n",
		r.ServiceCPU, r.ServiceCPUPerFrameUS, mib(r.ServiceRSS), mib(r.ServiceHWM), mib(int64(r.HeapInuse)))
	fmt.Fprintf(w, "  simulator      CPU %.2f cores, RSS %.0f MiB; whole run %.1f us per frame, so %.2f cores for real time; night of %.0f s sent in %.0f s\n",
		r.SimCPU, mib(r.SimRSS), r.SimCPUPerFrameUS, r.SimCoresNeeded, r.NightS, r.SimElapsedS)
	fmt.Fprintf(w, "  mosquitto      CPU %.2f cores\n", r.BrokerCPU)
	fmt.Fprintf(w, "  influxdb       CPU %.2f cores; %.0f points/s written, %.0f dropped, %.0f write errors\n", r.InfluxCPU, r.PointsPerS, r.PointsDrop, r.InfluxErrors)
}

func formatEvents(ev map[string]float64) string {
	if len(ev) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(ev))
	for k := range ev {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %.0f", k, ev[k])
	}
	return b.String()
}

// runBenchmark sets up the servers, the service and the simulator, measures
// and tears everything down. It returns the report even with an error when
// the measurement itself completed.
func runBenchmark(ctx context.Context, opt benchOptions, serveArgs []string, log *slog.Logger, stderr io.Writer) (*benchReport, error) {
	tmp, err := os.MkdirTemp("", "crampwatch-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)

	var brokerPID, influxPID int
	if opt.mqttURL == "" {
		s, err := localserver.StartMosquitto(localserver.MosquittoOptions{})
		if err != nil {
			return nil, fmt.Errorf("mosquitto: %w", err)
		}
		defer s.Stop()
		opt.mqttURL, brokerPID = s.URL, pidByArg(s.Dir)
		log.Info("bench: mosquitto started", "url", s.URL, "pid", brokerPID)
	}
	if !opt.noInflux && !opt.noService && opt.influxURL == "" {
		s, err := localserver.StartInfluxDB()
		if err != nil {
			return nil, fmt.Errorf("influxdb: %w", err)
		}
		defer s.Stop()
		if err := localserver.InfluxQL(ctx, s.URL, "", "CREATE DATABASE crampwatch_bench"); err != nil {
			return nil, err
		}
		opt.influxURL, opt.bucket, influxPID = s.URL, "crampwatch_bench/autogen", pidByArg(s.Dir)
		log.Info("bench: influxd started", "url", s.URL, "pid", influxPID)
	}

	run := fmt.Sprintf("%d-%d", os.Getpid(), time.Now().UnixNano()%1e9)
	rep := &benchReport{Devices: opt.devices, Encoding: opt.encoding, WindowS: opt.duration.Seconds(),
		WarmupS: opt.warmup.Seconds(), MachineCores: runtime.NumCPU(), Serve: strings.Join(serveArgs, " "), NoService: opt.noService}

	// The service, in this process, exactly as serve builds it. Bench
	// defaults come first so that serve flags after -- override them.
	var svc *service
	prefix := wire.DefaultPrefix // the service's --topic-prefix, which the simulator must use too
	reg := prometheus.NewRegistry()
	lag := newLagSink()
	if !opt.noService {
		args := []string{"--mqtt-url", opt.mqttURL, "--mqtt-client-id", "crampwatch-bench-" + run,
			"--http-addr", "127.0.0.1:0", "--log-level", "warn"}
		if opt.noInflux {
			args = append(args, "--influx-url", "", "--journal", filepath.Join(tmp, "journal.jsonl"))
		} else {
			args = append(args, "--influx-url", opt.influxURL, "--influx-bucket", opt.bucket)
		}
		cfg := defaultServeConfig()
		if _, _, err := parseServeFlags("bench", append(args, serveArgs...), &cfg, stderr, nil); err != nil {
			return nil, err
		}
		prefix = cfg.prefix
		// A benchmark must not leave a persistent session queueing frames
		// on a broker it was given.
		cfg.mqtt.CleanSession = true
		svcLog := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		reg = newRegistry()
		if svc, err = startService(ctx, cfg, svcLog, reg, lag); err != nil {
			return nil, err
		}
		defer func() {
			if svc != nil {
				stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				svc.stop(stopCtx, false)
			}
		}()
	}

	sim, err := startBenchSim(ctx, opt, prefix, tmp, run, log, stderr)
	if err != nil {
		return nil, err
	}
	defer sim.kill()

	// Warm-up, counted from the moment the simulator starts publishing.
	select {
	case <-sim.started:
	case err := <-sim.done:
		return nil, fmt.Errorf("simulator exited before it started publishing: %v", err)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	rep.LagOffsetS = sim.offset.Seconds()
	log.Info("bench: simulator publishing", "devices", opt.devices, "startup_offset", sim.offset)
	if err := sleepCtx(ctx, opt.warmup); err != nil {
		return nil, err
	}

	procs := benchProcs{self: !opt.noService, sim: sim.cmd.Process.Pid, broker: brokerPID, influx: influxPID}
	a := takeSnapshot(reg, procs)
	rep.LoadAvgStart = loadAvg()
	if opt.cpuProfile != "" {
		f, err := os.Create(opt.cpuProfile)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return nil, err
		}
	}
	lag.measure(true)
	windowEnd := time.Now().Add(opt.duration)
	for time.Now().Before(windowEnd) {
		if err := sleepCtx(ctx, min(10*time.Second, time.Until(windowEnd))); err != nil {
			pprof.StopCPUProfile()
			return nil, err
		}
		s := takeSnapshot(reg, procs)
		el := s.at.Sub(a.at).Seconds()
		p50, p99, _, _ := lag.quantiles(sim.offset)
		log.Info("bench: measuring", "elapsed_s", math.Round(el), "frames_per_s", math.Round((s.frames()-a.frames())/el),
			"lag_p50_s", p50, "lag_p99_s", p99, "service_cpu", round2((s.selfCPU-a.selfCPU).Seconds()/el))
	}
	lag.measure(false)
	b := takeSnapshot(reg, procs)
	if opt.cpuProfile != "" {
		pprof.StopCPUProfile()
	}
	rep.LoadAvgEnd = loadAvg()
	rep.fill(a, b, lag, sim.offset)

	// Let the simulator finish its night, then wait until every frame it
	// published has been delivered (or nothing moves any more).
	log.Info("bench: window done; waiting for the simulator to finish")
	var simErr error
	select {
	case simErr = <-sim.done:
	case <-ctx.Done():
		return rep, ctx.Err()
	}
	st, perr := sim.stats()
	if perr != nil {
		return rep, errors.Join(simErr, perr)
	}
	rep.FramesSent, rep.PublishErrors, rep.SimMaxLagS = st.frames, st.publishErrors, st.maxLag
	rep.SimCPU, rep.SimRSS = b.simCores(a), b.simRSS
	if ps := sim.cmd.ProcessState; ps != nil && st.frames > 0 {
		cpu := ps.UserTime() + ps.SystemTime()
		rep.SimCPUPerFrameUS = float64(cpu.Microseconds()) / float64(st.frames)
		rep.SimElapsedS = time.Since(sim.startedAt).Seconds()
		rep.NightS = sim.night.Seconds()
		rep.SimCoresNeeded = rep.SimCPUPerFrameUS / 1e6 * float64(st.frames) / rep.NightS
	}
	if !opt.noService {
		last, stable := -1.0, 0
		for stable < 20 {
			in := deliveredTotal(reg)
			if in >= float64(st.frames) {
				break
			}
			if in == last {
				stable++
			} else {
				stable = 0
			}
			last = in
			if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
				return rep, err
			}
		}
		rep.FramesIn = deliveredTotal(reg)
		rep.FramesLost = int64(st.frames) - int64(rep.FramesIn)
		rep.Events = eventsByKind(reg)
		stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err := svc.stop(stopCtx, false)
		svc = nil
		if err != nil {
			return rep, err
		}
	}
	if simErr != nil {
		return rep, fmt.Errorf("simulator: %w", simErr)
	}
	return rep, nil
}

func round2(v float64) float64 { return math.Round(v*100) / 100 }

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// fill computes the window's figures from two snapshots.
func (r *benchReport) fill(a, b snapshot, lag *lagSink, offset time.Duration) {
	el := b.at.Sub(a.at).Seconds()
	r.WindowS = el
	r.FramesByS = map[string]float64{}
	for _, s := range []string{"emg", "imu", "status"} {
		r.FramesByS[s] = (b.framesBy[s] - a.framesBy[s]) / el
	}
	r.FramesPerS = (b.frames() - a.frames()) / el
	sc := firmwaresim.DefaultScenario()
	emgPerFrame := sc.Rate * sc.FrameMS / 1000 * float64(len(sc.Channels))
	imuPerFrame := sc.IMURate * sc.IMUFrameMS / 1000
	r.EMGSamplesPS = r.FramesByS["emg"] * emgPerFrame
	r.IMUSamplesPS = r.FramesByS["imu"] * imuPerFrame
	r.LagP50S, r.LagP99S, r.LagMaxS, r.LagPoints = lag.quantiles(offset)
	r.SeqGaps = b.lost - a.lost
	r.QueueDropped = b.queueDropped - a.queueDropped
	r.Rejected = b.rejected - a.rejected
	r.ServiceCPU = (b.selfCPU - a.selfCPU).Seconds() / el
	if r.FramesPerS > 0 {
		r.ServiceCPUPerFrameUS = r.ServiceCPU / r.FramesPerS * 1e6
	}
	r.ServiceRSS, r.ServiceHWM = b.selfRSS, b.selfHWM
	r.HeapInuse = b.heapInuse
	r.BrokerCPU = (b.brokerCPU - a.brokerCPU).Seconds() / el
	r.InfluxCPU = (b.influxCPU - a.influxCPU).Seconds() / el
	r.PointsPerS = (b.pointsWritten - a.pointsWritten) / el
	r.PointsDrop = b.pointsDropped - a.pointsDropped
	r.InfluxErrors = b.sinkErrors - a.sinkErrors
	busy, total := b.machineBusy-a.machineBusy, b.machineTotal-a.machineTotal
	if total > 0 {
		r.MachineBusy = float64(busy) / float64(total) * float64(runtime.NumCPU())
	}
	r.OthersBusy = max(r.MachineBusy-r.ServiceCPU-b.simCores(a)-r.BrokerCPU-r.InfluxCPU, 0)
}

// lagSink is a pipeline sink that measures, for every envelope and motion
// point, the wall clock at the moment the detector emits it minus the
// point's sample time. A point's sample time is at or before the end of the
// frame that produced it, so this is the lag from the frame's last sample
// to the detector's output, plus up to one frame (100 ms) of framing: an
// upper bound. Lags go into 1 ms buckets up to a minute, so recording
// neither allocates nor locks.
type lagSink struct {
	on      atomic.Bool
	buckets [lagBuckets + 1]atomic.Uint64 // the last one counts overflows
	maxUS   atomic.Int64
}

const lagBuckets = 60_000 // 1 ms each

func newLagSink() *lagSink { return &lagSink{} }

func (l *lagSink) measure(on bool) { l.on.Store(on) }

func (l *lagSink) observe(t time.Time) {
	if !l.on.Load() {
		return
	}
	us := time.Since(t).Microseconds()
	i := min(max(us/1000, 0), lagBuckets)
	l.buckets[i].Add(1)
	for {
		m := l.maxUS.Load()
		if us <= m || l.maxUS.CompareAndSwap(m, us) {
			break
		}
	}
}

// quantiles returns the median, 99th percentile and maximum lag in seconds,
// each less offset (the simulator's start-up, by which all sample times are
// late), and the number of points.
func (l *lagSink) quantiles(offset time.Duration) (p50, p99, maxS float64, n uint64) {
	var counts [lagBuckets + 1]uint64
	for i := range counts {
		counts[i] = l.buckets[i].Load()
		n += counts[i]
	}
	if n == 0 {
		return 0, 0, 0, 0
	}
	at := func(q float64) float64 {
		rank := uint64(math.Ceil(q * float64(n)))
		var c uint64
		for i, k := range counts {
			c += k
			if c >= rank {
				// The bucket's upper edge: never flatter than the truth.
				return float64(i+1)/1000 - offset.Seconds()
			}
		}
		return math.Inf(1)
	}
	maxS = float64(l.maxUS.Load())/1e6 - offset.Seconds()
	return round3(at(0.5)), round3(at(0.99)), round3(maxS), n
}

func round3(v float64) float64 { return math.Round(v*1000) / 1000 }

func (l *lagSink) Event(detect.Event)         {}
func (l *lagSink) Envelope(e detect.Envelope) { l.observe(e.Time) }
func (l *lagSink) Motion(m detect.Motion)     { l.observe(m.Time) }
func (l *lagSink) Health(ingest.Health)       {}
func (l *lagSink) Close(context.Context) error {
	return nil
}

// benchSim is the simulator child process.
type benchSim struct {
	cmd     *exec.Cmd
	stdout  bytes.Buffer
	started chan struct{} // closed when the simulator starts publishing
	done    chan error
	offset  time.Duration // wall clock at its first publish slot minus its start sample time
	night   time.Duration // sample time the simulator publishes
	// startedAt is when it started publishing (set before started closes).
	startedAt time.Time
	once      sync.Once
}

// startBenchSim writes the benchmark scenario and starts "crampwatch sim".
func startBenchSim(ctx context.Context, opt benchOptions, prefix, dir, run string, log *slog.Logger, stderr io.Writer) (*benchSim, error) {
	// The typical night without simulated transport faults or sensor gaps:
	// any frame lost in the benchmark is lost by the system under test.
	scen := filepath.Join(dir, "bench-scenario.yaml")
	yaml := fmt.Sprintf("name: bench\ndescription: typical night without transport faults or sensor gaps\nencoding: %s\n"+
		"transport: {loss_prob: 0, dup_prob: 0}\nartifacts: {gaps_per_night: 0}\n", opt.encoding)
	if err := os.WriteFile(scen, []byte(yaml), 0o600); err != nil {
		return nil, err
	}
	// The night lasts the warm-up and the window plus a margin, so the
	// simulator is still publishing at full rate when the window closes.
	hours := (opt.warmup + opt.duration + 15*time.Second).Hours()
	args := []string{"sim", "--mqtt-url", opt.mqttURL, "--mqtt-client-id", "crampwatch-bench-sim-" + run, "--topic-prefix", prefix,
		"--devices", strconv.Itoa(opt.devices), "--hours", strconv.FormatFloat(hours, 'f', -1, 64),
		"--scenario", scen, "--truth", "", "--log-level", "info"}
	mk := opt.simCommand
	if mk == nil {
		exe, err := os.Executable()
		if err != nil {
			return nil, err
		}
		mk = func(ctx context.Context, args []string) *exec.Cmd { return exec.CommandContext(ctx, exe, args...) }
	}
	s := &benchSim{cmd: mk(ctx, args), started: make(chan struct{}), done: make(chan error, 1),
		night: time.Duration(hours * float64(time.Hour))}
	s.cmd.Stdout = &s.stdout
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	errPipe, err := s.cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("simulator: %w", err)
	}
	log.Info("bench: simulator started", "pid", s.cmd.Process.Pid, "args", strings.Join(args, " "))
	go func() {
		sc := bufio.NewScanner(errPipe)
		for sc.Scan() {
			line := sc.Text()
			if off, ok := parseSimStart(line); ok {
				s.offset, s.startedAt = off, time.Now()
				s.once.Do(func() { close(s.started) })
				continue
			}
			if !strings.Contains(line, "level=INFO") {
				fmt.Fprintln(stderr, "sim:", line)
			}
		}
		s.done <- s.cmd.Wait()
	}()
	return s, nil
}

func (s *benchSim) kill() {
	if s.cmd.ProcessState == nil && s.cmd.Process != nil {
		s.cmd.Process.Kill()
	}
}

var (
	simStartRe = regexp.MustCompile(`^time=(\S+) .*msg="simulation starting".* start=(\S+)`)
	simStatsRe = regexp.MustCompile(`frames (\d+) .*publish errors (\d+) .*max lag ([0-9.]+) s`)
)

// parseSimStart recognises the simulator's "simulation starting" log line,
// logged just before it starts pacing frames against the wall clock, and
// returns how late the wall clock is then behind the sample time of the
// start of the night (device set-up): every frame is published that much
// after its sample time, which is the simulator's doing, not the service's.
func parseSimStart(line string) (time.Duration, bool) {
	m := simStartRe.FindStringSubmatch(line)
	if m == nil {
		return 0, false
	}
	logged, err1 := time.Parse(time.RFC3339Nano, m[1])
	start, err2 := time.Parse(time.RFC3339Nano, m[2])
	if err1 != nil || err2 != nil {
		return 0, true
	}
	return max(logged.Sub(start), 0), true
}

type simStats struct {
	frames, publishErrors uint64
	maxLag                float64
}

// stats parses the simulator's summary line.
func (s *benchSim) stats() (simStats, error) {
	m := simStatsRe.FindStringSubmatch(s.stdout.String())
	if m == nil {
		return simStats{}, fmt.Errorf("simulator summary not understood: %q", s.stdout.String())
	}
	f, _ := strconv.ParseUint(m[1], 10, 64)
	e, _ := strconv.ParseUint(m[2], 10, 64)
	l, _ := strconv.ParseFloat(m[3], 64)
	return simStats{frames: f, publishErrors: e, maxLag: l}, nil
}

// benchProcs are the processes whose CPU is measured; 0 means not measured.
type benchProcs struct {
	self                bool
	sim, broker, influx int
}

// snapshot is the state of the counters at one moment.
type snapshot struct {
	at                           time.Time
	selfCPU                      time.Duration
	selfRSS, selfHWM             int64
	heapInuse                    uint64
	simCPU, brokerCPU, influxCPU time.Duration
	simRSS                       int64
	framesBy                     map[string]float64
	lost, queueDropped, rejected float64
	pointsWritten, pointsDropped float64
	sinkErrors                   float64
	machineBusy, machineTotal    uint64
}

func (s snapshot) frames() float64 {
	return s.framesBy["emg"] + s.framesBy["imu"] + s.framesBy["status"]
}

func (s snapshot) simCores(a snapshot) float64 {
	el := s.at.Sub(a.at).Seconds()
	if el <= 0 {
		return 0
	}
	return (s.simCPU - a.simCPU).Seconds() / el
}

func takeSnapshot(g prometheus.Gatherer, p benchProcs) snapshot {
	s := snapshot{at: time.Now(), framesBy: map[string]float64{}}
	if p.self {
		var ru syscall.Rusage
		if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
			s.selfCPU = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		}
		s.selfRSS, s.selfHWM = procStatusKB("self", "VmRSS")*1024, procStatusKB("self", "VmHWM")*1024
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		s.heapInuse = ms.HeapInuse
	}
	s.simCPU, s.brokerCPU, s.influxCPU = procCPU(p.sim), procCPU(p.broker), procCPU(p.influx)
	if p.sim > 0 {
		s.simRSS = procStatusKB(strconv.Itoa(p.sim), "VmRSS") * 1024
	}
	s.machineBusy, s.machineTotal = machineCPU()
	mfs, err := g.Gather()
	if err != nil {
		return s
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			v := m.GetCounter().GetValue()
			switch mf.GetName() {
			case "crampwatch_ingest_frames_total":
				s.framesBy[labelOf(m.GetLabel(), "stream")] += v
			case "crampwatch_ingest_lost_frames_total":
				s.lost += v
			case "crampwatch_ingest_queue_dropped_total":
				s.queueDropped += v
			case "crampwatch_ingest_rejected_total":
				s.rejected += v
			case "crampwatch_sink_points_written_total":
				if labelOf(m.GetLabel(), "sink") == "influxdb" {
					s.pointsWritten += v
				}
			case "crampwatch_sink_dropped_total":
				if labelOf(m.GetLabel(), "sink") == "influxdb" {
					s.pointsDropped += v
				}
			case "crampwatch_sink_errors_total":
				if labelOf(m.GetLabel(), "sink") == "influxdb" {
					s.sinkErrors += v
				}
			}
		}
	}
	return s
}

// deliveredTotal is the number of frames ingest delivered, all streams.
func deliveredTotal(g prometheus.Gatherer) float64 {
	s := takeSnapshot(g, benchProcs{})
	return s.frames()
}

// eventsByKind reads crampwatch_events_total as "kind/state" -> count.
func eventsByKind(g prometheus.Gatherer) map[string]float64 {
	out := map[string]float64{}
	mfs, err := g.Gather()
	if err != nil {
		return out
	}
	for _, mf := range mfs {
		if mf.GetName() != "crampwatch_events_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if v := m.GetCounter().GetValue(); v > 0 {
				out[labelOf(m.GetLabel(), "kind")+"/"+labelOf(m.GetLabel(), "state")] = v
			}
		}
	}
	return out
}

func labelOf(labels []*dto.LabelPair, name string) string {
	for _, l := range labels {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat times: 100 on every
// Linux architecture Go supports.
const clockTicks = 100

// procCPU returns a process's user+system CPU time from /proc; 0 if pid is
// 0 or the process is gone.
func procCPU(pid int) time.Duration {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name (field 2) may hold spaces; fields after it are
	// counted from its closing parenthesis.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64) // field 14, utime
	st, _ := strconv.ParseInt(f[12], 10, 64) // field 15, stime
	return time.Duration(ut+st) * time.Second / clockTicks
}

// procStatusKB reads a "kB" line such as VmRSS from /proc/<pid>/status.
func procStatusKB(pid, key string) int64 {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, key+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

// machineCPU returns the busy and total jiffies of all CPUs (/proc/stat);
// idle and iowait are not busy.
func machineCPU() (busy, total uint64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return 0, 0
	}
	for i, v := range f[1:] {
		n, _ := strconv.ParseUint(v, 10, 64)
		if i >= 8 { // guest time is already in user
			break
		}
		total += n
		if i != 3 && i != 4 { // idle, iowait
			busy += n
		}
	}
	return busy, total
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// pidByArg finds the process whose command line mentions arg (a server's
// private temporary directory), so its CPU can be read; 0 if none.
func pidByArg(arg string) int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && bytes.Contains(b, []byte(arg)) {
			return pid
		}
	}
	return 0
}

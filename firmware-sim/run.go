package firmwaresim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/crampwatch/crampwatch/wire"
)

// Publisher is what Run sends messages through; the service's MQTT client
// implements it. Publish may block (QoS 1 acknowledgement); it must return
// when ctx is done.
type Publisher interface {
	Publish(ctx context.Context, topic string, qos byte, retained bool, payload []byte) error
}

// AsyncPublisher is a Publisher that can also hand a message over without
// waiting for the broker's acknowledgement (mqttclient.Client is one). Run
// uses it when pub has it: each device then keeps up to maxInFlight
// messages in flight instead of parking its goroutine on every
// acknowledgement, which halves the wake-ups of a real-time run.
type AsyncPublisher interface {
	PublishAsync(topic string, qos byte, retained bool, payload []byte) Pending
}

// Pending is a message handed to an AsyncPublisher: Done is closed when the
// broker has it or sending failed, and Error says which. It is an alias of
// an unnamed interface, as mqttclient.Token is, so the two are the same
// type without either package importing the other.
type Pending = interface {
	Done() <-chan struct{}
	Error() error
}

// maxInFlight bounds the messages one device has handed to an
// AsyncPublisher and not yet seen acknowledged; at the bound the device
// waits for the oldest, so a stalled broker slows the simulator instead of
// filling its memory. It is kept below ingest's default reorder window (8
// frames per stream) on purpose: after a reconnection Paho resends the
// messages still unacknowledged in its store in map order, not in the
// order they were published, and the service puts back in order only what
// fits in its window. Small firmware MQTT clients keep a window of this
// size too.
const maxInFlight = 6

// RunConfig configures Run.
type RunConfig struct {
	Prefix       string // topic prefix; empty means wire.DefaultPrefix
	Devices      int    // number of virtual devices, at least 1
	DevicePrefix string // device ids are DevicePrefix plus a 4-digit index; empty means "sim-"
	Seed         int64  // with the scenario, determines every night (see DeviceSeed)
	// Speed paces publishing on sample time against the wall clock: 1 is
	// real time, 60 an hour per minute, 0 as fast as possible.
	Speed float64
	// Start is the sample time at which nights begin; zero means now. Each
	// device starts up to one frame later (see Device), so that devices do
	// not all publish in the same instant.
	Start    time.Time
	Scenario Scenario
	// TruthPath, if set, receives every device's truth as JSON Lines before
	// the first message is published.
	TruthPath string
	Logger    *slog.Logger // nil means no logging
}

// Stats sums what Run did.
type Stats struct {
	Devices       int
	Frames        uint64 // messages published successfully, duplicates included
	Bytes         uint64 // payload bytes published successfully
	PublishErrors uint64
	Lost          uint64 // frames dropped by simulated transport loss
	GapLost       uint64 // frames dropped inside simulated sensor gaps
	Duplicates    uint64 // frames sent twice on purpose
	Truth         int    // truth records of all devices
	Elapsed       time.Duration
	// MaxLagS is the worst delay of a publish behind its paced wall-clock
	// time, seconds; a load generator that cannot keep up shows it here.
	MaxLagS float64
}

// DeviceSeed derives device i's seed from a run seed (SplitMix64), so every
// device of a run is different yet reproducible on its own.
func DeviceSeed(seed int64, i int) int64 {
	z := uint64(seed) + uint64(i+1)*0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return int64(z ^ (z >> 31))
}

func (cfg *RunConfig) defaults() {
	if cfg.Prefix == "" {
		cfg.Prefix = wire.DefaultPrefix
	}
	if cfg.Start.IsZero() {
		cfg.Start = time.Now().UTC().Truncate(time.Millisecond)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
}

// DeviceID returns the id of device i.
func (cfg RunConfig) DeviceID(i int) string {
	p := cfg.DevicePrefix
	if p == "" {
		p = "sim-"
	}
	return fmt.Sprintf("%s%04d", p, i)
}

// Device creates device i of the run exactly as Run does: id DeviceID(i),
// seed DeviceSeed(Seed, i), and a start offset by up to one EMG frame
// derived from that seed. Start must be set.
func (cfg RunConfig) Device(i int) *Device {
	seed := DeviceSeed(cfg.Seed, i)
	frame := int64(cfg.Scenario.FrameMS * 1000)
	offset := time.Duration(0)
	if frame > 0 {
		offset = time.Duration(uint64(seed)%uint64(frame)) * time.Microsecond
	}
	return NewDevice(cfg.DeviceID(i), cfg.Scenario, seed, cfg.Start.Add(offset))
}

// Run simulates cfg.Devices devices, each in its own goroutine, and
// publishes their messages through pub: EMG and IMU with QoS 1, status with
// QoS 1 and retained. With Speed > 0 each message waits until its sample
// time (scaled by Speed) has come on the wall clock. Publish errors are
// counted and logged, not fatal. Run returns when every night has been sent
// or ctx is done (then with ctx's error and the stats so far).
func Run(ctx context.Context, cfg RunConfig, pub Publisher) (Stats, error) {
	cfg.defaults()
	switch {
	case cfg.Devices < 1:
		return Stats{}, fmt.Errorf("firmwaresim: devices %d: want at least 1", cfg.Devices)
	case !(cfg.Speed >= 0):
		return Stats{}, fmt.Errorf("firmwaresim: speed %v: want >= 0", cfg.Speed)
	case !wire.ValidDevice(cfg.DeviceID(cfg.Devices - 1)):
		return Stats{}, fmt.Errorf("firmwaresim: device id %q is not valid on the wire", cfg.DeviceID(cfg.Devices-1))
	}
	if err := cfg.Scenario.Validate(); err != nil {
		return Stats{}, fmt.Errorf("firmwaresim: %w", err)
	}
	devs := make([]*Device, cfg.Devices)
	stats := Stats{Devices: cfg.Devices}
	for i := range devs {
		devs[i] = cfg.Device(i)
		stats.Truth += len(devs[i].Truth())
	}
	if cfg.TruthPath != "" {
		if err := writeTruthFile(cfg.TruthPath, devs); err != nil {
			return stats, err
		}
	}
	cfg.Logger.Info("simulation starting", "devices", cfg.Devices, "scenario", cfg.Scenario.Name,
		"hours", cfg.Scenario.Hours, "speed", cfg.Speed, "start", cfg.Start, "truth", stats.Truth)

	r := &runner{cfg: cfg, pub: pub, wall: time.Now()}
	var wg sync.WaitGroup
	errs := make([]error, len(devs))
	for i, d := range devs {
		wg.Go(func() { errs[i] = r.device(ctx, d) })
	}
	wg.Wait()

	stats.Frames = r.frames.Load()
	stats.Bytes = r.bytes.Load()
	stats.PublishErrors = r.pubErrs.Load()
	stats.MaxLagS = float64(r.maxLag.Load()) / 1e6
	stats.Elapsed = time.Since(r.wall)
	for _, d := range devs {
		c := d.Counts()
		stats.Lost += c.Lost
		stats.GapLost += c.GapLost
		stats.Duplicates += c.Duplicates
	}
	if err := ctx.Err(); err != nil {
		return stats, err
	}
	return stats, errors.Join(errs...)
}

func writeTruthFile(path string, devs []*Device) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("firmwaresim: truth file: %w", err)
	}
	for _, d := range devs {
		if err := WriteTruth(f, d.Truth()); err != nil {
			_ = f.Close()
			return fmt.Errorf("firmwaresim: truth file %s: %w", path, err)
		}
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("firmwaresim: truth file: %w", err)
	}
	return nil
}

// runner is the shared state of one Run.
type runner struct {
	cfg     RunConfig
	pub     Publisher
	wall    time.Time // wall-clock time of the start of sample time
	frames  atomic.Uint64
	bytes   atomic.Uint64
	pubErrs atomic.Uint64
	maxLag  atomic.Int64 // microseconds
}

// device publishes one device's night.
//
// With Speed > 0 a device sleeps until its next message is due, but wakes
// on a grid of half a frame (50 ms of wall time at real time, less when
// faster), phased at its own first message: the EMG and IMU frames due
// within one step go out on one wake-up, and the devices' wake-ups stay
// spread over the step. A message goes out at most half a frame late.
func (r *runner) device(ctx context.Context, d *Device) error {
	topics := map[wire.Stream]string{}
	for _, s := range []wire.Stream{wire.StreamEMG, wire.StreamIMU, wire.StreamStatus} {
		topics[s] = wire.Topic(r.cfg.Prefix, d.ID(), s)
	}
	startUS := r.cfg.Start.UnixMicro()
	var step time.Duration
	if r.cfg.Speed > 0 {
		step = time.Duration(r.cfg.Scenario.FrameMS / 2 / r.cfg.Speed * float64(time.Millisecond))
	}
	async, _ := r.pub.(AsyncPublisher)
	type sent struct {
		p     Pending
		bytes int
	}
	var inFlight []sent
	var timer *time.Timer
	var phase time.Time // the wake-up grid's origin
	var buf []byte
	var frames, bytes uint64
	var maxLag int64
	defer func() {
		r.frames.Add(frames)
		r.bytes.Add(bytes)
		for {
			old := r.maxLag.Load()
			if maxLag <= old || r.maxLag.CompareAndSwap(old, maxLag) {
				break
			}
		}
	}()
	// settle waits for the oldest n in-flight messages and counts them.
	settle := func(n int) {
		for _, m := range inFlight[:n] {
			select {
			case <-m.p.Done():
			case <-ctx.Done():
				inFlight = inFlight[:0]
				return
			}
			if err := m.p.Error(); err != nil {
				r.publishFailed(d, err)
			} else {
				frames++
				bytes += uint64(m.bytes)
			}
		}
		inFlight = append(inFlight[:0], inFlight[n:]...)
	}
	// reap counts the messages acknowledged so far, oldest first.
	reap := func() {
		n := 0
		for n < len(inFlight) {
			select {
			case <-inFlight[n].p.Done():
				n++
				continue
			default:
			}
			break
		}
		settle(n)
	}
	defer func() {
		if ctx.Err() == nil {
			settle(len(inFlight))
		}
	}()
	for ctx.Err() == nil {
		m, ok := d.Next(buf)
		if !ok {
			return d.Err()
		}
		buf = m.Payload
		if r.cfg.Speed > 0 {
			due := r.wall.Add(time.Duration(float64(m.End-startUS) / r.cfg.Speed * 1e3))
			if phase.IsZero() {
				phase = due
			}
			if wait := time.Until(due); wait > 0 {
				reap()
				if k := due.Sub(phase) / step; phase.Add(k * step).Before(due) {
					due = phase.Add((k + 1) * step)
				}
				if timer == nil {
					timer = time.NewTimer(time.Until(due))
				} else {
					timer.Reset(time.Until(due))
				}
				select {
				case <-ctx.Done():
					timer.Stop()
					return nil
				case <-timer.C:
				}
			} else {
				maxLag = max(maxLag, -wait.Microseconds())
			}
		}
		retained := m.Stream == wire.StreamStatus
		if async != nil {
			inFlight = append(inFlight, sent{async.PublishAsync(topics[m.Stream], 1, retained, m.Payload), len(m.Payload)})
			if len(inFlight) >= maxInFlight {
				settle(1)
			}
			continue
		}
		if err := r.pub.Publish(ctx, topics[m.Stream], 1, retained, m.Payload); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			r.publishFailed(d, err)
			continue
		}
		frames++
		bytes += uint64(len(m.Payload))
	}
	return nil
}

// publishFailed counts a failed publish and logs the first and every
// thousandth of the run.
func (r *runner) publishFailed(d *Device, err error) {
	if n := r.pubErrs.Add(1); n == 1 || n%1000 == 0 {
		r.cfg.Logger.Warn("publish failed", "device", d.ID(), "errors", n, "err", err)
	}
}

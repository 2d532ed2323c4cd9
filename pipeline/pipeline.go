// Package pipeline joins the stages of the data path: it receives ordered
// per-device frames from ingest, runs one detector per device and fans the
// detector's output and device health out to the sinks.
package pipeline

import (
	"context"
	"errors"
	"log/slog"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crampwatch/crampwatch/detect"
	"github.com/crampwatch/crampwatch/ingest"
	"github.com/crampwatch/crampwatch/wire"
)

// Sink receives events, envelope and motion points and device health.
// Sinks must not block the pipeline: they queue, and drain in Close.
type Sink interface {
	detect.Output
	Health(ingest.Health)
	// Close flushes what is queued and releases the sink. It returns when
	// everything is written or ctx is done.
	Close(ctx context.Context) error
}

// Metrics counts what the pipeline produces.
type Metrics struct {
	events   *prometheus.CounterVec
	restored prometheus.Counter
	skipped  prometheus.Counter
	carried  *prometheus.CounterVec
}

// NewMetrics registers the pipeline's metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crampwatch_events_total",
			Help: "Detected events by kind and state (a cramp counts once ongoing and once ended).",
		}, []string{"kind", "state"}),
		restored: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "crampwatch_pipeline_states_restored_total",
			Help: "Devices whose detector baselines were restored from the state directory when their stream resumed.",
		}),
		skipped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "crampwatch_pipeline_resumed_frames_skipped_total",
			Help: "Frames skipped after a restart because the previous run had processed them (redelivered QoS 1 messages).",
		}),
		carried: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crampwatch_pipeline_carried_cramps_total",
			Help: "Cramps open at a restart, by outcome: continued (joined with the new detector's report) or ended.",
		}, []string{"outcome"}),
	}
	m.carried.WithLabelValues("continued")
	m.carried.WithLabelValues("ended")
	reg.MustRegister(m.events, m.restored, m.skipped, m.carried)
	return m
}

// Pipeline runs one detector per device and implements ingest.Handler.
type Pipeline struct {
	cfg     detect.Config
	out     fanout
	log     *slog.Logger
	mu      sync.Mutex
	devices map[string]*device
	saved   map[string]*deviceState // loaded by LoadState, not yet claimed by a device
	closed  bool
}

// device is one device's detector and what the pipeline tracks around it.
type device struct {
	det            *detect.Detector
	out            devOut
	last           int64        // newest sample time fed, Unix µs
	emgEnd, imuEnd int64        // ends of the last EMG and IMU frames fed, Unix µs
	pending        *deviceState // saved state waiting for the stream to resume
}

// New returns a pipeline that feeds every device's frames to its own detector
// configured with cfg and sends the results to sinks, in order.
func New(cfg detect.Config, m *Metrics, log *slog.Logger, sinks ...Sink) *Pipeline {
	return &Pipeline{
		cfg:     cfg,
		out:     fanout{sinks: sinks, m: m},
		log:     log,
		devices: make(map[string]*device),
		saved:   make(map[string]*deviceState),
	}
}

// lookup returns the device's state, creating its detector on first use.
// Calls for one device never overlap (ingest guarantees it), so only the map
// needs the lock.
func (p *Pipeline) lookup(id string) *device {
	p.mu.Lock()
	defer p.mu.Unlock()
	d, ok := p.devices[id]
	if !ok {
		d = &device{out: devOut{f: &p.out, cfg: &p.cfg}}
		d.det = detect.New(id, p.cfg, &d.out)
		if st, ok := p.saved[id]; ok {
			delete(p.saved, id)
			d.pending = st
			d.emgEnd, d.imuEnd = st.EMGEnd, st.IMUEnd
		}
		p.devices[id] = d
	}
	return d
}

// EMG feeds an EMG frame to the device's detector.
func (p *Pipeline) EMG(id string, f *wire.EMGFrame) {
	d := p.lookup(id)
	if d.pending != nil {
		if processed(f.T0, f.End(), d.pending.EMGEnd) {
			p.skip()
			return
		}
		p.resume(id, d, f.T0)
	}
	d.det.EMG(f)
	d.emgEnd = f.End()
	d.last = max(d.last, d.emgEnd)
}

// IMU feeds an IMU frame to the device's detector.
func (p *Pipeline) IMU(id string, f *wire.IMUFrame) {
	d := p.lookup(id)
	if d.pending != nil && processed(f.T0, f.End(), d.pending.IMUEnd) {
		p.skip()
		return
	}
	d.det.IMU(f)
	d.imuEnd = f.End()
	d.last = max(d.last, d.imuEnd)
}

// processed reports whether a frame [t0, end) was processed by the run that
// saved its stream's end: its middle lies before that end. Judging by the
// middle rather than t0 tolerates device clock jitter, which lets a new
// frame start a little before its predecessor's nominal end.
func processed(t0, end, savedEnd int64) bool { return t0+(end-t0)/2 < savedEnd }

func (p *Pipeline) skip() {
	if p.out.m != nil {
		p.out.m.skipped.Inc()
	}
}

// Status passes the device's lead-off report to its detector.
func (p *Pipeline) Status(id string, s *wire.StatusFrame) {
	p.lookup(id).det.LeadOff(s.T, s.LeadOff)
}

// Gap tells the device's detector that frames were lost.
func (p *Pipeline) Gap(id string, s wire.Stream, lost int, from, to int64) {
	p.lookup(id).det.Gap(s, from, to)
}

// Health forwards a device health report to the sinks.
func (p *Pipeline) Health(h ingest.Health) {
	for _, s := range p.out.sinks {
		s.Health(h)
	}
}

// EndStreams ends every device's open events at its newest sample time, as
// at the end of a recording. A service that is only restarting must not call
// it: the wearer's cramp has not ended because the service stopped.
func (p *Pipeline) EndStreams() {
	p.mu.Lock()
	devs := make([]*device, 0, len(p.devices))
	for _, d := range p.devices {
		devs = append(devs, d)
	}
	p.mu.Unlock()
	for _, d := range devs {
		d.det.Close(d.last)
		d.out.endCarried()
	}
}

// Close flushes and closes the sinks. Call it after ingest has drained.
func (p *Pipeline) Close(ctx context.Context) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.mu.Unlock()
	var errs []error
	for _, s := range p.out.sinks {
		if err := s.Close(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// fanout is the detectors' Output: it hands everything to every sink.
type fanout struct {
	sinks []Sink
	m     *Metrics
}

func (f *fanout) Event(e detect.Event) {
	if f.m != nil {
		f.m.events.WithLabelValues(string(e.Kind), string(e.State)).Inc()
	}
	for _, s := range f.sinks {
		s.Event(e)
	}
}

func (f *fanout) Envelope(e detect.Envelope) {
	for _, s := range f.sinks {
		s.Envelope(e)
	}
}

func (f *fanout) Motion(m detect.Motion) {
	for _, s := range f.sinks {
		s.Motion(m)
	}
}

// Compile-time check that the pipeline is what ingest feeds.
var _ ingest.Handler = (*Pipeline)(nil)

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
	events *prometheus.CounterVec
}

// NewMetrics registers the pipeline's metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crampwatch_events_total",
			Help: "Detected events by kind and state (a cramp counts once ongoing and once ended).",
		}, []string{"kind", "state"}),
	}
	reg.MustRegister(m.events)
	return m
}

// Pipeline runs one detector per device and implements ingest.Handler.
type Pipeline struct {
	cfg     detect.Config
	out     fanout
	log     *slog.Logger
	mu      sync.Mutex
	devices map[string]*device
	closed  bool
}

// device is one device's detector and the newest sample time it was fed.
type device struct {
	det  *detect.Detector
	last int64 // Unix µs
}

// New returns a pipeline that feeds every device's frames to its own detector
// configured with cfg and sends the results to sinks, in order.
func New(cfg detect.Config, m *Metrics, log *slog.Logger, sinks ...Sink) *Pipeline {
	return &Pipeline{
		cfg:     cfg,
		out:     fanout{sinks: sinks, m: m},
		log:     log,
		devices: make(map[string]*device),
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
		d = &device{det: detect.New(id, p.cfg, &p.out)}
		p.devices[id] = d
	}
	return d
}

// EMG feeds an EMG frame to the device's detector.
func (p *Pipeline) EMG(id string, f *wire.EMGFrame) {
	d := p.lookup(id)
	d.det.EMG(f)
	d.last = max(d.last, f.End())
}

// IMU feeds an IMU frame to the device's detector.
func (p *Pipeline) IMU(id string, f *wire.IMUFrame) {
	d := p.lookup(id)
	d.det.IMU(f)
	d.last = max(d.last, f.End())
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

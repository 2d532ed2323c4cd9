// Package eventpub publishes detected events as JSON on the MQTT topic
// {prefix}/{device}/events (QoS 1, not retained), so apps can show a cramp as
// it happens. It also defines Event, the one JSON form of an event, which the
// local journal reuses: an event looks the same on disk and on the wire.
//
// Sink implements pipeline.Sink: events are queued without blocking the
// pipeline and published in order by one background goroutine; envelope,
// motion and health are not published here and are ignored.
package eventpub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crampwatch/crampwatch/detect"
	"github.com/crampwatch/crampwatch/ingest"
	"github.com/crampwatch/crampwatch/store/sinkmetrics"
	"github.com/crampwatch/crampwatch/store/sinkqueue"
	"github.com/crampwatch/crampwatch/wire"
)

// Publisher sends one MQTT message. The MQTT client in mqttclient implements
// it; it must honour ctx.
type Publisher interface {
	Publish(ctx context.Context, topic string, qos byte, retained bool, payload []byte) error
}

// Config configures a Sink. Zero values take the documented defaults.
type Config struct {
	// Prefix is the topic prefix; default wire.DefaultPrefix.
	Prefix string
	// QueueSize bounds the events waiting to be published; default 1024.
	// Events are few (a handful per device and night), so a full queue means
	// the broker has been unreachable for long; further events are counted as
	// dropped.
	QueueSize int
	// PublishTimeout bounds one publish attempt; default 10 s.
	PublishTimeout time.Duration
	// RetryFor is how long one event is retried before it is counted as
	// dropped; default 1 min. Later events wait meanwhile, so that an app
	// never sees a cramp's "ended" before its "ongoing".
	RetryFor time.Duration
	// Logger receives publish failures; default slog.Default().
	Logger *slog.Logger
}

const (
	sinkName    = "eventpub"
	measurement = "events"
	qos         = 1
)

// Sink publishes events. Create it with New; it is safe for concurrent use.
type Sink struct {
	pub     Publisher
	cfg     Config
	log     *slog.Logger
	metrics *sinkmetrics.Sink

	written, errs, dropped prometheus.Counter

	q *sinkqueue.Queue

	ctx    context.Context // cancelled when Close gives up
	cancel context.CancelFunc
}

// New starts a Sink that publishes through pub. Metrics are registered with
// reg (nil: not registered).
func New(pub Publisher, cfg Config, reg prometheus.Registerer) (*Sink, error) {
	if pub == nil {
		return nil, errors.New("eventpub: nil Publisher")
	}
	cfg.Prefix = strings.TrimSuffix(cfg.Prefix, "/")
	if cfg.Prefix == "" {
		cfg.Prefix = wire.DefaultPrefix
	}
	if strings.ContainsAny(cfg.Prefix, "+#") {
		return nil, fmt.Errorf("eventpub: prefix %q contains an MQTT wildcard", cfg.Prefix)
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = 1024
	}
	if cfg.PublishTimeout <= 0 {
		cfg.PublishTimeout = 10 * time.Second
	}
	if cfg.RetryFor <= 0 {
		cfg.RetryFor = time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	m, err := sinkmetrics.New(reg)
	if err != nil {
		return nil, fmt.Errorf("eventpub: %w", err)
	}
	s := &Sink{
		pub:     pub,
		cfg:     cfg,
		log:     cfg.Logger.With("sink", sinkName),
		metrics: m.Sink(sinkName),
	}
	s.q = sinkqueue.New(cfg.QueueSize, s.metrics.SetDepth)
	s.written, s.errs, s.dropped = s.metrics.Counters(measurement)
	s.ctx, s.cancel = context.WithCancel(context.Background())
	go s.run()
	return s, nil
}

// Topic returns the topic events of device are published on.
func (s *Sink) Topic(device string) string {
	return wire.Topic(s.cfg.Prefix, device, wire.StreamEvents)
}

// Event queues e for publishing. It never blocks: if the queue is full or
// the sink is closed, the event is counted as dropped and logged.
func (s *Sink) Event(e detect.Event) {
	if err := s.q.Offer(e); err != nil {
		s.drop(&e, err.Error())
	}
}

// Envelope is ignored: envelope points are not published on MQTT.
func (s *Sink) Envelope(detect.Envelope) {}

// Motion is ignored: motion points are not published on MQTT.
func (s *Sink) Motion(detect.Motion) {}

// Health is ignored: device health is not published on MQTT.
func (s *Sink) Health(ingest.Health) {}

// Close publishes the queued events and stops the sink. If ctx ends first,
// it stops retrying, counts the unpublished events as dropped and returns
// without waiting for a publish attempt that ignores its context.
func (s *Sink) Close(ctx context.Context) error {
	if _, err := s.q.Close(ctx); err != nil {
		s.cancel()
		return fmt.Errorf("eventpub: close: %w", err)
	}
	return nil
}

func (s *Sink) drop(e *detect.Event, why string) {
	s.dropped.Inc()
	s.log.Error("event not published", "reason", why, "device", e.Device, "kind", e.Kind, "state", e.State, "onset", e.Onset)
}

func (s *Sink) run() {
	defer s.q.Finished()
	defer s.cancel()
	for {
		select {
		case e := <-s.q.Events():
			s.q.Received()
			s.publish(&e)
		case <-s.q.Closing():
			for _, e := range s.q.Take(nil) {
				s.publish(&e)
			}
			return
		}
	}
}

// publish sends one event, retrying with exponential backoff for RetryFor.
func (s *Sink) publish(e *detect.Event) {
	if s.ctx.Err() != nil {
		s.drop(e, "sink stopped")
		return
	}
	if !wire.ValidDevice(e.Device) {
		// Such a device id could not form a valid topic (or would address
		// another device's topic); the pipeline never produces one.
		s.errs.Inc()
		s.drop(e, "invalid device id")
		return
	}
	payload, err := json.Marshal(FromDetect(e))
	if err != nil {
		s.errs.Inc()
		s.drop(e, "encode: "+err.Error())
		return
	}
	topic := s.Topic(e.Device)
	deadline := time.Now().Add(s.cfg.RetryFor)
	backoff := 100 * time.Millisecond
	for {
		ctx, cancel := context.WithTimeout(s.ctx, s.cfg.PublishTimeout)
		err := s.pub.Publish(ctx, topic, qos, false, payload)
		cancel()
		if err == nil {
			s.written.Inc()
			return
		}
		s.errs.Inc()
		if s.ctx.Err() != nil || time.Now().Add(backoff).After(deadline) {
			s.drop(e, "publish: "+err.Error())
			return
		}
		s.log.Warn("publish failed, retrying", "topic", topic, "err", err, "retry_in", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-s.ctx.Done():
			t.Stop()
			s.drop(e, "sink stopped")
			return
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// Package store writes what the pipeline produces to InfluxDB (events,
// signal envelope, motion, device health, and the alert records that other
// packages hand to WritePoint) and reads events back for tests, export and
// summaries. It speaks only the InfluxDB v2 HTTP API, so it works with
// InfluxDB 2.x and with 1.8 when Flux is enabled (bucket "db/rp", token
// "user:password" or empty). docs/schema.md documents the schema.
//
// Influx implements pipeline.Sink. It does its own batching on top of the
// client's blocking write API instead of using the client's non-blocking
// WriteAPI: the pipeline must never wait, the queue must be bounded, and
// under backpressure envelope and motion points must go before events.
// The client's WriteAPI has one unprioritised buffer and retries internally
// where we cannot see or order it; our own queue (see queue.go) keeps events
// in a class of their own, retries a failed batch before anything newer, and
// is the natural place for a later durable on-disk spool.
package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync"
	"time"

	influxdb2 "github.com/influxdata/influxdb-client-go/v2"
	"github.com/influxdata/influxdb-client-go/v2/api"
	influxhttp "github.com/influxdata/influxdb-client-go/v2/api/http"
	"github.com/influxdata/influxdb-client-go/v2/api/write"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/crampwatch/crampwatch/detect"
	"github.com/crampwatch/crampwatch/ingest"
	"github.com/crampwatch/crampwatch/store/sinkmetrics"
)

// Config configures the InfluxDB sink. Start from DefaultConfig; zero
// numeric values take the defaults.
type Config struct {
	// URL of the server, e.g. http://localhost:8086.
	URL string
	// Token authenticates; on InfluxDB 1.8 "user:password", or empty
	// without authentication. It is a secret and never logged.
	Token string
	// Org is the organisation (ignored by InfluxDB 1.8).
	Org string
	// Bucket to write to; on InfluxDB 1.8 "database/retention-policy".
	Bucket string
	// BatchSize is the most lines sent in one write request; default 5000.
	BatchSize int
	// FlushInterval is how often queued points are sent even if a batch is
	// not full; default 1 s. It bounds how late an event shows in Grafana.
	FlushInterval time.Duration
	// Envelope enables writing envelope points (measurement "envelope").
	// DefaultConfig turns it on; a zero Config leaves it off.
	Envelope bool
	// Motion enables writing IMU motion points (measurement "motion").
	// DefaultConfig turns it on; a zero Config leaves it off.
	Motion bool
	// WriteTimeout bounds one write request; default 10 s.
	WriteTimeout time.Duration
	// QueueSize bounds queued envelope, motion and health points; default
	// 200000 (about 5 minutes of 64 devices with 4 channels and 2 IMUs at
	// 10 Hz). When it is full such points are dropped and counted.
	QueueSize int
	// EventQueueSize bounds queued events and WritePoint points; default
	// 100000. Events are never dropped to make room for anything; only if
	// this bound is reached (InfluxDB down for a very long time) are new
	// events dropped, counted and logged.
	EventQueueSize int
	// MaxRetryInterval caps the backoff between retries of a failed batch;
	// default 30 s.
	MaxRetryInterval time.Duration
	// Logger receives write failures; default slog.Default().
	Logger *slog.Logger
}

// DefaultConfig returns the documented defaults: envelope and motion on,
// batches of 5000, flushed every second.
func DefaultConfig() Config {
	return Config{
		BatchSize:        5000,
		FlushInterval:    time.Second,
		Envelope:         true,
		Motion:           true,
		WriteTimeout:     10 * time.Second,
		QueueSize:        200_000,
		EventQueueSize:   100_000,
		MaxRetryInterval: 30 * time.Second,
	}
}

// LogValue logs the configuration with the token redacted.
func (c Config) LogValue() slog.Value {
	token := ""
	if c.Token != "" {
		token = "[redacted]"
	}
	return slog.GroupValue(
		slog.String("url", c.URL), slog.String("token", token), slog.String("org", c.Org),
		slog.String("bucket", c.Bucket), slog.Int("batch_size", c.BatchSize),
		slog.Duration("flush_interval", c.FlushInterval), slog.Bool("envelope", c.Envelope),
		slog.Bool("motion", c.Motion), slog.Duration("write_timeout", c.WriteTimeout))
}

func (c *Config) setDefaults() {
	d := DefaultConfig()
	if c.BatchSize <= 0 {
		c.BatchSize = d.BatchSize
	}
	if c.FlushInterval <= 0 {
		c.FlushInterval = d.FlushInterval
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = d.WriteTimeout
	}
	if c.QueueSize <= 0 {
		c.QueueSize = d.QueueSize
	}
	if c.EventQueueSize <= 0 {
		c.EventQueueSize = d.EventQueueSize
	}
	if c.MaxRetryInterval <= 0 {
		c.MaxRetryInterval = d.MaxRetryInterval
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

const sinkName = "influxdb"

// counters are the per-measurement metrics of the fixed measurements,
// resolved once so the enqueue path does no label lookups.
type counters struct{ written, errs, dropped prometheus.Counter }

// Influx is the InfluxDB sink. Create it with New; it is safe for
// concurrent use.
type Influx struct {
	cfg     Config
	log     *slog.Logger
	client  influxdb2.Client
	writer  api.WriteAPIBlocking
	metrics *sinkmetrics.Sink
	byMeas  map[string]counters

	mu       sync.Mutex // guards q, closed and dropping
	q        *queue
	closed   bool
	dropping bool // logging state: a run of dropped bulk points is logged once

	kick    chan struct{} // a chunk became full
	closing chan struct{}
	done    chan struct{}
	ctx     context.Context // cancelled when Close gives up
	cancel  context.CancelFunc
}

// New creates the sink and starts its writer. It does not contact the
// server: the service must start (and queue) while InfluxDB is still down.
// Metrics are registered with reg (nil: not registered).
func New(cfg Config, reg prometheus.Registerer) (*Influx, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("store: url: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("store: url %q: want http(s)://host:port", cfg.URL)
	}
	if cfg.Bucket == "" {
		return nil, errors.New("store: no bucket")
	}
	cfg.setDefaults()
	m, err := sinkmetrics.New(reg)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	opts := influxdb2.DefaultOptions().
		SetPrecision(time.Microsecond).
		// Our contexts bound every call; the client's own timeout only
		// catches a caller that passed none.
		SetHTTPRequestTimeout(uint(max(20*time.Second, 2*cfg.WriteTimeout) / time.Second))
	client := influxdb2.NewClientWithOptions(cfg.URL, cfg.Token, opts)
	s := &Influx{
		cfg:     cfg,
		log:     cfg.Logger.With("sink", sinkName),
		client:  client,
		writer:  client.WriteAPIBlocking(cfg.Org, cfg.Bucket),
		metrics: m.Sink(sinkName),
		byMeas:  map[string]counters{},
		q:       newQueue(cfg.BatchSize, cfg.EventQueueSize, cfg.QueueSize),
		kick:    make(chan struct{}, 1),
		closing: make(chan struct{}),
		done:    make(chan struct{}),
	}
	for _, meas := range []string{MeasurementEvents, MeasurementEnvelope, MeasurementMotion, MeasurementHealth} {
		var c counters
		c.written, c.errs, c.dropped = s.metrics.Counters(meas)
		s.byMeas[meas] = c
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	go s.run()
	return s, nil
}

// Event queues an event (high priority).
func (s *Influx) Event(e detect.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := s.openLocked(&s.q.high, MeasurementEvents)
	if ch == nil {
		s.log.Error("event not written to InfluxDB: queue full or sink closed",
			"device", e.Device, "kind", e.Kind, "state", e.State, "onset", e.Onset)
		return
	}
	n := len(ch.buf)
	var err error
	if ch.buf, err = appendEvent(ch.buf, &e); err != nil {
		ch.buf = ch.buf[:n]
		s.byMeas[MeasurementEvents].errs.Inc()
		s.byMeas[MeasurementEvents].dropped.Inc()
		s.log.Error("event not written to InfluxDB", "err", err, "device", e.Device, "kind", e.Kind)
		return
	}
	s.commitLocked(&s.q.high, ch, MeasurementEvents)
}

// Envelope queues an envelope point (bulk priority), unless Config.Envelope
// is off.
func (s *Influx) Envelope(e detect.Envelope) {
	if !s.cfg.Envelope {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := s.openLocked(&s.q.bulk, MeasurementEnvelope)
	if ch == nil {
		return
	}
	n := len(ch.buf)
	var err error
	if ch.buf, err = appendEnvelope(ch.buf, &e); err != nil {
		ch.buf = ch.buf[:n]
		s.byMeas[MeasurementEnvelope].errs.Inc()
		s.byMeas[MeasurementEnvelope].dropped.Inc()
		return
	}
	s.commitLocked(&s.q.bulk, ch, MeasurementEnvelope)
}

// Motion queues a motion point (bulk priority), unless Config.Motion is off.
func (s *Influx) Motion(m detect.Motion) {
	if !s.cfg.Motion {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := s.openLocked(&s.q.bulk, MeasurementMotion)
	if ch == nil {
		return
	}
	n := len(ch.buf)
	var err error
	if ch.buf, err = appendMotion(ch.buf, &m); err != nil {
		ch.buf = ch.buf[:n]
		s.byMeas[MeasurementMotion].errs.Inc()
		s.byMeas[MeasurementMotion].dropped.Inc()
		return
	}
	s.commitLocked(&s.q.bulk, ch, MeasurementMotion)
}

// Health queues a device health point (bulk priority).
func (s *Influx) Health(h ingest.Health) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := s.openLocked(&s.q.bulk, MeasurementHealth)
	if ch == nil {
		return
	}
	n := len(ch.buf)
	var err error
	if ch.buf, err = appendHealth(ch.buf, &h); err != nil {
		ch.buf = ch.buf[:n]
		s.byMeas[MeasurementHealth].errs.Inc()
		s.byMeas[MeasurementHealth].dropped.Inc()
		s.log.Warn("health point not written", "err", err, "device", h.Device)
		return
	}
	s.commitLocked(&s.q.bulk, ch, MeasurementHealth)
}

// WritePoint queues a point of another measurement (alerts, acks, diary)
// with the priority of events: it is never dropped to make room for
// envelope data. A point without a time is stamped with the current time.
// An invalid point (no fields, a field of an unsupported type, an empty tag
// value) is counted as an error and logged.
func (s *Influx) WritePoint(p *write.Point) {
	name := "unknown"
	if p != nil && p.Name() != "" {
		name = p.Name()
	}
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := s.openLocked(&s.q.high, name)
	if ch == nil {
		s.log.Error("point not written to InfluxDB: queue full or sink closed", "measurement", name)
		return
	}
	n := len(ch.buf)
	var err error
	if ch.buf, err = appendPoint(ch.buf, p, now); err != nil {
		ch.buf = ch.buf[:n]
		s.metrics.Error(name)
		s.metrics.Dropped(name, 1)
		s.log.Error("point not written to InfluxDB", "err", err)
		return
	}
	s.commitLocked(&s.q.high, ch, name)
}

// openLocked returns the chunk to append to, or nil (counting the drop) if
// the class is full or the sink is closed.
func (s *Influx) openLocked(c *class, measurement string) *chunk {
	var ch *chunk
	if !s.closed {
		ch = s.q.open(c)
	}
	if ch == nil {
		if cs, ok := s.byMeas[measurement]; ok {
			cs.dropped.Inc()
		} else {
			s.metrics.Dropped(measurement, 1)
		}
		if !s.dropping && c == &s.q.bulk {
			s.dropping = true
			s.log.Warn("InfluxDB queue full: dropping envelope, motion and health points", "queued", s.q.depth())
		}
		return nil
	}
	return ch
}

func (s *Influx) commitLocked(c *class, ch *chunk, measurement string) {
	if s.q.commit(c, ch, measurement) {
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
	if c == &s.q.bulk {
		s.dropping = false
	}
	s.metrics.SetDepth(s.q.depth())
}

// Ready reports whether the server answers its ping; for /readyz.
func (s *Influx) Ready(ctx context.Context) error {
	if _, err := s.client.Ping(ctx); err != nil {
		return fmt.Errorf("store: influxdb ping: %w", err)
	}
	return nil
}

// Close writes everything queued and stops the sink. If ctx ends first, it
// abandons the write in progress, counts the unwritten points as dropped
// and returns an error that wraps ctx's.
func (s *Influx) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	close(s.closing)
	var err error
	select {
	case <-s.done:
	case <-ctx.Done():
		s.cancel()
		<-s.done // the writer's request is bound to s.ctx: it returns at once
		err = fmt.Errorf("store: close: unwritten points dropped: %w", ctx.Err())
	}
	s.cancel()
	s.client.Close()
	return err
}

// run is the writer goroutine: it sends full chunks when kicked, all
// chunks every FlushInterval and on Close, and retries a failed chunk with
// exponential backoff until it succeeds or Close gives up.
func (s *Influx) run() {
	defer close(s.done)
	tick := time.NewTicker(s.cfg.FlushInterval)
	defer tick.Stop()
	retry := time.NewTimer(0)
	<-retry.C
	var (
		waiting bool // a failed chunk waits for the retry timer
		backoff time.Duration
		closing = s.closing
	)
	for {
		flush := false
		select {
		case <-s.kick:
		case <-tick.C:
			flush = true
		case <-retry.C:
			waiting = false
		case <-closing:
			closing = nil // closed: stop selecting it, but keep the state
			flush = true
		case <-s.ctx.Done():
			s.dropQueued()
			return
		}
		if flush || closing == nil {
			s.mu.Lock()
			s.q.sealAll()
			s.mu.Unlock()
		}
		if waiting {
			continue
		}
		for {
			s.mu.Lock()
			ch, c := s.q.head()
			s.mu.Unlock()
			if ch == nil {
				break
			}
			err := s.write(ch)
			if err != nil && retryable(err) {
				if s.ctx.Err() != nil {
					s.dropQueued()
					return
				}
				backoff = nextBackoff(backoff, s.cfg.MaxRetryInterval)
				s.log.Warn("InfluxDB write failed, will retry", "err", err, "lines", ch.lines, "retry_in", backoff)
				retry.Reset(backoff)
				waiting = true
				break
			}
			backoff = 0
			s.mu.Lock()
			s.q.pop(c, ch)
			s.metrics.SetDepth(s.q.depth())
			s.mu.Unlock()
		}
		if closing == nil && !waiting {
			s.mu.Lock()
			empty := s.q.depth() == 0
			s.mu.Unlock()
			if empty {
				return
			}
		}
	}
}

// write sends one chunk and accounts for it: written on success, dropped
// on a permanent failure, an error per attempt on any failure.
func (s *Influx) write(ch *chunk) error {
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.WriteTimeout)
	defer cancel()
	err := s.writer.WriteRecord(ctx, string(ch.buf))
	if err == nil {
		for m, n := range ch.counts {
			s.metrics.Written(m, n)
		}
		return nil
	}
	for m := range ch.counts {
		s.metrics.Error(m)
	}
	if !retryable(err) {
		for m, n := range ch.counts {
			s.metrics.Dropped(m, n)
		}
		s.log.Error("InfluxDB rejected a batch; its points are dropped", "err", err, "lines", ch.lines)
	}
	return err
}

// retryable tells a transient failure (network, server overloaded or
// down, authentication or bucket not set up yet) from a batch the server
// will never accept (malformed or conflicting data, too large).
func retryable(err error) bool {
	var he *influxhttp.Error
	if errors.As(err, &he) {
		switch he.StatusCode {
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity:
			return false
		}
	}
	return true
}

// nextBackoff doubles the wait from 100 ms up to limit, with ±20 % jitter
// so that many instances do not hammer a recovering server in step.
func nextBackoff(prev, limit time.Duration) time.Duration {
	d := min(max(2*prev, 100*time.Millisecond), limit)
	jitter := time.Duration(rand.Int64N(int64(d)/5 + 1))
	if rand.IntN(2) == 0 {
		return d - jitter
	}
	return min(d+jitter, limit)
}

// dropQueued counts everything still queued as dropped.
func (s *Influx) dropQueued() {
	s.mu.Lock()
	lost := s.q.removeAll()
	s.metrics.SetDepth(0)
	s.mu.Unlock()
	total := 0
	for m, n := range lost {
		s.metrics.Dropped(m, n)
		total += n
	}
	if total > 0 {
		s.log.Error("InfluxDB sink stopped with unwritten points", "points", total)
	}
}

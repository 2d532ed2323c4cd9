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
// hands batches the server did not take to a durable on-disk spool
// (Config.SpoolDir, spool.go) that is replayed in order when the server is
// back, also after a restart.
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
	// SpoolDir is the directory of the durable spool: batches InfluxDB did
	// not take (server down, unreachable, overloaded) are written there,
	// fsynced, and replayed in order when it is back, also by the next run
	// of the service. It is created with mode 0700 (it holds health data).
	// Empty: no spool, failed batches wait in memory within QueueSize and
	// EventQueueSize, and are lost if the service stops.
	SpoolDir string
	// SpoolMaxBytes bounds the spool's size on disk; default 1 GiB, about
	// 8 million envelope or motion points of some 130 bytes: 37 hours of
	// one device with 4 EMG channels and 2 IMUs at 10 Hz, or 35 minutes of
	// 64 of them. An event takes about 300 bytes. When the spool is full,
	// new envelope, motion and health batches are dropped, and an event
	// batch that does not fit evicts the oldest spooled ones; only when
	// none are left do events and alert records wait in memory (up to
	// EventQueueSize, then they are dropped).
	SpoolMaxBytes int64
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
		SpoolMaxBytes:    1 << 30,
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
		slog.Bool("motion", c.Motion), slog.Duration("write_timeout", c.WriteTimeout),
		slog.String("spool_dir", c.SpoolDir), slog.Int64("spool_max_bytes", c.SpoolMaxBytes))
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
	if c.SpoolMaxBytes <= 0 {
		c.SpoolMaxBytes = d.SpoolMaxBytes
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

	// Owned by the writer goroutine once it runs.
	spool    *spool // nil without Config.SpoolDir
	replay   chunk  // a spooled record being written
	spooling spoolEpisode
	lost     int // points dropped when the writer stopped; read by Close after done

	stMu sync.Mutex   // guards st
	st   writerStatus // the writer's view of the server and the spool, for Ready
}

// writerStatus is what the writer goroutine last saw of the server and the
// spool. Ready reads it: a ping alone cannot tell a server that answers
// but refuses writes, nor whether the spool still has room.
type writerStatus struct {
	// writeErr is the last write's error if it was worth retrying (the
	// server is down or not taking writes); nil once one succeeds or the
	// server answers at all.
	writeErr error
	// spoolBytes mirrors the spool's size on disk.
	spoolBytes int64
	// spoolFull is set when the spool turns a batch away or evicts one for
	// lack of room, and cleared once it is back under spoolLowWater: one
	// eviction frees room for a while, and readiness must not flap with
	// each batch while an outage goes on with the spool at its bound.
	spoolFull bool
	// spoolErr is the error of the last spool write if it failed for
	// another reason than room (a disk error); nil once a batch is
	// spooled or written.
	spoolErr error
}

// spoolEpisode is the logging state of one outage: from the first batch
// spooled to the spool being empty again, each condition is logged once.
type spoolEpisode struct {
	started, full, highFull bool
	replayed                int
	diskErrLogged           time.Time
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
	var (
		sp    *spool
		limit prometheus.Gauge
	)
	if cfg.SpoolDir != "" {
		// The gauge first: failing after openSpool would leave the spool locked.
		if limit, err = spoolLimitGauge(reg); err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
		if sp, err = openSpool(cfg.SpoolDir, cfg.SpoolMaxBytes, cfg.Logger.With("sink", sinkName)); err != nil {
			return nil, err
		}
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
		spool:   sp,
		replay:  chunk{counts: make(map[string]int, 4)},
	}
	for _, meas := range []string{MeasurementEvents, MeasurementEnvelope, MeasurementMotion, MeasurementHealth} {
		var c counters
		c.written, c.errs, c.dropped = s.metrics.Counters(meas)
		s.byMeas[meas] = c
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if sp != nil {
		limit.Set(float64(cfg.SpoolMaxBytes))
		s.spoolChanged()
		if n := sp.lines(); n > 0 {
			s.log.Warn("InfluxDB spool holds points from an earlier run; replaying them",
				"dir", cfg.SpoolDir, "points", n, "bytes", sp.size)
			s.spooling.started = true
			s.kick <- struct{}{}
		}
	}
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

// Ready reports, for /readyz, whether the sink does its job. It pings the
// server and looks at what the writer saw last (a server may answer pings
// and still refuse writes) and at the spool:
//
//   - server up, spool empty or absent: nil;
//   - without a spool, server down or not taking writes: an error (not
//     ready: points wait in memory and are dropped once the queue fills,
//     and lost if the service stops);
//   - with a spool, server down or not taking writes, spool with room: an
//     error that is degraded ("unreachable, spooling N bytes (M% of
//     limit): cause"); nothing is lost, so the service stays ready;
//   - server up, spool being replayed: degraded too ("replaying the
//     spool, N bytes (M% of limit) left");
//   - spool full (it turned points away or evicted them, and is not yet
//     back under a low-water mark of 7/8 of its limit) or failing to
//     write (a disk error): an error, not ready, since points are being
//     dropped.
//
// A degraded error has a method Degraded() bool that returns true, which
// httpapi.IsDegraded recognises; a caller that treats every error as "not
// ready" sees a degraded sink as not ready. The texts are meant for the
// /readyz body, under the check's name.
func (s *Influx) Ready(ctx context.Context) error {
	_, pingErr := s.client.Ping(ctx)
	s.stMu.Lock()
	r := readiness{
		pingErr:    pingErr,
		writeErr:   s.st.writeErr,
		spool:      s.cfg.SpoolDir != "",
		spoolBytes: s.st.spoolBytes,
		spoolMax:   s.cfg.SpoolMaxBytes,
		spoolFull:  s.st.spoolFull,
		spoolErr:   s.st.spoolErr,
	}
	s.stMu.Unlock()
	return r.err()
}

// readiness is what Ready decides from, kept apart so the decision can be
// tested without a server.
type readiness struct {
	pingErr    error // the ping failed
	writeErr   error // the last write failed and will be retried
	spool      bool  // the sink has a spool
	spoolBytes int64
	spoolMax   int64
	spoolFull  bool
	spoolErr   error
}

// err returns nil when ready, a degraded readyError when ready but
// impaired, and a failed readyError when not ready (see Ready).
func (r readiness) err() error {
	var down error
	what := ""
	switch {
	case r.pingErr != nil:
		down, what = r.pingErr, "unreachable"
	case r.writeErr != nil:
		down, what = r.writeErr, "not taking writes"
	}
	if !r.spool {
		if down == nil {
			return nil
		}
		return &readyError{msg: fmt.Sprintf("%s, no spool: points wait in memory: %v", what, down), causes: []error{down}}
	}
	fill := fmt.Sprintf("%d bytes (%.1f%% of limit)", r.spoolBytes, 100*float64(r.spoolBytes)/float64(r.spoolMax))
	server := "InfluxDB takes writes again, replaying"
	if down != nil {
		server = fmt.Sprintf("%s: %v", what, down)
	}
	switch {
	case r.spoolErr != nil:
		return &readyError{msg: fmt.Sprintf("spool cannot be written, points are being dropped: %v; %s", r.spoolErr, server),
			causes: []error{r.spoolErr, down}}
	case r.spoolFull:
		return &readyError{msg: fmt.Sprintf("spool full, points are being dropped: %s; %s", fill, server), causes: []error{down}}
	case down != nil:
		return &readyError{msg: fmt.Sprintf("%s, spooling %s: %v", what, fill, down), causes: []error{down}, degraded: true}
	case r.spoolBytes > 0:
		return &readyError{msg: "replaying the spool, " + fill + " left", degraded: true}
	}
	return nil
}

// readyError is Ready's answer when the sink is not simply ready.
type readyError struct {
	msg      string
	causes   []error // nil entries are ignored
	degraded bool
}

func (e *readyError) Error() string { return e.msg }

// Unwrap returns the errors that made the sink not ready or degraded.
func (e *readyError) Unwrap() []error {
	var out []error
	for _, c := range e.causes {
		if c != nil {
			out = append(out, c)
		}
	}
	return out
}

// Degraded reports whether the sink is impaired but still does its job
// (ready); httpapi.IsDegraded looks for this method.
func (e *readyError) Degraded() bool { return e.degraded }

// spoolLowWater is the size at or under which a full spool counts as
// having room again: 7/8 of the bound, which is the bound less two
// segments for bounds from 64 KiB to 1 GiB, so one eviction (at most a
// segment) cannot clear the full state; smaller bounds keep that margin of
// two segments.
func spoolLowWater(sp *spool) int64 {
	return max(sp.max-max(sp.max/8, 2*sp.segMax), 0)
}

// spoolChanged publishes the spool's size to the metrics and to Ready, and
// clears the full state once the spool is back under its low-water mark.
// Called by the writer (or New) after every change of the spool.
func (s *Influx) spoolChanged() {
	size := s.spool.size
	s.metrics.SetSpoolBytes(size)
	s.stMu.Lock()
	s.st.spoolBytes = size
	if size <= spoolLowWater(s.spool) {
		s.st.spoolFull = false
	}
	s.stMu.Unlock()
}

// noteSpool records the outcome of a spool write for Ready: full (turned
// away or evicted for lack of room), or a disk error, or neither.
func (s *Influx) noteSpool(full bool, err error) {
	s.stMu.Lock()
	if full {
		s.st.spoolFull = true
	}
	s.st.spoolErr = err
	s.stMu.Unlock()
}

// noteWrite records the outcome of a write for Ready: err is nil when the
// server answered (took the batch or rejected it for good).
func (s *Influx) noteWrite(err error) {
	s.stMu.Lock()
	s.st.writeErr = err
	if err == nil {
		// The server takes writes: nothing needs the spool now, so an
		// earlier disk error no longer drops points.
		s.st.spoolErr = nil
	}
	s.stMu.Unlock()
}

// spoolLimitGauge returns the InfluxDB sink's series of
// crampwatch_sink_spool_limit_bytes, registered with reg (nil: not
// registered); a collector that an earlier sink registered with reg is
// reused, as sinkmetrics does.
func spoolLimitGauge(reg prometheus.Registerer) (prometheus.Gauge, error) {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "crampwatch_sink_spool_limit_bytes",
		Help: "Bound on the size of a sink's on-disk spool; with crampwatch_sink_spool_bytes, how full it is.",
	}, []string{"sink"})
	if reg != nil {
		if err := reg.Register(g); err != nil {
			var are prometheus.AlreadyRegisteredError
			existing, ok := g, false
			if errors.As(err, &are) {
				existing, ok = are.ExistingCollector.(*prometheus.GaugeVec)
			}
			if !ok {
				return nil, fmt.Errorf("register spool limit: %w", err)
			}
			g = existing
		}
	}
	return g.WithLabelValues(sinkName), nil
}

// Close writes everything queued and stops the sink. If ctx ends first, it
// abandons the write in progress and counts the unwritten points as
// dropped. With a spool, Close does not wait for a server that is down:
// what it cannot write (server down, or ctx ended) is kept in the spool
// for the next start instead of dropped; while the server takes writes it
// also replays the spool. Close returns an error, wrapping ctx's if ctx
// ended, only if points were dropped.
func (s *Influx) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	close(s.closing)
	select {
	case <-s.done:
	case <-ctx.Done():
		s.cancel()
		<-s.done // the writer's request is bound to s.ctx: it returns at once
	}
	s.cancel()
	s.client.Close()
	if s.lost > 0 {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("store: close: %d unwritten points dropped: %w", s.lost, err)
		}
		return fmt.Errorf("store: close: %d unwritten points dropped", s.lost)
	}
	return nil
}

// run is the writer goroutine: it sends full chunks when kicked, all
// chunks every FlushInterval and on Close, and retries a failed chunk with
// exponential backoff until it succeeds or Close gives up. With a spool,
// the failed chunk and everything sealed while the server is down go to
// disk at once, and the retries replay the spool.
func (s *Influx) run() {
	defer close(s.done)
	if s.spool != nil {
		defer s.spool.close()
	}
	tick := time.NewTicker(s.cfg.FlushInterval)
	defer tick.Stop()
	retry := time.NewTimer(0)
	<-retry.C
	var (
		waiting bool // the server failed: wait for the retry timer
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
			s.stop()
			return
		}
		if flush || closing == nil {
			s.mu.Lock()
			s.q.sealAll()
			s.mu.Unlock()
		}
		if !waiting {
			if err := s.drain(); err != nil {
				if s.ctx.Err() != nil {
					s.stop()
					return
				}
				backoff = nextBackoff(backoff, s.cfg.MaxRetryInterval)
				s.log.Warn("InfluxDB write failed, will retry", "err", err, "retry_in", backoff, "spool", s.spool != nil)
				retry.Reset(backoff)
				waiting = true
			} else {
				backoff = 0
			}
		}
		if waiting && s.spool != nil {
			// The server is down: what is sealed goes to disk now rather
			// than when it is back, so neither a long outage nor a crash
			// loses it, and Close need not wait.
			s.pump(true)
			if closing == nil {
				s.stop()
				return
			}
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

// drain writes, high class first and in order within a class, the spooled
// records and the sealed chunks, until nothing sealed is left (nil) or a
// write fails and is worth retrying (that error).
func (s *Influx) drain() error {
	for {
		if s.spool != nil {
			s.pump(false)
		}
		wrote, err := s.writeNext()
		if err != nil || !wrote {
			return err
		}
	}
}

// writeNext writes the next record or chunk, if any. Within a class, the
// spool is older than the memory queue, so it goes first.
func (s *Influx) writeNext() (wrote bool, err error) {
	for _, c := range []*class{&s.q.high, &s.q.bulk} {
		if s.spool != nil && !s.spool.empty(c.id) {
			return true, s.replayHead(c.id)
		}
		s.mu.Lock()
		ch := s.q.headOf(c)
		s.mu.Unlock()
		if ch == nil {
			continue
		}
		err := s.write(ch)
		if err != nil && retryable(err) {
			if s.spool != nil {
				s.spoolChunk(c, ch)
			}
			return true, err
		}
		s.popChunk(c, ch)
		return true, nil
	}
	return false, nil
}

// replayHead writes the oldest spooled record of class cls and lets it go
// unless the write is worth retrying.
func (s *Influx) replayHead(cls int) error {
	rec, lines, err := s.spool.head(cls)
	if err != nil {
		for _, mc := range rec.counts {
			s.metrics.Dropped(mc.meas, mc.n)
		}
		s.log.Error("InfluxDB spool record unreadable; its points are lost", "err", err, "lines", rec.lines)
		s.popRecord(cls)
		return nil
	}
	ch := &s.replay
	ch.buf, ch.lines = lines, rec.lines
	clear(ch.counts)
	for _, mc := range rec.counts {
		ch.counts[mc.meas] += mc.n
	}
	err = s.write(ch)
	ch.buf = nil // the spool's buffer
	if err != nil && retryable(err) {
		return err
	}
	if err == nil {
		s.spooling.replayed += rec.lines
	}
	s.popRecord(cls)
	return nil
}

func (s *Influx) popRecord(cls int) {
	s.spool.pop(cls)
	s.spoolChanged()
	if s.spool.lines() == 0 {
		s.log.Info("InfluxDB spool replayed", "points", s.spooling.replayed)
		s.spooling = spoolEpisode{}
	}
}

func (s *Influx) popChunk(c *class, ch *chunk) {
	s.mu.Lock()
	s.q.pop(c, ch)
	s.metrics.SetDepth(s.q.depth())
	s.mu.Unlock()
}

// pump moves sealed chunks to the spool, oldest first: all of them if
// force (the server is down), else those of classes whose spool is not
// empty, which must not overtake it.
func (s *Influx) pump(force bool) {
	for _, c := range []*class{&s.q.high, &s.q.bulk} {
		for force || !s.spool.empty(c.id) {
			s.mu.Lock()
			ch := s.q.headOf(c)
			s.mu.Unlock()
			if ch == nil || !s.spoolChunk(c, ch) {
				break
			}
		}
	}
}

// spoolChunk moves ch, the head of c, to the spool and reports whether it
// left the memory queue. When the spool is full, a high chunk makes room
// by evicting the oldest bulk segments; if that is not enough it stays in
// memory (it and the chunks behind it are written after the spool), while
// a bulk chunk is dropped: the degradation order of docs/schema.md.
func (s *Influx) spoolChunk(c *class, ch *chunk) bool {
	err := s.spool.append(c.id, ch)
	evicted := false
	for errors.Is(err, errSpoolFull) && c.id == classHigh {
		lost, ok := s.spool.evictOldest(classBulk)
		if !ok {
			break
		}
		n := 0
		for m, k := range lost {
			s.metrics.Dropped(m, k)
			s.metrics.SpoolFull(m, k)
			n += k
		}
		evicted = true
		s.logSpoolFull()
		s.log.Warn("InfluxDB spool full: oldest envelope, motion and health points dropped to keep events", "points", n)
		err = s.spool.append(c.id, ch)
	}
	s.spoolChanged()
	full := errors.Is(err, errSpoolFull)
	if full || err == nil {
		s.noteSpool(full || evicted, nil)
	} else {
		s.noteSpool(false, err)
	}
	if err == nil {
		for m, n := range ch.counts {
			s.metrics.Spooled(m, n)
		}
		if !s.spooling.started {
			s.spooling.started = true
			s.log.Warn("InfluxDB not taking writes: spooling to disk", "dir", s.cfg.SpoolDir)
		}
		s.popChunk(c, ch)
		return true
	}
	first := !ch.refused
	ch.refused = true
	if full {
		if c.id == classHigh && first {
			for m, n := range ch.counts {
				s.metrics.SpoolFull(m, n)
			}
		}
		s.logSpoolFull()
	} else if first && time.Since(s.spooling.diskErrLogged) > time.Minute {
		// A full or broken disk fails every batch: say so once a minute.
		s.spooling.diskErrLogged = time.Now()
		s.log.Error("InfluxDB spool write failed: envelope, motion and health points are dropped, events wait in memory",
			"err", err, "lines", ch.lines)
	}
	if c.id == classHigh {
		if full && !s.spooling.highFull {
			s.spooling.highFull = true
			s.mu.Lock()
			queued := s.q.high.lines
			s.mu.Unlock()
			s.log.Error("InfluxDB spool full of events and alert records: new ones wait in memory, up to EventQueueSize",
				"queued", queued, "event_queue_size", s.cfg.EventQueueSize)
		}
		return false
	}
	for m, n := range ch.counts {
		s.metrics.Dropped(m, n)
		if full {
			s.metrics.SpoolFull(m, n)
		}
	}
	s.popChunk(c, ch)
	return true
}

// logSpoolFull logs, once per outage, that the spool reached its bound.
func (s *Influx) logSpoolFull() {
	if s.spooling.full {
		return
	}
	s.spooling.full = true
	s.log.Error("InfluxDB spool full: envelope, motion and health points are dropped from now on; events and alert records keep their place",
		"dir", s.cfg.SpoolDir, "bytes", s.spool.size, "max_bytes", s.cfg.SpoolMaxBytes)
}

// stop ends the writer: with a spool, everything still queued goes to
// disk; what cannot is counted as dropped.
func (s *Influx) stop() {
	if s.spool != nil {
		s.mu.Lock()
		s.q.sealAll()
		s.mu.Unlock()
		s.pump(true)
		if n := s.spool.lines(); n > 0 {
			s.log.Info("InfluxDB spool keeps points for the next start", "points", n, "bytes", s.spool.size, "dir", s.cfg.SpoolDir)
		}
	}
	s.dropQueued()
}

// write sends one chunk and accounts for it: written on success, dropped
// on a permanent failure, an error per attempt on any failure.
func (s *Influx) write(ch *chunk) error {
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.WriteTimeout)
	defer cancel()
	err := s.writer.WriteRecord(ctx, string(ch.buf))
	if err == nil {
		s.noteWrite(nil)
		for m, n := range ch.counts {
			s.metrics.Written(m, n)
		}
		return nil
	}
	for m := range ch.counts {
		s.metrics.Error(m)
	}
	if retryable(err) {
		s.noteWrite(err)
	} else {
		s.noteWrite(nil) // the server answered: it is up
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
	s.lost = total
	if total > 0 {
		s.log.Error("InfluxDB sink stopped with unwritten points", "points", total)
	}
}

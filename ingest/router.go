package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/crampwatch/crampwatch/wire"
)

// Errors returned by Handle and Feed besides *wire.Error rejections.
var (
	// ErrQueueFull: the device's shard queue was full and the message was dropped.
	ErrQueueFull = errors.New("ingest: shard queue full, message dropped")
	// ErrClosed: the router is closed.
	ErrClosed = errors.New("ingest: router closed")
	// ErrUnrouted: a valid topic of a stream the router does not handle
	// (ack, diary, alert, tens, events); other packages subscribe to those.
	ErrUnrouted = errors.New("ingest: stream not handled by the router")
)

// Router turns (topic, payload) messages into ordered per-device frames for
// a Handler. Handle and Feed are safe for concurrent use.
type Router struct {
	cfg    Config
	shards []*shard
	m      *Metrics
	log    *slog.Logger
	logLim *rateLimit
	bufs   sync.Pool // *[]byte payload copies
	ndev   atomic.Int64

	// mu guards sending on the shard queues against Close closing them:
	// senders hold it for reading, Close takes it for writing once.
	mu      sync.RWMutex
	closed  bool
	closing chan struct{} // closed first by Close, to wake blocked Feeds
	once    sync.Once
	wg      sync.WaitGroup
}

// message is one queued MQTT message. It is passed by value through the
// shard queue so queueing allocates nothing.
type message struct {
	device string
	stream wire.Stream
	buf    *[]byte     // pooled copy of the payload; nil for a rejection note
	reason wire.Reason // set when Handle rejected the message, so the shard can count it for the device
	live   bool        // from Handle: subject to the per-device rate limit (Feed's are not)
}

// NewRouter starts the shard workers; h is called from them. A nil m gets
// unregistered metrics and a nil log discards.
func NewRouter(cfg Config, h Handler, m *Metrics, log *slog.Logger) *Router {
	cfg = cfg.withDefaults()
	if m == nil {
		m = NewMetrics(nil)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Router{
		cfg:     cfg,
		m:       m,
		log:     log,
		logLim:  newRateLimit(logsPerSecond),
		closing: make(chan struct{}),
	}
	// Payloads start at 4 KiB (a 200 ms two-channel JSON frame fits) and
	// grow as needed; the pool keeps the grown buffers.
	r.bufs.New = func() any { b := make([]byte, 0, 4096); return &b }
	sc := cfg.seqConfig()
	r.shards = make([]*shard, cfg.Shards)
	for i := range r.shards {
		r.shards[i] = newShard(r, i, &sc, h)
	}
	r.wg.Add(len(r.shards))
	for _, s := range r.shards {
		go s.run()
	}
	return r
}

// Handle queues a live message: the payload is copied, so the caller may
// reuse it. If the shard's queue is full it waits up to Config.QueueWait
// (by default not at all) for room, then drops the message (counted) and
// returns ErrQueueFull. Rejections return a *wire.Error. Live messages are
// subject to the per-device rate limit (Config.DeviceRate).
func (r *Router) Handle(topic string, payload []byte) error {
	return r.enqueue(context.Background(), false, topic, payload)
}

// Feed is Handle for offline replay and evaluation: it waits for queue space
// instead of dropping, until ctx is done or the router closes, and its
// messages are not rate limited (the caller sets the pace).
func (r *Router) Feed(ctx context.Context, topic string, payload []byte) error {
	return r.enqueue(ctx, true, topic, payload)
}

// enqueue routes one message. Feed (wait set) waits for queue space as long
// as ctx allows; Handle waits at most Config.QueueWait.
func (r *Router) enqueue(ctx context.Context, wait bool, topic string, payload []byte) error {
	device, stream, err := wire.ParseTopic(r.cfg.Prefix, topic)
	if err != nil {
		r.rejectEarly("", err)
		return err
	}
	switch stream {
	case wire.StreamEMG, wire.StreamIMU, wire.StreamStatus:
	default:
		r.m.unrouted.Inc()
		return ErrUnrouted
	}
	s := r.shards[shardOf(device, len(r.shards))]
	if len(payload) > r.cfg.MaxPayload {
		err := &wire.Error{Reason: wire.ReasonOversize,
			Detail: fmt.Sprintf("payload of %d bytes exceeds %d", len(payload), r.cfg.MaxPayload)}
		r.rejectEarly(device, err)
		// Let the shard count it against the device too, if there is room.
		r.send(ctx, false, s, message{device: device, stream: stream, reason: wire.ReasonOversize})
		return err
	}
	bp := r.bufs.Get().(*[]byte)
	*bp = append((*bp)[:0], payload...)
	m := message{device: device, stream: stream, buf: bp, live: !wait}
	err = r.send(ctx, wait, s, m)
	if errors.Is(err, ErrQueueFull) && r.cfg.QueueWait > 0 {
		// Backpressure: the caller (Paho's delivery goroutine) waits, so
		// the broker keeps what does not fit instead of it being lost.
		r.m.queueWaits.Inc()
		wctx, cancel := context.WithTimeout(ctx, r.cfg.QueueWait)
		err = r.send(wctx, true, s, m)
		cancel()
		if err != nil && !errors.Is(err, ErrClosed) {
			err = ErrQueueFull
		}
	}
	if err != nil {
		r.bufs.Put(bp)
		if errors.Is(err, ErrQueueFull) {
			r.m.queueDropped.Inc()
		}
		return err
	}
	return nil
}

// send puts m on s's queue, waiting for space (until ctx is done) only if
// wait is set.
func (r *Router) send(ctx context.Context, wait bool, s *shard, m message) error {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.closed {
		return ErrClosed
	}
	if !wait {
		select {
		case s.q <- m:
			return nil
		default:
			return ErrQueueFull
		}
	}
	select {
	case s.q <- m:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("ingest: feed: %w", ctx.Err())
	case <-r.closing:
		return ErrClosed
	}
}

// rejectEarly counts and logs a message rejected before queueing.
func (r *Router) rejectEarly(device string, err error) {
	reason := reasonOf(err)
	r.m.reject(reason)
	if r.log.Enabled(context.Background(), slog.LevelDebug) && r.logLim.allow(time.Now()) {
		r.log.Debug("ingest: message rejected", "device", device, "reason", string(reason), "err", err)
	}
}

// Close stops accepting messages, lets the shards process what is queued,
// delivers frames still held for reordering, and waits for the workers.
// It is safe to call more than once.
func (r *Router) Close() {
	r.once.Do(func() {
		close(r.closing)
		r.mu.Lock()
		r.closed = true
		for _, s := range r.shards {
			close(s.q)
		}
		r.mu.Unlock()
	})
	r.wg.Wait()
}

// shardOf hashes a device id (FNV-1a) to a shard index.
func shardOf(device string, n int) int {
	h := uint32(2166136261)
	for i := 0; i < len(device); i++ {
		h ^= uint32(device[i])
		h *= 16777619
	}
	return int(h % uint32(n))
}

// reasonOf extracts the rejection reason of a decoder or topic error.
func reasonOf(err error) wire.Reason {
	var we *wire.Error
	if errors.As(err, &we) && we.Reason != "" {
		return we.Reason
	}
	return ReasonUnknown
}

// logsPerSecond bounds rejection logs, so a misbehaving device cannot flood
// the log; the rest are only counted.
const logsPerSecond = 10

// rateLimit allows n events per wall-clock second.
type rateLimit struct {
	mu     sync.Mutex
	n      int
	window time.Time
	used   int
}

func newRateLimit(n int) *rateLimit { return &rateLimit{n: n} }

func (l *rateLimit) allow(now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.window) >= time.Second {
		l.window, l.used = now, 0
	}
	if l.used >= l.n {
		return false
	}
	l.used++
	return true
}

package alerts

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crampwatch/crampwatch/detect"
	"github.com/crampwatch/crampwatch/ingest"
	"github.com/crampwatch/crampwatch/pipeline"
	"github.com/crampwatch/crampwatch/wire"
)

// Publisher sends one MQTT message; mqttclient.Client implements it.
type Publisher interface {
	Publish(ctx context.Context, topic string, qos byte, retained bool, payload []byte) error
}

// Deps are the engine's collaborators. Only Publisher is required.
type Deps struct {
	Publisher Publisher
	// Recorder keeps alerts, acks and diary entries (e.g. store.AlertRecorder); nil: not kept.
	Recorder Recorder
	// Notifiers get every wearer message besides MQTT. When Config.Webhook.URL
	// is set the engine adds a Webhook itself.
	Notifiers []Notifier
	// HTTPClient is used by the webhook; nil: a plain client.
	HTTPClient *http.Client
	// Metrics may be nil (nothing is exported then).
	Metrics *Metrics
	Logger  *slog.Logger
	// Now is the wall clock, used only for the receipt time of diary entries
	// without a time of their own. nil: time.Now.
	Now func() time.Time
}

// Engine is the alert policy as a pipeline.Sink plus the handlers for the
// wearer's acknowledgements and diary entries. It is safe for concurrent use.
type Engine struct {
	cfg Config
	log *slog.Logger
	m   *Metrics
	now func() time.Time

	mu     sync.Mutex // guards pol and closed
	pol    *policy
	closed bool

	outlets []*outlet
	records chan effect
	rec     Recorder

	runCtx context.Context // cancelled when Close gives up waiting
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// outlet is one delivery channel with its own queue and goroutine, so a slow
// webhook never delays the MQTT alert.
type outlet struct {
	name    string
	q       chan Notification
	deliver func(context.Context, Notification) error
	done    chan struct{} // closed when the outlet has delivered its last message
	// disc holds the Home Assistant discovery configs for this outlet (MQTT
	// only), published by their own goroutine while q is empty; nil: none.
	disc *pendingDiscovery
	// idle gets a signal (capacity 1) whenever the outlet has delivered a
	// message and found q empty, which wakes the discovery publisher.
	idle chan struct{}
}

var _ pipeline.Sink = (*Engine)(nil)

// NewEngine validates cfg and starts the engine's delivery goroutines. Stop
// them with Close.
func NewEngine(cfg Config, d Deps) (*Engine, error) {
	if d.Publisher == nil {
		return nil, errors.New("alerts: a Publisher is required")
	}
	pol, err := newPolicy(cfg)
	if err != nil {
		return nil, fmt.Errorf("alerts: config: %w", err)
	}
	e := &Engine{cfg: cfg, log: d.Logger, m: d.Metrics, now: d.Now, pol: pol, rec: d.Recorder}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	if e.m == nil {
		e.m = NewMetrics(prometheus.NewRegistry())
	}
	if e.now == nil {
		e.now = time.Now
	}
	e.runCtx, e.cancel = context.WithCancel(context.Background())

	pub := d.Publisher
	mq := &outlet{
		name: "mqtt", q: make(chan Notification, cfg.QueueSize), done: make(chan struct{}),
		deliver: func(ctx context.Context, n Notification) error {
			ctx, cancel := context.WithTimeout(ctx, cfg.PublishTimeout)
			defer cancel()
			return pub.Publish(ctx, n.Topic, n.QoS, n.Retained, n.Payload)
		},
	}
	if cfg.HADiscovery {
		mq.disc = newPendingDiscovery(e.m.discPending)
		mq.idle = make(chan struct{}, 1)
	}
	e.outlets = append(e.outlets, mq)
	notifiers := d.Notifiers
	if cfg.Webhook.URL != "" {
		wh, err := NewWebhook(cfg.Webhook, d.HTTPClient)
		if err != nil {
			e.cancel()
			return nil, fmt.Errorf("alerts: %w", err)
		}
		notifiers = append(notifiers, wh)
	}
	for i, nf := range notifiers {
		name := "webhook"
		if i > 0 {
			name += strconv.Itoa(i)
		}
		e.outlets = append(e.outlets, &outlet{name: name, q: make(chan Notification, cfg.QueueSize), done: make(chan struct{}), deliver: nf.Notify})
	}
	for _, o := range e.outlets {
		e.wg.Add(1)
		go e.runOutlet(o)
		if o.disc != nil {
			e.wg.Add(1)
			go e.runDiscovery(o)
		}
	}
	if e.rec != nil {
		e.records = make(chan effect, cfg.QueueSize)
		e.wg.Add(1)
		go e.runRecords()
	}
	e.log.Info("alert engine started", "escalate_after", cfg.EscalateAfter, "tens_after", cfg.TENSAfter,
		"tens_preset", cfg.TENS.Preset, "cooldown", cfg.Cooldown, "max_per_hour", cfg.MaxPerHour,
		"quiet_hours", cfg.QuietHours, "time_zone", cfg.TimeZone, "webhook", cfg.Webhook,
		"ha_discovery", cfg.HADiscovery, "ha_discovery_rate", cfg.HADiscoveryRate)
	return e, nil
}

// Event applies a detected event: cramps open, escalate and end alerts;
// other kinds only move the device's clock.
func (e *Engine) Event(ev detect.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return
	}
	e.pol.event(ev)
	e.flush()
}

// Envelope advances the device's sample clock, which runs escalation.
func (e *Engine) Envelope(p detect.Envelope) { e.tick(p.Device, p.Time) }

// Motion advances the device's sample clock, which runs escalation.
func (e *Engine) Motion(p detect.Motion) { e.tick(p.Device, p.Time) }

// Health advances the device's sample clock to its newest frame.
func (e *Engine) Health(h ingest.Health) { e.tick(h.Device, h.Time) }

func (e *Engine) tick(device string, t time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return
	}
	e.pol.tick(device, t)
	if len(e.pol.out) > 0 {
		e.flush()
	}
}

// HandleAck applies a wearer's acknowledgement received on
// {prefix}/{device}/ack. A rejected ack returns a *RejectError and is counted
// by reason.
func (e *Engine) HandleAck(device string, payload []byte) error {
	err := e.handleAck(device, payload)
	if err != nil {
		var re *RejectError
		reason := "other"
		if errors.As(err, &re) {
			reason = string(re.Reason)
		}
		e.m.ackRejects.WithLabelValues(reason).Inc()
		e.log.Info("ack rejected", "device", clip(device), "reason", reason, "detail", err)
	}
	return err
}

func (e *Engine) handleAck(device string, payload []byte) error {
	if !wire.ValidDevice(device) {
		return reject(ReasonBadDevice, "device id %q", clip(device))
	}
	a, err := ParseAck(payload)
	if err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return reject(ReasonClosed, "alert engine is closed")
	}
	if err := e.pol.ack(device, a); err != nil {
		return err
	}
	e.flush()
	return nil
}

// HandleDiary records a diary entry received on {prefix}/{device}/diary and
// links it to the nearest cramp of that night (or the alert or event it
// names). A rejected entry returns a *RejectError and is counted by reason.
func (e *Engine) HandleDiary(device string, payload []byte) error {
	err := e.handleDiary(device, payload)
	if err != nil {
		var re *RejectError
		reason := "other"
		if errors.As(err, &re) {
			reason = string(re.Reason)
		}
		e.m.diaryRej.WithLabelValues(reason).Inc()
		e.log.Info("diary entry rejected", "device", clip(device), "reason", reason, "detail", err)
	}
	return err
}

// diaryTimeSlack bounds how far a diary entry's own time may lie from its
// receipt: written up to a year later, never in the future by more than a
// day of clock skew.
const (
	diaryMaxAge    = 366 * 24 * time.Hour
	diaryMaxFuture = 24 * time.Hour
)

func (e *Engine) handleDiary(device string, payload []byte) error {
	if !wire.ValidDevice(device) {
		return reject(ReasonBadDevice, "device id %q", clip(device))
	}
	d, err := ParseDiary(payload)
	if err != nil {
		return err
	}
	recv := e.now()
	at := recv
	if d.T != 0 {
		at = time.UnixMicro(d.T)
		if at.Before(recv.Add(-diaryMaxAge)) || at.After(recv.Add(diaryMaxFuture)) {
			return reject(ReasonBadTime, "t %d is more than a year before or a day after receipt", d.T)
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return reject(ReasonClosed, "alert engine is closed")
	}
	if err := e.pol.diary(device, d, at); err != nil {
		return err
	}
	e.flush()
	return nil
}

// flush hands the policy's effects to the queues, in order. It never blocks:
// a full queue drops and counts. Called with e.mu held, which keeps the
// order of messages the order of decisions.
func (e *Engine) flush() {
	for i := range e.pol.out {
		ef := &e.pol.out[i]
		switch ef.kind {
		case effNote:
			e.enqueueNote(ef.note)
		case effAlert:
			r := ef.alert
			if r.Outcome == OutcomeSent {
				e.m.messages.WithLabelValues(r.Type).Inc()
				e.m.latency.WithLabelValues(r.Type).Observe(r.LatencyS)
				e.log.Info("alert sent", "device", r.Device, "type", r.Type, "alert_id", r.AlertID, "latency_s", r.LatencyS)
			} else {
				e.m.suppressed.WithLabelValues(r.Type, r.Reason).Inc()
				e.log.Info("alert suppressed", "device", r.Device, "type", r.Type, "reason", r.Reason, "alert_id", r.AlertID)
			}
			e.enqueueRecord(*ef)
		case effAck:
			e.m.acks.WithLabelValues(ef.ack.Action).Inc()
			e.enqueueRecord(*ef)
		case effDiary:
			e.m.diary.WithLabelValues(strconv.FormatBool(ef.diary.Linked)).Inc()
			e.enqueueRecord(*ef)
		}
		*ef = effect{} // drop references so the history can be collected
	}
	e.pol.out = e.pol.out[:0]
}

func (e *Engine) enqueueNote(n Notification) {
	if n.Type == TypeDiscovery {
		// Never in an outlet queue: a retained config can wait, and at a
		// fleet start a thousand of them would crowd alerts out.
		for _, o := range e.outlets {
			if o.disc != nil {
				o.disc.push(n)
			}
		}
		return
	}
	if n.Payload == nil {
		e.log.Error("alert message could not be encoded; not sent", "device", n.Device, "type", n.Type)
		return
	}
	for _, o := range e.outlets {
		select {
		case o.q <- n:
		default:
			e.m.delivery.WithLabelValues(o.name, "dropped").Inc()
			e.log.Error("alert queue full; message dropped", "channel", o.name, "device", n.Device, "type", n.Type)
		}
	}
}

func (e *Engine) enqueueRecord(ef effect) {
	if e.records == nil {
		return
	}
	select {
	case e.records <- ef:
	default:
		e.m.delivery.WithLabelValues("record", "dropped").Inc()
		e.log.Error("alert record queue full; record dropped")
	}
}

func (e *Engine) runOutlet(o *outlet) {
	defer e.wg.Done()
	defer close(o.done)
	for n := range o.q {
		if err := o.deliver(e.runCtx, n); err != nil {
			e.m.delivery.WithLabelValues(o.name, "error").Inc()
			e.log.Error("alert delivery failed", "channel", o.name, "device", n.Device, "type", n.Type, "id", n.ID, "err", err)
		} else {
			e.m.delivery.WithLabelValues(o.name, "ok").Inc()
		}
		if o.idle != nil && len(o.q) == 0 {
			select {
			case o.idle <- struct{}{}:
			default: // a wake-up is already due
			}
		}
	}
}

func (e *Engine) runRecords() {
	defer e.wg.Done()
	for ef := range e.records {
		ctx, cancel := context.WithTimeout(e.runCtx, e.cfg.PublishTimeout)
		var err error
		switch ef.kind {
		case effAlert:
			err = e.rec.RecordAlert(ctx, ef.alert)
		case effAck:
			err = e.rec.RecordAck(ctx, ef.ack)
		case effDiary:
			err = e.rec.RecordDiary(ctx, ef.diary)
		}
		cancel()
		if err != nil {
			e.m.delivery.WithLabelValues("record", "error").Inc()
			e.log.Error("alert record failed", "err", err)
			continue
		}
		e.m.delivery.WithLabelValues("record", "ok").Inc()
	}
}

// Close stops taking input and delivers what is queued, wearer messages
// before pending discovery configs. If ctx ends first, in-flight deliveries
// are cancelled, pending discovery configs are dropped (and counted), and
// Close returns ctx's error.
func (e *Engine) Close(ctx context.Context) error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	for _, o := range e.outlets {
		close(o.q)
	}
	if e.records != nil {
		close(e.records)
	}
	e.mu.Unlock()

	done := make(chan struct{})
	go func() { e.wg.Wait(); close(done) }()
	select {
	case <-done:
		e.cancel()
		return nil
	case <-ctx.Done():
		e.cancel()
		<-done // deliveries now fail fast on the cancelled context
		return fmt.Errorf("alerts: close: %w", ctx.Err())
	}
}

// Outcomes returns what happened to each cramp of the device on record,
// oldest first, for relief analytics and the night summary.
func (e *Engine) Outcomes(device string) []CrampOutcome {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.pol.outcomes(device)
}

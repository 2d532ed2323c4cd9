package alerts

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crampwatch/crampwatch/wire"
)

// haDevice is the device block of a Home Assistant discovery config.
type haDevice struct {
	Identifiers  []string `json:"identifiers"`
	Name         string   `json:"name"`
	Manufacturer string   `json:"manufacturer"`
	Model        string   `json:"model"`
}

// haEvent is a Home Assistant MQTT discovery config for an "event" entity.
type haEvent struct {
	Name          string   `json:"name"`
	UniqueID      string   `json:"unique_id"`
	ObjectID      string   `json:"object_id"`
	StateTopic    string   `json:"state_topic"`
	EventTypes    []string `json:"event_types"`
	ValueTemplate string   `json:"value_template"`
	Icon          string   `json:"icon"`
	Device        haDevice `json:"device"`
}

// haValueTemplate turns an alert message into the JSON Home Assistant's
// event entity wants: an "event_type" key plus attributes.
const haValueTemplate = `{{ {"event_type": value_json.type, "alert_id": value_json.id, "muscle": value_json.muscle, ` +
	`"side": value_json.side, "hint": value_json.hint, "latency_s": value_json.latency_s} | to_json }}`

// DiscoveryTopic is where the retained discovery config of a device goes:
// {haPrefix}/event/crampwatch_{device}/cramp_alert/config.
func DiscoveryTopic(haPrefix, device string) string {
	return haPrefix + "/event/crampwatch_" + device + "/cramp_alert/config"
}

// DiscoveryConfig returns the retained Home Assistant discovery payload that
// makes the device's alert topic an "event" entity with the event types
// alert, escalation and ended.
func DiscoveryConfig(prefix, device string) []byte {
	return mustJSON(haEvent{
		Name:          "Cramp alert",
		UniqueID:      "crampwatch_" + device + "_cramp_alert",
		ObjectID:      "crampwatch_" + device + "_cramp_alert",
		StateTopic:    wire.Topic(prefix, device, wire.StreamAlert),
		EventTypes:    []string{TypeAlert, TypeEscalation, TypeEnded},
		ValueTemplate: haValueTemplate,
		Icon:          "mdi:human-handsdown",
		Device: haDevice{
			Identifiers:  []string{"crampwatch_" + device},
			Name:         "crampwatch " + device,
			Manufacturer: "crampwatch",
			Model:        "night cramp monitor",
		},
	})
}

// Waits after a failed discovery publish: the first, doubling up to the
// longest. A failure usually means the broker is unreachable, so the whole
// pending set waits, not just the device that failed.
const (
	discoveryRetryMin = time.Second
	discoveryRetryMax = time.Minute
)

// channelDiscovery is the delivery metric's channel for discovery configs.
// They are counted apart from "mqtt" so that a dropped wearer message stays
// visible on its own.
const channelDiscovery = "discovery"

// pendingDiscovery holds the Home Assistant discovery configs not yet
// published, oldest first. It is kept apart from the outlet's queue so that a
// fleet start (a thousand devices seen within a second) cannot take a place
// that an alert needs. The policy announces each device once per engine
// lifetime and a failed publish puts the device back, so a device is in the
// set at most once and the set is bounded by the number of devices. Entries
// carry no payload: it is encoded when the config is sent.
type pendingDiscovery struct {
	mu    sync.Mutex
	q     []Notification
	ready chan struct{} // capacity 1: something was added
	gauge prometheus.Gauge
}

func newPendingDiscovery(gauge prometheus.Gauge) *pendingDiscovery {
	return &pendingDiscovery{ready: make(chan struct{}, 1), gauge: gauge}
}

// push adds n at the back and wakes the publisher. It never blocks.
func (p *pendingDiscovery) push(n Notification) {
	p.mu.Lock()
	p.q = append(p.q, n)
	p.mu.Unlock()
	p.gauge.Inc()
	select {
	case p.ready <- struct{}{}:
	default: // a wake-up is already due
	}
}

// pop takes the oldest entry.
func (p *pendingDiscovery) pop() (Notification, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.q) == 0 {
		return Notification{}, false
	}
	n := p.q[0]
	p.q[0] = Notification{} // let the strings go
	p.q = p.q[1:]
	if len(p.q) == 0 {
		p.q = nil // release the backing array after a burst
	}
	p.gauge.Dec()
	return n, true
}

// len returns the number of entries waiting.
func (p *pendingDiscovery) len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.q)
}

// clear empties the set and returns how many entries it held.
func (p *pendingDiscovery) clear() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.q)
	p.q = nil
	p.gauge.Sub(float64(n))
	return n
}

// rateInterval is the spacing of discovery publishes for a rate per second.
// It is capped at an hour, which keeps the conversion in range for absurdly
// low rates.
func rateInterval(perSecond float64) time.Duration {
	iv := float64(time.Second) / perSecond
	if iv >= float64(time.Hour) {
		return time.Hour
	}
	return time.Duration(iv)
}

// nextRetry returns the wait after a failed discovery publish, given the
// previous wait (0 after a success).
func nextRetry(prev time.Duration) time.Duration {
	return min(max(2*prev, discoveryRetryMin), discoveryRetryMax)
}

// runDiscovery publishes o's pending discovery configs one at a time, and
// only while o holds no wearer message: an alert never waits behind a
// discovery config for a place in the queue. Publishes are spaced by the
// configured rate, and a failure puts the device back and pauses with
// backoff. Once o has delivered its last message at Close, what is left is
// published by flushDiscovery, so even then alerts go first.
func (e *Engine) runDiscovery(o *outlet) {
	defer e.wg.Done()
	d := o.disc
	interval := rateInterval(e.cfg.HADiscoveryRate)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var next time.Time // earliest start of the next publish (rate limit or backoff)
	var backoff time.Duration
	for {
		select {
		case <-o.done:
			e.flushDiscovery(o)
			return
		default:
		}
		if d.len() == 0 {
			select {
			case <-d.ready:
			case <-o.done:
			}
			continue
		}
		if len(o.q) > 0 {
			// Wearer messages first. The outlet signals idle whenever it
			// has delivered a message and found its queue empty.
			select {
			case <-o.idle:
			case <-o.done:
			}
			continue
		}
		if wait := time.Until(next); wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-o.done:
				timer.Stop()
			}
			continue // the queue may have filled while we waited
		}
		n, ok := d.pop()
		if !ok {
			continue
		}
		start := time.Now()
		if err := e.publishDiscovery(o, n); err != nil {
			d.push(n)
			backoff = nextRetry(backoff)
			next = time.Now().Add(backoff)
			e.log.Error("discovery publish failed; will retry", "device", n.Device, "retry_in", backoff, "err", err)
			continue
		}
		backoff = 0
		next = start.Add(interval)
	}
}

// flushDiscovery publishes what is still pending at Close, once each and
// without the rate limit: the wearer's messages are all out by now. The
// first failure (or Close giving up) abandons the rest, since a broker that
// refuses one config will refuse the others and shutdown must not wait a
// publish timeout per device; the next start announces every device again.
func (e *Engine) flushDiscovery(o *outlet) {
	for e.runCtx.Err() == nil {
		n, ok := o.disc.pop()
		if !ok {
			return
		}
		if err := e.publishDiscovery(o, n); err != nil {
			e.log.Error("discovery publish failed at close", "device", n.Device, "err", err)
			e.dropDiscovery(1 + o.disc.clear())
			return
		}
	}
	e.dropDiscovery(o.disc.clear())
}

func (e *Engine) dropDiscovery(n int) {
	if n == 0 {
		return
	}
	e.m.delivery.WithLabelValues(channelDiscovery, "dropped").Add(float64(n))
	e.log.Warn("discovery configs not published before close; the next start sends them", "devices", n)
}

// publishDiscovery encodes and sends one discovery config and counts the result.
func (e *Engine) publishDiscovery(o *outlet, n Notification) error {
	n.Payload = DiscoveryConfig(e.cfg.Prefix, n.Device)
	if err := o.deliver(e.runCtx, n); err != nil {
		e.m.delivery.WithLabelValues(channelDiscovery, "error").Inc()
		return err
	}
	e.m.delivery.WithLabelValues(channelDiscovery, "ok").Inc()
	return nil
}

package alerts

import (
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/crampwatch/crampwatch/detect"
	"github.com/crampwatch/crampwatch/wire"
)

// History bounds per device. A hard night has a few dozen cramps, so these
// hold months of outcomes for relief analytics while bounding memory.
const (
	maxCrampHistory   = 4096
	maxEpisodeHistory = 1024
)

// Notification is one outbound message: what goes to MQTT and the webhook.
type Notification struct {
	Device string
	// Type is alert, escalation, ended or tens_prompt (or discovery for the
	// retained Home Assistant config, which only goes to MQTT, after the
	// wearer's messages, and whose Payload is filled in when it is sent).
	Type string
	// ID is unique per message and stable across replays (alert id + "/" +
	// type), so a receiver can drop a redelivered webhook.
	ID       string
	AlertID  string
	Topic    string
	QoS      byte
	Retained bool
	Payload  []byte
}

// TypeDiscovery marks the Home Assistant discovery config notification.
const TypeDiscovery = "discovery"

// effect is one thing a policy step wants done, in order.
type effect struct {
	kind  effectKind
	note  Notification
	alert AlertRecord
	ack   AckRecord
	diary DiaryRecord
}

type effectKind uint8

const (
	effNote effectKind = iota + 1
	effAlert
	effAck
	effDiary
)

// policy is the alert state machine. It is not safe for concurrent use (the
// Engine holds a mutex around it) and never reads a clock: every step gets
// its time from the caller, so tests drive it table by table.
type policy struct {
	cfg   Config
	loc   *time.Location
	quiet quietWindow
	devs  map[string]*devState
	out   []effect // effects of the current step; the caller drains it
}

// devState is one device's alert state.
type devState struct {
	id  string
	now time.Time // newest sample time seen
	// active is the episode being alerted on, nil between cramps.
	active *episode
	// lastEnd is when the last episode that reached the wearer ended; the
	// cooldown runs from it.
	lastEnd time.Time
	// buzzes holds the sample times of the buzzing messages of the last hour.
	buzzes []time.Time
	// episodes and cramps are the bounded history, for acks, diary linking
	// and relief analytics.
	episodes   map[string]*episode
	epOrder    []string
	cramps     map[string]*cramp
	crampOrder []*cramp
	// restoredAt is the sample clock read back by LoadState, until the
	// device's stream resumes; zero otherwise (see resumed).
	restoredAt time.Time
}

// episode is one alert: one or more cramps of one device that overlap in
// time (both calves, say), alerted on as one.
type episode struct {
	id      string
	primary *cramp
	members []*cramp
	open    int // members not yet ended
	onset   time.Time
	// firstMsg is when the first buzzing message went out; sent says whether one did.
	firstMsg time.Time
	sent     bool
	// Stages done: sent, or given up for good.
	escalated, tensDone bool
	tensSent            bool
	// stopped: an acknowledgement other than snooze ends escalation.
	stopped     bool
	snoozeUntil time.Time
	ackAction   string
	ackAt       time.Time
	// noted remembers which suppressions were already recorded, so a blocked
	// escalation is recorded once, not at every envelope point.
	noted map[suppressKey]bool
	ended bool
	end   time.Time
	// restored marks the episode that was active when the state was saved
	// by the previous run; held stops its escalation because the stream
	// resumed after a gap, so nobody knows whether the cramp went on (the
	// pipeline ends it at the resumption).
	restored, held bool
}

// suppressKey names one recorded suppression. It is a struct rather than a
// joined string so that checking it on every envelope point allocates nothing.
type suppressKey struct {
	typ, reason string
	c           *cramp
}

// cramp is one cramp event as the policy saw it.
type cramp struct {
	ev         detect.Event
	id         string
	ep         *episode
	ended      bool
	alertAt    time.Time // when a buzzing message first covered it
	suppressed string    // why its own gentle alert was not sent
	diary      *DiaryEntry
}

func newPolicy(cfg Config) (*policy, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	loc, err := time.LoadLocation(cfg.TimeZone)
	if err != nil {
		return nil, fmt.Errorf("alerts: time zone: %w", err)
	}
	q, err := parseQuietHours(cfg.QuietHours)
	if err != nil {
		return nil, fmt.Errorf("alerts: %w", err)
	}
	return &policy{cfg: cfg, loc: loc, quiet: q, devs: make(map[string]*devState)}, nil
}

// device returns the device's state, creating it (and announcing the device
// to Home Assistant) on first sight. It returns nil for an invalid id.
func (p *policy) device(id string) *devState {
	if d, ok := p.devs[id]; ok {
		return d
	}
	if !wire.ValidDevice(id) {
		return nil
	}
	d := &devState{id: id, episodes: make(map[string]*episode), cramps: make(map[string]*cramp)}
	p.devs[id] = d
	if p.cfg.HADiscovery {
		p.announce(id)
	}
	return d
}

// announce queues the device's Home Assistant discovery config. No payload
// yet: the engine parks discovery apart from the wearer's messages and
// encodes the config when it publishes it, outside the engine's lock and
// only once it is due.
func (p *policy) announce(id string) {
	p.emitNote(Notification{
		Device:   id,
		Type:     TypeDiscovery,
		ID:       id + "/" + TypeDiscovery,
		Topic:    DiscoveryTopic(p.cfg.HADiscoveryPrefix, id),
		QoS:      1,
		Retained: true,
	})
}

// tick moves the device's clock to sample time t and runs escalation. It
// allocates nothing unless a message falls due.
func (p *policy) tick(id string, t time.Time) {
	d := p.device(id)
	if d == nil {
		return
	}
	p.advance(d, t)
}

// event applies one detected event.
func (p *policy) event(ev detect.Event) {
	d := p.device(ev.Device)
	if d == nil {
		return
	}
	if ev.Kind != detect.KindCramp {
		// Never an alert for plm, movement or artifact; their times still
		// move the clock.
		p.advance(d, ev.End)
		return
	}
	switch ev.State {
	case detect.StateOngoing:
		p.confirmed(d, ev)
	case detect.StateEnded:
		p.ended(d, ev)
	}
}

func (p *policy) confirmed(d *devState, ev detect.Event) {
	t := ev.ConfirmedAt
	if t.IsZero() {
		t = ev.End
	}
	// Let a running episode escalate up to now before this cramp joins it.
	p.advance(d, t)
	id := ev.ID()
	if _, dup := d.cramps[id]; dup {
		return // a repeated report of a cramp already handled
	}
	if ep := d.active; ep != nil && ep.held {
		// The previous run's episode was never ended: the pipeline ends a
		// carried cramp as soon as the stream resumes after a gap, so no
		// end means its state was lost. Retire it silently rather than let
		// it swallow this cramp's alert as concurrent.
		ep.ended, ep.open = true, 0
		d.active = nil
	}
	c := &cramp{ev: ev, id: id}
	p.remember(d, c)

	if ep := d.active; ep != nil {
		// Both legs (or two muscles) cramping together: one alert, which now
		// covers this cramp too; its escalation will name both.
		c.ep = ep
		ep.members = append(ep.members, c)
		ep.open++
		if ev.Onset.Before(ep.onset) {
			ep.onset = ev.Onset
		}
		if ep.sent {
			c.alertAt = t
		}
		c.suppressed = SuppressConcurrent
		p.recordSuppressed(d, ep, c, TypeAlert, SuppressConcurrent, t)
		return
	}

	ep := &episode{id: "al-" + id, primary: c, members: []*cramp{c}, open: 1, onset: ev.Onset}
	c.ep = ep
	d.active = ep
	d.episodes[ep.id] = ep
	d.epOrder = append(d.epOrder, ep.id)
	if len(d.epOrder) > maxEpisodeHistory {
		delete(d.episodes, d.epOrder[0])
		d.epOrder = d.epOrder[1:]
	}

	switch {
	case !d.lastEnd.IsZero() && t.Sub(d.lastEnd) < p.cfg.Cooldown:
		c.suppressed = SuppressCooldown
		p.recordSuppressed(d, ep, c, TypeAlert, SuppressCooldown, t)
	case !p.capAllows(d, t):
		c.suppressed = SuppressHourlyCap
		p.recordSuppressed(d, ep, c, TypeAlert, SuppressHourlyCap, t)
	default:
		p.sendAlert(d, ep, TypeAlert, t)
	}
	// A slow confirmation may already be past the escalation time.
	p.advance(d, t)
}

func (p *policy) ended(d *devState, ev detect.Event) {
	// The end moves the clock but does not run escalation: the cramp is over.
	if ev.End.After(d.now) {
		d.now = ev.End
	}
	id := ev.ID()
	c, ok := d.cramps[id]
	if !ok {
		// Ended without ever being confirmed (the service started mid-cramp,
		// or the detector confirmed and ended it at once): too late to alert,
		// but it counts for the diary and the night summary.
		p.remember(d, &cramp{ev: ev, id: id, ended: true})
		return
	}
	if c.ended {
		return
	}
	c.ev, c.ended = ev, true
	ep := c.ep
	if ep == nil || ep.ended {
		return
	}
	ep.open--
	if ev.End.After(ep.end) {
		ep.end = ev.End
	}
	if ep.open > 0 {
		return
	}
	ep.ended = true
	if d.active == ep {
		d.active = nil
	}
	if !ep.sent {
		return // the wearer never heard of it; an "ended" would only puzzle them
	}
	d.lastEnd = ep.end
	p.sendAlert(d, ep, TypeEnded, ep.end)
}

// advance moves the clock to t and sends whatever escalation is due.
func (p *policy) advance(d *devState, t time.Time) {
	if !d.restoredAt.IsZero() && t.After(d.restoredAt) {
		p.resumed(d, t)
	}
	if t.After(d.now) {
		d.now = t
	}
	ep := d.active
	if ep == nil || ep.stopped || ep.tensDone || ep.held {
		return
	}
	now := d.now
	elapsed := now.Sub(ep.onset)
	if elapsed < p.cfg.EscalateAfter || now.Before(ep.snoozeUntil) {
		return
	}
	if !ep.escalated {
		if !p.mayEscalate(d, ep, TypeEscalation, now, elapsed) {
			return
		}
		p.sendAlert(d, ep, TypeEscalation, now)
		ep.escalated = true
	}
	if elapsed < p.cfg.TENSAfter {
		return
	}
	if !p.cfg.TENS.Enabled() {
		// Never a prompt without a clinician's preset.
		ep.tensDone = true
		p.recordSuppressed(d, ep, ep.primary, TypeTENSPrompt, SuppressNoPreset, now)
		return
	}
	if !p.mayEscalate(d, ep, TypeTENSPrompt, now, elapsed) {
		return
	}
	ep.tensDone = true
	p.sendTENS(d, ep, now)
}

// mayEscalate checks quiet hours and the hourly cap for a stronger message,
// recording (once) what holds it back.
func (p *policy) mayEscalate(d *devState, ep *episode, typ string, now time.Time, elapsed time.Duration) bool {
	if p.quiet.contains(now.In(p.loc)) && elapsed < p.cfg.QuietOverride {
		p.recordSuppressed(d, ep, ep.primary, typ, SuppressQuietHours, now)
		return false
	}
	if !p.capAllows(d, now) {
		p.recordSuppressed(d, ep, ep.primary, typ, SuppressHourlyCap, now)
		return false
	}
	return true
}

// capAllows reports whether one more buzzing message fits in the rolling hour.
func (p *policy) capAllows(d *devState, t time.Time) bool {
	from := t.Add(-time.Hour)
	i := 0
	for i < len(d.buzzes) && !d.buzzes[i].After(from) {
		i++
	}
	if i > 0 {
		d.buzzes = append(d.buzzes[:0], d.buzzes[i:]...)
	}
	return len(d.buzzes) < p.cfg.MaxPerHour
}

// buzzed books a buzzing message for the cap and the episode.
func (p *policy) buzzed(d *devState, ep *episode, t time.Time) {
	d.buzzes = append(d.buzzes, t)
	if !ep.sent {
		ep.sent, ep.firstMsg = true, t
	}
	for _, c := range ep.members {
		if c.alertAt.IsZero() {
			c.alertAt = t
		}
	}
}

// sendAlert emits an alert, escalation or ended message and its record.
func (p *policy) sendAlert(d *devState, ep *episode, typ string, t time.Time) {
	c := ep.primary
	ch := c.ev.Channel
	msg := AlertMessage{
		Type:     typ,
		ID:       ep.id,
		Device:   d.id,
		EventID:  c.id,
		Muscle:   ch.Muscle.String(),
		Side:     ch.Side.String(),
		Hint:     Hint(ch.Muscle),
		Onset:    wireTime(ep.onset),
		Time:     wireTime(t),
		LatencyS: seconds(t.Sub(ep.onset)),
	}
	rec := AlertRecord{
		Device: d.id, Type: typ, Outcome: OutcomeSent, AlertID: ep.id, EventID: c.id,
		Channel: ch, Onset: ep.onset, Time: t, LatencyS: msg.LatencyS,
	}
	switch typ {
	case TypeAlert:
		msg.Level, msg.Advice = LevelGentle, Advice
		p.buzzed(d, ep, t)
	case TypeEscalation:
		msg.Level, msg.Advice = LevelStrong, Advice
		msg.Cramps = crampRefs(ep)
		p.buzzed(d, ep, t)
	case TypeEnded:
		msg.Level = LevelInfo
		msg.Cramps = crampRefs(ep)
		msg.DurationS = seconds(ep.end.Sub(ep.onset))
		acked := ep.ackAction != ""
		msg.Acked = &acked
		rec.DurationS, rec.Acked = msg.DurationS, acked
	}
	p.emitNote(Notification{
		Device: d.id, Type: typ, ID: ep.id + "/" + typ, AlertID: ep.id,
		Topic: wire.Topic(p.cfg.Prefix, d.id, wire.StreamAlert), QoS: 1,
		Payload: mustJSON(msg),
	})
	p.out = append(p.out, effect{kind: effAlert, alert: rec})
}

// sendTENS emits the TENS prompt, if and only if the configured preset is
// within its own bounds (Validate guarantees it; this is the last guard).
func (p *policy) sendTENS(d *devState, ep *episode, t time.Time) {
	tc := p.cfg.TENS
	start := tc.start()
	if !tc.Enabled() || tc.validate() != nil || start < tc.MinMA || start > tc.MaxMA {
		p.recordSuppressed(d, ep, ep.primary, TypeTENSPrompt, SuppressOutOfBound, t)
		return
	}
	c := ep.primary
	ch := c.ev.Channel
	msg := TENSPrompt{
		Type: TypeTENSPrompt, Level: LevelStrong, ID: ep.id, Device: d.id, EventID: c.id,
		Muscle: ch.Muscle.String(), Side: ch.Side.String(),
		Onset: wireTime(ep.onset), Time: wireTime(t), LatencyS: seconds(t.Sub(ep.onset)),
		Preset: tc.Preset, MinMA: tc.MinMA, MaxMA: tc.MaxMA, StartMA: start,
		MaxDurationS: tc.MaxDuration.Seconds(),
		Text: fmt.Sprintf("The cramp has lasted %d s. If you wish, start your TENS unit with preset %q at %g mA (allowed %g-%g mA). "+
			"Only you can start it.", int(t.Sub(ep.onset).Seconds()), tc.Preset, start, tc.MinMA, tc.MaxMA),
		Answers: []string{ActionTENSStarted, ActionTENSDeclined},
	}
	p.buzzed(d, ep, t)
	ep.tensSent = true
	p.emitNote(Notification{
		Device: d.id, Type: TypeTENSPrompt, ID: ep.id + "/" + TypeTENSPrompt, AlertID: ep.id,
		Topic: wire.Topic(p.cfg.Prefix, d.id, wire.StreamTENS), QoS: 1,
		Payload: mustJSON(msg),
	})
	p.out = append(p.out, effect{kind: effAlert, alert: AlertRecord{
		Device: d.id, Type: TypeTENSPrompt, Outcome: OutcomeSent, AlertID: ep.id, EventID: c.id,
		Channel: ch, Onset: ep.onset, Time: t, LatencyS: msg.LatencyS, TENS: tc,
	}})
}

func (p *policy) recordSuppressed(d *devState, ep *episode, c *cramp, typ, reason string, t time.Time) {
	key := suppressKey{typ, reason, c}
	if ep.noted[key] {
		return
	}
	if ep.noted == nil {
		ep.noted = make(map[suppressKey]bool)
	}
	ep.noted[key] = true
	p.out = append(p.out, effect{kind: effAlert, alert: AlertRecord{
		Device: d.id, Type: typ, Outcome: OutcomeSuppressed, Reason: reason, AlertID: ep.id, EventID: c.id,
		Channel: c.ev.Channel, Onset: c.ev.Onset, Time: t, LatencyS: seconds(t.Sub(c.ev.Onset)),
	}})
}

func (p *policy) emitNote(n Notification) {
	p.out = append(p.out, effect{kind: effNote, note: n})
}

// remember adds a cramp to the bounded history.
func (p *policy) remember(d *devState, c *cramp) {
	d.cramps[c.id] = c
	d.crampOrder = append(d.crampOrder, c)
	if len(d.crampOrder) > maxCrampHistory {
		delete(d.cramps, d.crampOrder[0].id)
		d.crampOrder[0] = nil
		d.crampOrder = d.crampOrder[1:]
	}
}

// ack applies an acknowledgement at the device's current sample time.
func (p *policy) ack(device string, a Ack) error {
	d := p.devs[device]
	if d == nil {
		// Kept apart from unknown_id: with several instances behind a
		// broker, acks of devices another instance owns land here too.
		return reject(ReasonUnknownDevice, "device %s has sent nothing to this engine", device)
	}
	ep := d.episodes[a.ID]
	if ep == nil || !ep.sent {
		// An id the wearer cannot have seen: never sent, another device's,
		// or too old to remember.
		return reject(ReasonUnknownID, "no alert %q was sent to device %s", clip(a.ID), device)
	}
	at := d.now
	if at.Before(ep.firstMsg) {
		at = ep.firstMsg
	}
	switch a.Action {
	case ActionSnooze:
		if !ep.stopped {
			ep.snoozeUntil = at.Add(p.cfg.SnoozeFor)
		}
	default:
		ep.stopped = true
	}
	if ep.ackAction == "" {
		ep.ackAt = at
	}
	ep.ackAction = a.Action
	ch := ep.primary.ev.Channel
	p.out = append(p.out, effect{kind: effAck, ack: AckRecord{
		Device: device, AlertID: ep.id, EventID: ep.primary.id, Action: a.Action, Channel: ch,
		Onset: ep.onset, Time: at, LatencyS: seconds(at.Sub(ep.onset)), SinceAlertS: seconds(at.Sub(ep.firstMsg)),
	}})
	return nil
}

// night names the night t belongs to: the date of the evening it began.
func (p *policy) night(t time.Time) string {
	l := t.In(p.loc)
	if l.Hour() < p.cfg.NightStartHour {
		l = l.AddDate(0, 0, -1)
	}
	return l.Format(time.DateOnly)
}

// diary links a diary entry to a cramp and records it. at is the entry's
// time: its t, or when it was received.
func (p *policy) diary(device string, e DiaryEntry, at time.Time) error {
	d := p.devs[device]
	rec := DiaryRecord{Device: device, Time: at, Night: p.night(at), Entry: e}
	var c *cramp
	switch {
	case e.ID != "":
		if d != nil {
			if ep := d.episodes[e.ID]; ep != nil {
				c = ep.primary
			}
		}
		if c == nil {
			return reject(ReasonUnknownID, "diary names alert %q, which device %s does not have", clip(e.ID), device)
		}
	case e.EventID != "":
		if d != nil {
			c = d.cramps[e.EventID]
		}
		if c == nil {
			return reject(ReasonUnknownID, "diary names event %q, which device %s does not have", clip(e.EventID), device)
		}
	case d != nil:
		c = p.nearest(d, at, rec.Night)
	}
	if c != nil {
		rec.Linked = true
		rec.AlertID = ""
		if c.ep != nil {
			rec.AlertID = c.ep.id
		}
		rec.EventID, rec.Channel, rec.Onset = c.id, c.ev.Channel, c.ev.Onset
		rec.OffsetS = seconds(at.Sub(c.ev.Onset))
		entry := e
		// One diary entry speaks for the whole episode: when both legs
		// cramped together the wearer treated them together.
		if c.ep != nil {
			for _, m := range c.ep.members {
				m.diary = &entry
			}
		} else {
			c.diary = &entry
		}
	}
	p.out = append(p.out, effect{kind: effDiary, diary: rec})
	return nil
}

// nearest returns the cramp of the given night whose onset is closest to t.
func (p *policy) nearest(d *devState, t time.Time, night string) *cramp {
	var best *cramp
	var bestGap time.Duration
	for _, c := range d.crampOrder {
		if p.night(c.ev.Onset) != night {
			continue
		}
		gap := t.Sub(c.ev.Onset)
		if gap < 0 {
			gap = -gap
		}
		if best == nil || gap < bestGap {
			best, bestGap = c, gap
		}
	}
	return best
}

func crampRefs(ep *episode) []CrampRef {
	refs := make([]CrampRef, len(ep.members))
	for i, c := range ep.members {
		refs[i] = CrampRef{EventID: c.id, Muscle: c.ev.Channel.Muscle.String(), Side: c.ev.Channel.Side.String(), Hint: Hint(c.ev.Channel.Muscle)}
	}
	return refs
}

// wireTime is t as messages carry it: UTC, at the microsecond precision of
// the wire contract's sample times.
func wireTime(t time.Time) time.Time { return t.UTC().Round(time.Microsecond) }

// seconds is d in seconds, rounded to the millisecond so that messages and
// records do not carry float noise such as 120.099999999.
func seconds(d time.Duration) float64 { return math.Round(d.Seconds()*1000) / 1000 }

// mustJSON marshals the package's own message types. They hold no maps,
// channels or non-finite numbers (Validate rejects NaN bounds), so it cannot
// fail; if it ever did, the nil payload makes the engine log and skip the
// message rather than send something malformed.
func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	return b
}

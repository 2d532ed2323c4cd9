package alerts

// Alert state across service restarts.
//
// The policy's state is what makes the wearer's night coherent: the alert
// ids an acknowledgement may name, the escalation stage of the cramp going
// on, the messages of the last hour the cap counts and the end of the last
// alerted episode the cooldown runs from. SaveState writes it per device to
// a versioned JSON file (atomically, fsynced); LoadState reads it back into
// a fresh engine before the first event, so after an upgrade at 3 a.m.:
//
//   - an ack for an alert issued before the restart is accepted and stops
//     its escalation;
//   - the episode that was going on stays the active one: it escalates when
//     due on the resumed stream's sample clock, a new report of the same
//     cramp joins it as concurrent instead of alerting again, and the
//     pipeline's "ended" report of the carried cramp (same event id) ends
//     it with an "ended" message for the original alert id;
//   - the cooldown and the hourly cap go on counting.
//
// Only what the policy needs is kept: the active episode and the episodes
// and cramps that ended within stateKeep (the cap window) of the device's
// clock; older history (relief analytics, diary linking of older cramps)
// lives in the recorder's store, not here. As with the detector state, a
// file that is unreadable, malformed, of another version or inconsistent is
// logged and counted and its device starts afresh; it never stops a start.
//
// LoadState consumes the active episodes like pipeline.LoadState consumes
// the open cramps: it rewrites those files with the episode marked ended,
// so that if this run crashes before its SaveState, the next run, whose
// pipeline will not end the cramp again, does not hold an episode open
// forever.

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/crampwatch/crampwatch/detect"
	"github.com/crampwatch/crampwatch/internal/statedir"
	"github.com/crampwatch/crampwatch/wire"
)

// stateVersion is bumped when the file layout changes; a file of another
// version is ignored (the device starts afresh), never misread.
const stateVersion = 1

// stateKeep is how much history before the device's clock is saved: the
// hourly cap's window. Acks for alerts that ended longer ago are rejected
// after a restart as unknown ids.
const stateKeep = time.Hour

// resumeGap is the largest jump of sample time between the saved clock and
// the resumed stream for which the saved active episode may still escalate.
// It is the detector's default GapMinS: over a longer gap the pipeline ends
// the carried cramp at the resumption, so the cramp may be over.
const resumeGap = time.Second

// maxStateBytes bounds a state file read back; a bigger one is rejected. A
// full file (cap window of episodes of a bad night) is a few tens of kB.
const maxStateBytes = 4 << 20

// deviceFile is one device's alert state file. Times are Unix microseconds
// of sample time (0: none), the precision of the wire contract.
type deviceFile struct {
	Version int       `json:"version"`
	Device  string    `json:"device"`
	SavedAt time.Time `json:"saved_at"` // wall clock, for people reading the file
	NowUS   int64     `json:"now_us"`   // the device's sample clock
	// LastEndUS is the end of the last episode the wearer was told of.
	LastEndUS int64   `json:"last_end_us,omitempty"`
	BuzzesUS  []int64 `json:"buzzes_us,omitempty"`
	// Active is the id of the episode being alerted on; empty: none.
	Active   string         `json:"active,omitempty"`
	Episodes []episodeState `json:"episodes,omitempty"`
	// Cramps are the kept cramps that belong to no episode (ended before
	// they were confirmed), for linking diary entries.
	Cramps []crampState `json:"cramps,omitempty"`
}

type episodeState struct {
	ID            string       `json:"id"`
	OnsetUS       int64        `json:"onset_us"`
	FirstMsgUS    int64        `json:"first_msg_us,omitempty"`
	Sent          bool         `json:"sent,omitempty"`
	Escalated     bool         `json:"escalated,omitempty"`
	TENSDone      bool         `json:"tens_done,omitempty"`
	TENSSent      bool         `json:"tens_sent,omitempty"`
	Stopped       bool         `json:"stopped,omitempty"`
	SnoozeUntilUS int64        `json:"snooze_until_us,omitempty"`
	AckAction     string       `json:"ack_action,omitempty"`
	AckAtUS       int64        `json:"ack_at_us,omitempty"`
	Ended         bool         `json:"ended,omitempty"`
	EndUS         int64        `json:"end_us,omitempty"`
	Members       []crampState `json:"members"` // the primary cramp first
	Noted         []notedState `json:"noted,omitempty"`
	Diary         *DiaryEntry  `json:"diary,omitempty"`
}

type crampState struct {
	Channel     string  `json:"channel"`
	OnsetUS     int64   `json:"onset_us"`
	ConfirmedUS int64   `json:"confirmed_us,omitempty"`
	EndUS       int64   `json:"end_us,omitempty"`
	DurationS   float64 `json:"duration_s,omitempty"`
	PeakUV      float64 `json:"peak_uv,omitempty"`
	MeanUV      float64 `json:"mean_uv,omitempty"`
	MedianHz    float64 `json:"median_hz,omitempty"`
	Confidence  float64 `json:"confidence,omitempty"`
	Ended       bool    `json:"ended,omitempty"`
	AlertAtUS   int64   `json:"alert_at_us,omitempty"`
	Suppressed  string  `json:"suppressed,omitempty"`
	// Diary is the cramp's own diary entry (cramps without an episode).
	Diary *DiaryEntry `json:"diary,omitempty"`
}

// notedState is one suppression already recorded for an episode, so that a
// held-back escalation is not recorded again after the restart.
type notedState struct {
	Type    string `json:"type"`
	Reason  string `json:"reason"`
	EventID string `json:"event_id"`
}

func us(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

func fromUS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMicro(v).UTC()
}

// snapshot returns the device's state to save, or nil when nothing in it
// still matters (no active episode, nothing within stateKeep, cooldown over).
func (p *policy) snapshot(d *devState) *deviceFile {
	from := d.now.Add(-stateKeep)
	st := &deviceFile{Version: stateVersion, Device: d.id, NowUS: us(d.now)}
	if !d.lastEnd.IsZero() && d.now.Sub(d.lastEnd) < max(p.cfg.Cooldown, stateKeep) {
		st.LastEndUS = us(d.lastEnd)
	}
	for _, b := range d.buzzes {
		if b.After(from) {
			st.BuzzesUS = append(st.BuzzesUS, us(b))
		}
	}
	for _, id := range d.epOrder {
		ep := d.episodes[id]
		if ep == nil || (ep.ended && ep.end.Before(from)) {
			continue
		}
		st.Episodes = append(st.Episodes, episodeOf(ep))
		if ep == d.active {
			st.Active = ep.id
		}
	}
	for _, c := range d.crampOrder {
		if c.ep == nil && c.ended && !c.ev.End.Before(from) {
			st.Cramps = append(st.Cramps, crampOf(c))
		}
	}
	if st.LastEndUS == 0 && len(st.BuzzesUS) == 0 && len(st.Episodes) == 0 && len(st.Cramps) == 0 {
		return nil
	}
	return st
}

func episodeOf(ep *episode) episodeState {
	es := episodeState{
		ID: ep.id, OnsetUS: us(ep.onset), FirstMsgUS: us(ep.firstMsg), Sent: ep.sent,
		Escalated: ep.escalated, TENSDone: ep.tensDone, TENSSent: ep.tensSent, Stopped: ep.stopped,
		SnoozeUntilUS: us(ep.snoozeUntil), AckAction: ep.ackAction, AckAtUS: us(ep.ackAt),
		Ended: ep.ended, EndUS: us(ep.end),
	}
	for _, c := range ep.members {
		es.Members = append(es.Members, crampOf(c))
		if c.diary != nil {
			es.Diary = c.diary // one entry speaks for the whole episode
		}
	}
	for k := range ep.noted {
		es.Noted = append(es.Noted, notedState{Type: k.typ, Reason: k.reason, EventID: k.c.id})
	}
	return es
}

func crampOf(c *cramp) crampState {
	ev := c.ev
	cs := crampState{
		Channel: ev.Channel.String(), OnsetUS: us(ev.Onset), ConfirmedUS: us(ev.ConfirmedAt), EndUS: us(ev.End),
		DurationS: ev.DurationS, PeakUV: ev.PeakUV, MeanUV: ev.MeanUV, MedianHz: ev.MedianFreqHz,
		Confidence: ev.Confidence, Ended: c.ended, AlertAtUS: us(c.alertAt), Suppressed: c.suppressed,
	}
	if c.ep == nil {
		cs.Diary = c.diary
	}
	return cs
}

// restore rebuilds a device's state from its file. It checks everything it
// relies on and changes nothing on error. The device must be new to p.
func (p *policy) restore(st *deviceFile) error {
	if st.NowUS <= 0 {
		return errors.New("no sample clock")
	}
	if len(st.Episodes) > maxEpisodeHistory || len(st.Cramps) > maxCrampHistory || len(st.BuzzesUS) > maxCrampHistory {
		return errors.New("more history than an engine keeps")
	}
	now := fromUS(st.NowUS)
	d := &devState{id: st.Device, now: now, restoredAt: now, lastEnd: fromUS(st.LastEndUS),
		episodes: make(map[string]*episode), cramps: make(map[string]*cramp)}
	prev := int64(0)
	for _, b := range st.BuzzesUS {
		if b <= 0 || b < prev || b > st.NowUS {
			return errors.New("buzz times out of order")
		}
		prev = b
		d.buzzes = append(d.buzzes, fromUS(b))
	}
	add := func(cs crampState, ep *episode) (*cramp, error) {
		c, err := cs.cramp(st.Device)
		if err != nil {
			return nil, err
		}
		if _, dup := d.cramps[c.id]; dup {
			return nil, fmt.Errorf("cramp %s twice", c.id)
		}
		if len(d.crampOrder) >= maxCrampHistory {
			return nil, errors.New("more cramps than an engine keeps")
		}
		c.ep = ep
		d.cramps[c.id] = c
		d.crampOrder = append(d.crampOrder, c)
		return c, nil
	}
	for _, es := range st.Episodes {
		if len(es.Members) == 0 {
			return fmt.Errorf("episode %q has no cramps", clip(es.ID))
		}
		if _, dup := d.episodes[es.ID]; dup {
			return fmt.Errorf("episode %q twice", clip(es.ID))
		}
		if es.Ended == (es.ID == st.Active) {
			return fmt.Errorf("episode %q: only the active episode is open", clip(es.ID))
		}
		if es.AckAction != "" && !validAction(es.AckAction) {
			return fmt.Errorf("episode %q: action %q", clip(es.ID), clip(es.AckAction))
		}
		ep := &episode{
			id: es.ID, onset: fromUS(es.OnsetUS), firstMsg: fromUS(es.FirstMsgUS), sent: es.Sent,
			escalated: es.Escalated, tensDone: es.TENSDone, tensSent: es.TENSSent, stopped: es.Stopped,
			snoozeUntil: fromUS(es.SnoozeUntilUS), ackAction: es.AckAction, ackAt: fromUS(es.AckAtUS),
			ended: es.Ended, end: fromUS(es.EndUS), restored: !es.Ended,
		}
		if es.OnsetUS <= 0 || (es.Sent && es.FirstMsgUS < es.OnsetUS) {
			return fmt.Errorf("episode %q: times out of order", clip(es.ID))
		}
		for _, cs := range es.Members {
			c, err := add(cs, ep)
			if err != nil {
				return fmt.Errorf("episode %q: %w", clip(es.ID), err)
			}
			if es.Diary != nil {
				entry := *es.Diary
				c.diary = &entry
			}
			ep.members = append(ep.members, c)
			if !c.ended && !ep.ended {
				ep.open++
			}
		}
		ep.primary = ep.members[0]
		if ep.id != "al-"+ep.primary.id {
			return fmt.Errorf("episode %q does not name its first cramp", clip(es.ID))
		}
		if !ep.ended && ep.open == 0 {
			return fmt.Errorf("episode %q is open with every cramp ended", clip(es.ID))
		}
		for _, n := range es.Noted {
			c := d.cramps[n.EventID]
			if c == nil || c.ep != ep {
				return fmt.Errorf("episode %q: suppression of another cramp", clip(es.ID))
			}
			if ep.noted == nil {
				ep.noted = make(map[suppressKey]bool)
			}
			ep.noted[suppressKey{n.Type, n.Reason, c}] = true
		}
		d.episodes[ep.id] = ep
		d.epOrder = append(d.epOrder, ep.id)
		if !ep.ended {
			d.active = ep
		}
	}
	if st.Active != "" && d.active == nil {
		return fmt.Errorf("active episode %q is missing", clip(st.Active))
	}
	for _, cs := range st.Cramps {
		c, err := add(cs, nil)
		if err != nil {
			return err
		}
		c.diary = cs.Diary
	}
	p.devs[st.Device] = d
	if p.cfg.HADiscovery {
		p.announce(st.Device)
	}
	return nil
}

// cramp rebuilds a cramp; its event is the one the policy last saw.
func (cs crampState) cramp(device string) (*cramp, error) {
	ch, err := wire.ParseChannel(cs.Channel)
	if err != nil {
		return nil, err
	}
	for _, v := range []float64{cs.DurationS, cs.PeakUV, cs.MeanUV, cs.MedianHz, cs.Confidence} {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, errors.New("non-finite value")
		}
	}
	if cs.OnsetUS <= 0 || (cs.EndUS != 0 && cs.EndUS < cs.OnsetUS) || (cs.ConfirmedUS != 0 && cs.ConfirmedUS < cs.OnsetUS) {
		return nil, errors.New("cramp times out of order")
	}
	switch cs.Suppressed {
	case "", SuppressCooldown, SuppressHourlyCap, SuppressConcurrent:
	default:
		return nil, fmt.Errorf("suppression %q", clip(cs.Suppressed))
	}
	state := detect.StateOngoing
	if cs.Ended {
		state = detect.StateEnded
	}
	ev := detect.Event{
		Device: device, Kind: detect.KindCramp, State: state, Channel: ch,
		Onset: fromUS(cs.OnsetUS), End: fromUS(cs.EndUS), ConfirmedAt: fromUS(cs.ConfirmedUS),
		DurationS: cs.DurationS, PeakUV: cs.PeakUV, MeanUV: cs.MeanUV, MedianFreqHz: cs.MedianHz, Confidence: cs.Confidence,
	}
	return &cramp{ev: ev, id: ev.ID(), ended: cs.Ended, alertAt: fromUS(cs.AlertAtUS), suppressed: cs.Suppressed}, nil
}

// resumed is called at the device's first sample after its state was
// restored. A saved active episode goes on escalating only if the stream
// went on without a gap; otherwise it waits for the pipeline to end it.
func (p *policy) resumed(d *devState, t time.Time) {
	if ep := d.active; ep != nil && ep.restored && t.Sub(d.restoredAt) > resumeGap {
		ep.held = true
	}
	d.restoredAt = time.Time{}
}

// consumed returns st with its active episode marked ended, for the file
// LoadState leaves behind; nil when there is no active episode.
func consumed(st *deviceFile) *deviceFile {
	if st.Active == "" {
		return nil
	}
	out := *st
	out.Active = ""
	out.Episodes = append([]episodeState(nil), st.Episodes...)
	for i := range out.Episodes {
		if es := &out.Episodes[i]; es.ID == st.Active {
			es.Ended = true
			es.EndUS = max(es.EndUS, st.NowUS)
		}
	}
	return &out
}

// SaveState writes the alert state of every device that has any worth
// keeping to dir, one file per device (created with mode 0700: it describes
// health data), and removes the files of devices that have none left. Call
// it after the last event and ack of this run (after the pipeline drained),
// before or after Close. It returns the number of files written.
func (e *Engine) SaveState(dir string) (int, error) {
	if err := statedir.Create(dir); err != nil {
		return 0, fmt.Errorf("alerts: state: %w", err)
	}
	saved := e.now().UTC()
	e.mu.Lock()
	var states []*deviceFile
	var empty []string
	for id, d := range e.pol.devs {
		if st := e.pol.snapshot(d); st != nil {
			st.SavedAt = saved
			states = append(states, st)
		} else {
			empty = append(empty, id)
		}
	}
	e.mu.Unlock()

	var errs []error
	n := 0
	for _, st := range states {
		if err := writeDeviceFile(dir, st); err != nil {
			errs = append(errs, err)
			continue
		}
		n++
	}
	for _, id := range empty {
		if err := statedir.Remove(dir, id); err != nil {
			errs = append(errs, err)
		}
	}
	if err := statedir.Sync(dir); err != nil {
		errs = append(errs, err)
	}
	e.m.state.WithLabelValues("saved").Add(float64(n))
	if err := errors.Join(errs...); err != nil {
		return n, fmt.Errorf("alerts: save state: %w", err)
	}
	return n, nil
}

// LoadState reads the files SaveState left in dir into the engine. Call it
// after NewEngine and before the first event or ack. A missing dir is not an
// error (first start). A file that cannot be used is logged, counted
// (crampwatch_alert_state_devices_total{result="rejected"}) and skipped: its
// device starts afresh. It returns the number of devices restored.
func (e *Engine) LoadState(dir string) (int, error) {
	devices, err := statedir.Devices(dir)
	if err != nil {
		return 0, fmt.Errorf("alerts: state: %w", err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return 0, errors.New("alerts: state: engine is closed")
	}
	n := 0
	for _, device := range devices {
		path := statedir.Path(dir, device)
		st, err := readDeviceFile(dir, device)
		if err == nil {
			if _, live := e.pol.devs[device]; live {
				err = errors.New("device already has live state")
			} else {
				err = e.pol.restore(st)
			}
		}
		if err != nil {
			e.m.state.WithLabelValues("rejected").Inc()
			e.log.Warn("alert state file not used; device starts afresh", "file", path, "err", err)
			continue
		}
		if c := consumed(st); c != nil {
			if err := writeDeviceFile(dir, c); err != nil {
				return n, fmt.Errorf("alerts: state: %w", err)
			}
		}
		e.m.state.WithLabelValues("loaded").Inc()
		n++
	}
	e.flush() // Home Assistant discovery of the restored devices
	return n, nil
}

func readDeviceFile(dir, device string) (*deviceFile, error) {
	b, err := statedir.Read(dir, device, maxStateBytes)
	if err != nil {
		return nil, err
	}
	var v struct {
		Version int `json:"version"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("malformed: %w", err)
	}
	if v.Version != stateVersion {
		return nil, fmt.Errorf("version %d, this build reads %d", v.Version, stateVersion)
	}
	var st deviceFile
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("malformed: %w", err)
	}
	if st.Device != device {
		return nil, fmt.Errorf("file of device %q", clip(st.Device))
	}
	return &st, nil
}

// writeDeviceFile replaces the device's file atomically.
func writeDeviceFile(dir string, st *deviceFile) error {
	b, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("state of %s: %w", st.Device, err)
	}
	return statedir.Write(dir, st.Device, b)
}

package pipeline

// Detector state across service restarts.
//
// A restart (deploy, crash recovery, SIGTERM from the orchestrator) must not
// cost the wearer anything: the persistent MQTT session redelivers the
// frames published meanwhile, and this file carries over what the detector
// learnt. SaveState writes, per device, the detector's Snapshot (resting
// baselines and mains frequency), the end of the last EMG and IMU frames it
// was fed, and the cramps it reported as ongoing and had not ended yet.
// LoadState reads them back; a device's state is applied when its stream
// resumes:
//
//   - frames that end before the saved ends were processed before the
//     restart (a QoS 1 redelivery of a frame whose acknowledgement was lost)
//     and are skipped;
//   - the baselines are restored when the stream resumes within StateMaxGap
//     of sample time, so the detector needs no warm-up;
//   - an open cramp is carried over. The new detector starts idle, so if the
//     cramp goes on it detects it again, with an onset at the resumption; the
//     pipeline recognises that continuation (same channel, onset within
//     carryOnsetSlack of the resumption), suppresses its "ongoing" report
//     (the wearer was alerted already) and gives its "ended" report the
//     original onset, so both reports keep the event's ID and the ended
//     point overwrites the ongoing one in InfluxDB. If no continuation is
//     confirmed, the carried cramp is ended where the channel's envelope
//     last stood above the detector's release threshold.
//
// A cramp that was only a candidate (not yet confirmed) at the restart is
// detected afresh, with its onset at the resumption. LoadState rewrites the
// files without their open cramps, so a crash before the next SaveState
// cannot end a cramp twice.

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

// StateMaxGap is the longest stretch of sample time between the saved state
// and the resumed stream over which baselines are restored: a night's rest
// is comparable within a night, not from one night to the next (electrodes
// are placed anew).
const StateMaxGap = 12 * time.Hour

// stateVersion is bumped when the file layout changes.
const stateVersion = 1

// carryOnsetSlack is how far after the resumption the new detector's onset
// of a continuing cramp may lie: the band-pass and envelope need a few
// blocks to settle.
const carryOnsetSlack = 2 * time.Second

// deviceState is one device's state file.
type deviceState struct {
	Version int       `json:"version"`
	Device  string    `json:"device"`
	SavedAt time.Time `json:"saved_at"`
	// EMGEnd and IMUEnd are the ends (Unix µs) of the last frames fed.
	EMGEnd   int64           `json:"emg_end"`
	IMUEnd   int64           `json:"imu_end"`
	Detector json.RawMessage `json:"detector,omitempty"`
	Open     []openCramp     `json:"open,omitempty"`
}

// openCramp is a cramp reported ongoing and not ended at the save.
type openCramp struct {
	Channel     string  `json:"channel"`
	OnsetUS     int64   `json:"onset_us"`
	ConfirmedUS int64   `json:"confirmed_us"`
	LastUS      int64   `json:"last_us"` // latest time it was known active
	PeakUV      float64 `json:"peak_uv"`
	MeanUV      float64 `json:"mean_uv"`
	MedianHz    float64 `json:"median_hz"`
	Confidence  float64 `json:"confidence"`
}

func openOf(e detect.Event, last int64) openCramp {
	return openCramp{
		Channel: e.Channel.String(), OnsetUS: e.Onset.UnixMicro(), ConfirmedUS: e.ConfirmedAt.UnixMicro(),
		LastUS: max(last, e.End.UnixMicro()), PeakUV: e.PeakUV, MeanUV: e.MeanUV, MedianHz: e.MedianFreqHz,
		Confidence: e.Confidence,
	}
}

func (o openCramp) event(device string) (detect.Event, error) {
	ch, err := wire.ParseChannel(o.Channel)
	if err != nil {
		return detect.Event{}, err
	}
	for _, v := range []float64{o.PeakUV, o.MeanUV, o.MedianHz, o.Confidence} {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return detect.Event{}, errors.New("non-finite value")
		}
	}
	if o.OnsetUS <= 0 || o.LastUS < o.OnsetUS || o.ConfirmedUS < o.OnsetUS {
		return detect.Event{}, errors.New("times out of order")
	}
	return detect.Event{
		Device: device, Kind: detect.KindCramp, State: detect.StateOngoing, Channel: ch,
		Onset: time.UnixMicro(o.OnsetUS), End: time.UnixMicro(o.ConfirmedUS), ConfirmedAt: time.UnixMicro(o.ConfirmedUS),
		DurationS: float64(o.ConfirmedUS-o.OnsetUS) / 1e6, PeakUV: o.PeakUV, MeanUV: o.MeanUV,
		MedianFreqHz: o.MedianHz, Confidence: o.Confidence,
	}, nil
}

// LoadState reads the device states SaveState left in dir; each is applied
// when its device's stream resumes. Call it before the first frame. A
// missing dir is not an error (first start). Unreadable files are logged and
// skipped: a restart must not fail over a detector's baselines. It returns
// the number of devices read.
func (p *Pipeline) LoadState(dir string) (int, error) {
	devices, err := statedir.Devices(dir)
	if err != nil {
		return 0, fmt.Errorf("pipeline: state: %w", err)
	}
	n := 0
	for _, device := range devices {
		path := statedir.Path(dir, device)
		b, err := statedir.Read(dir, device, maxStateBytes)
		if err != nil {
			p.log.Warn("pipeline: state file unreadable; device starts afresh", "file", path, "err", err)
			continue
		}
		var st deviceState
		if err := json.Unmarshal(b, &st); err != nil || st.Version != stateVersion || st.Device != device {
			p.log.Warn("pipeline: state file malformed; device starts afresh", "file", path, "err", err)
			continue
		}
		if len(st.Open) > 0 {
			// Consumed: should this run crash before SaveState, the next
			// one must not end these cramps a second time.
			kept := st
			kept.Open = nil
			if err := writeState(dir, &kept); err != nil {
				return n, err
			}
		}
		p.mu.Lock()
		p.saved[device] = &st
		p.mu.Unlock()
		n++
	}
	return n, nil
}

// SaveState writes the state of every device that sent EMG or IMU frames to
// dir (created with mode 0700: it describes health data). Call it once ingest has drained and before Close;
// with EndStreams first, no cramp is left open. States loaded but not
// resumed in this run are written back unchanged.
func (p *Pipeline) SaveState(dir string) (int, error) {
	if err := statedir.Create(dir); err != nil {
		return 0, fmt.Errorf("pipeline: state: %w", err)
	}
	p.mu.Lock()
	states := make([]*deviceState, 0, len(p.devices)+len(p.saved))
	for _, st := range p.saved {
		states = append(states, st)
	}
	now := time.Now().UTC()
	var errs []error
	for id, d := range p.devices {
		if d.pending != nil {
			states = append(states, d.pending)
			continue
		}
		if d.emgEnd == 0 && d.imuEnd == 0 {
			continue // only status frames (a retained one, say): nothing learnt
		}
		snap, err := d.det.Snapshot()
		if err != nil {
			errs = append(errs, fmt.Errorf("device %s: %w", id, err))
			continue
		}
		st := &deviceState{Version: stateVersion, Device: id, SavedAt: now, EMGEnd: d.emgEnd, IMUEnd: d.imuEnd, Detector: snap}
		for _, e := range d.out.open {
			st.Open = append(st.Open, openOf(e, d.emgEnd))
		}
		for _, c := range d.out.carried {
			st.Open = append(st.Open, openOf(c.ev, c.lastAbove))
		}
		states = append(states, st)
	}
	p.mu.Unlock()
	n := 0
	for _, st := range states {
		if err := writeState(dir, st); err != nil {
			errs = append(errs, err)
			continue
		}
		n++
	}
	if err := statedir.Sync(dir); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return n, fmt.Errorf("pipeline: save state: %w", err)
	}
	return n, nil
}

// writeState replaces the device's file atomically.
func writeState(dir string, st *deviceState) error {
	b, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("state of %s: %w", st.Device, err)
	}
	return statedir.Write(dir, st.Device, b)
}

// maxStateBytes bounds a state file read at start (a device's detector
// state is a few KiB).
const maxStateBytes = 4 << 20

// resume applies a device's saved state at the first EMG frame that starts
// at or after the saved EMG end; t0 is that frame's start.
func (p *Pipeline) resume(id string, d *device, t0 int64) {
	st := d.pending
	d.pending = nil
	gap := time.Duration(t0-st.EMGEnd) * time.Microsecond
	if len(st.Detector) > 0 && gap <= StateMaxGap {
		if err := d.det.Restore(st.Detector); err != nil {
			p.log.Warn("pipeline: saved detector state not restored", "device", id, "err", err)
		} else if p.out.m != nil {
			p.out.m.restored.Inc()
		}
	}
	continuous := gap <= time.Duration(p.cfg.GapMinS*float64(time.Second))
	for _, o := range st.Open {
		ev, err := o.event(id)
		if err != nil {
			p.log.Warn("pipeline: saved open cramp dropped", "device", id, "err", err)
			continue
		}
		c := carry{ev: ev, lastAbove: o.LastUS}
		if !continuous {
			// Frames were lost while the service was away: the cramp
			// ends at its last known activity, as the detector ends a
			// cramp at a gap.
			d.out.endCarry(&c)
			continue
		}
		d.out.carried = append(d.out.carried, c)
	}
	d.out.resume = t0
}

// carry is an open cramp of the previous run waiting for the new detector
// to confirm its continuation, or for its end.
type carry struct {
	ev        detect.Event // the ongoing report of the previous run
	lastAbove int64        // µs: the last time it was known active
	belowS    float64      // seconds the envelope has been below release
	cont      time.Time    // onset the new detector gave the continuation; zero until found
}

// devOut is one device's detector Output. It passes everything to the
// sinks, keeps the cramps that are open (for SaveState), and joins carried
// cramps with their continuation.
type devOut struct {
	f       *fanout
	cfg     *detect.Config
	open    []detect.Event // cramps reported ongoing, not yet ended
	carried []carry
	resume  int64 // µs: sample time the stream resumed after a restore
}

func (o *devOut) Event(e detect.Event) {
	if e.Kind != detect.KindCramp {
		o.f.Event(e)
		return
	}
	for i := range o.carried {
		c := &o.carried[i]
		if c.ev.Channel != e.Channel {
			continue
		}
		switch {
		case e.State == detect.StateOngoing && c.cont.IsZero() &&
			e.Onset.UnixMicro() <= o.resume+carryOnsetSlack.Microseconds():
			// The cramp goes on: the wearer has had the alert.
			c.cont = e.Onset
			if o.f.m != nil {
				o.f.m.carried.WithLabelValues("continued").Inc()
			}
			return
		case e.State == detect.StateEnded && c.cont.Equal(e.Onset):
			o.f.Event(merge(c.ev, e))
			o.carried = append(o.carried[:i], o.carried[i+1:]...)
			return
		}
	}
	switch e.State {
	case detect.StateOngoing:
		o.open = append(o.open, e)
	case detect.StateEnded:
		for i := range o.open {
			if o.open[i].Channel == e.Channel && o.open[i].Onset.Equal(e.Onset) {
				o.open = append(o.open[:i], o.open[i+1:]...)
				break
			}
		}
	}
	o.f.Event(e)
}

// merge is the ended report of a cramp that began before the restart (prev)
// and was ended by the new detector (end).
func merge(prev, end detect.Event) detect.Event {
	out := end
	out.Onset = prev.Onset
	out.ConfirmedAt = prev.ConfirmedAt
	out.DurationS = end.End.Sub(prev.Onset).Seconds()
	out.PeakUV = math.Max(prev.PeakUV, end.PeakUV)
	// Weight the two means by the time each detector saw.
	a, b := prev.ConfirmedAt.Sub(prev.Onset).Seconds(), end.DurationS
	if a+b > 0 {
		out.MeanUV = (prev.MeanUV*a + end.MeanUV*b) / (a + b)
	}
	if out.MedianFreqHz == 0 {
		out.MedianFreqHz = prev.MedianFreqHz
	}
	out.Confidence = math.Max(prev.Confidence, end.Confidence)
	return out
}

func (o *devOut) Envelope(e detect.Envelope) {
	if len(o.carried) > 0 {
		o.watchCarried(e)
	}
	o.f.Envelope(e)
}

func (o *devOut) Motion(m detect.Motion) { o.f.Motion(m) }

// watchCarried follows the envelope of channels whose carried cramp has no
// continuation yet, and ends the cramp when the envelope has stayed below
// the release threshold for CrampReleaseS, or when the new detector has had
// time to confirm a continuation and has not.
func (o *devOut) watchCarried(e detect.Envelope) {
	cfg := o.cfg
	wait := secsUS(math.Max(cfg.WeakConfirmS, cfg.LMMaxS)) + carryOnsetSlack.Microseconds() + secsUS(2)
	t := e.Time.UnixMicro()
	for i := 0; i < len(o.carried); {
		c := &o.carried[i]
		if !c.cont.IsZero() {
			i++
			continue
		}
		if c.ev.Channel == e.Channel {
			B := e.BaselineUV
			if e.RMSUV > B+math.Max(cfg.ReleaseK*B, cfg.ReleaseMinUV) {
				c.lastAbove = max(c.lastAbove, t)
				c.belowS = 0
			} else {
				c.belowS += 1 / cfg.EnvelopeRate
			}
		}
		if c.belowS >= cfg.CrampReleaseS-1e-9 || t > o.resume+wait {
			o.endCarry(c)
			o.carried = append(o.carried[:i], o.carried[i+1:]...)
			continue
		}
		i++
	}
}

// endCarry reports a carried cramp as ended at its last known activity.
func (o *devOut) endCarry(c *carry) {
	e := c.ev
	e.State = detect.StateEnded
	e.End = time.UnixMicro(c.lastAbove)
	e.DurationS = e.End.Sub(e.Onset).Seconds()
	if o.f.m != nil {
		o.f.m.carried.WithLabelValues("ended").Inc()
	}
	o.f.Event(e)
}

// endCarried ends every carried cramp still open (end of a recording,
// after the detector has ended its own).
func (o *devOut) endCarried() {
	for i := range o.carried {
		o.endCarry(&o.carried[i])
	}
	o.carried = o.carried[:0]
}

func secsUS(s float64) int64 { return int64(s * 1e6) }

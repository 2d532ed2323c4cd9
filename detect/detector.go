package detect

import (
	"math"
	"slices"
	"time"

	"github.com/crampwatch/crampwatch/wire"
)

// maxChannels is the number of distinct EMG channels a device can have:
// four muscles on two legs.
const maxChannels = 8

// Detector is one device's detection state: one chain per EMG channel, one
// per IMU site, and the classifier. Not safe for concurrent use; state is
// bounded (well under 256 KiB per device).
type Detector struct {
	device string
	cfg    Config
	out    Output

	rate     float64 // EMG sample rate the chains are designed for
	blockLen int     // EMG samples per block
	pos      int     // samples into the current block
	nextT    int64   // expected T0 of the next EMG frame
	chans    []*channel
	rows     [maxChannels]*channel // scratch: channels of the current frame

	sites    [maxSites]*imuSite
	motionFn func(*imuSite, motionBlock)

	spec      spectrum
	mainsHz   float64
	votes     int
	statusOff []wire.Channel // lead-off from the newest status frame
	legs      [3]legPending  // indexed by wire.Side
	plm       plmTracker
	restored  map[wire.Channel]restoredBaseline
}

// New returns a detector for one device. A config that fails Validate is
// replaced by DefaultConfig rather than failing later in the night; callers
// validate configuration at start-up.
func New(device string, cfg Config, out Output) *Detector {
	if cfg.Validate() != nil {
		cfg = DefaultConfig()
	}
	d := &Detector{device: device, cfg: cfg, out: out, mainsHz: cfg.MainsPriorHz}
	if cfg.MainsHz != 0 {
		d.mainsHz = cfg.MainsHz
	}
	d.motionFn = d.onMotion
	return d
}

func (d *Detector) mainsFixed() bool { return d.cfg.MainsHz != 0 }

// Mains returns the mains frequency the notches are currently set to.
func (d *Detector) Mains() float64 { return d.mainsHz }

// EMG processes one frame. Data is in microvolts; frames arrive in order and
// de-duplicated. Frames that cannot be processed (no samples, ragged rows,
// rate out of range) are ignored: ingest has rejected them already.
func (d *Detector) EMG(f *wire.EMGFrame) {
	n := f.Len()
	if n == 0 || !(f.Rate >= 1) || math.IsInf(f.Rate, 0) || len(f.Channels) != len(f.Data) || len(f.Channels) > maxChannels {
		return
	}
	for _, row := range f.Data {
		if len(row) != n {
			return
		}
	}
	if f.Rate != d.rate {
		d.setRate(f.Rate)
	}
	// A jump in time (lost frames, device clock step) would merge samples
	// from both sides into one block: drop the partial block instead.
	if d.pos > 0 && absI64(f.T0-d.nextT) > secs(2/d.rate)+1000 {
		d.dropPartial()
	}
	d.nextT = f.End()
	rows := d.rows[:len(f.Channels)]
	for i, id := range f.Channels {
		rows[i] = d.channel(id)
	}
	for i := 0; i < n; {
		m := min(n-i, d.blockLen-d.pos)
		for r, ch := range rows {
			ch.chain.push(f.Data[r][i : i+m])
			ch.seen = true
		}
		d.pos += m
		i += m
		if d.pos == d.blockLen {
			d.endBlock(f.T0 + wire.SpanMicros(i, f.Rate))
			d.pos = 0
		}
	}
}

func absI64(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

func (d *Detector) dropPartial() {
	d.pos = 0
	for _, ch := range d.chans {
		ch.chain.resetBlock()
		ch.seen = false
	}
}

// setRate (re)designs every chain for a new sample rate.
func (d *Detector) setRate(rate float64) {
	d.rate = rate
	d.blockLen = max(1, int(math.Round(rate/d.cfg.EnvelopeRate)))
	d.pos = 0
	d.spec.setLen(specLen(rate))
	for _, ch := range d.chans {
		ch.chain.design(&d.cfg, rate, d.mainsHz, d.blockLen)
		ch.seen = false
	}
}

func (d *Detector) channel(id wire.Channel) *channel {
	for _, ch := range d.chans {
		if ch.id == id {
			return ch
		}
	}
	prior := d.cfg.BaselinePriorUV
	r, ok := d.restored[id]
	if ok {
		prior = r.LevelUV
	}
	ch := newChannel(id, &d.cfg, prior)
	ch.idx = len(d.chans)
	if ok {
		// A restored baseline is trusted: it was learnt on this wearer.
		ch.base.learnt = r.LearntS
	}
	ch.level = math.Max(ch.base.level, d.cfg.BaselineFloorUV)
	ch.chain.design(&d.cfg, d.rate, d.mainsHz, d.blockLen)
	ch.statusOff = slices.Contains(d.statusOff, id)
	if ch.statusOff {
		ch.art = episode{active: true, cause: CauseLeadOff, onset: d.nextT, last: d.nextT}
	}
	d.chans = append(d.chans, ch)
	return ch
}

// endBlock runs the block-rate work once every channel has a block ending
// at t, then the cross-channel steps.
func (d *Detector) endBlock(t int64) {
	// Every channel's envelope first, so checks across channels (crosstalk)
	// compare the same blocks whatever the channel order.
	for _, ch := range d.chans {
		if ch.seen {
			ch.cur = ch.chain.endBlock()
			ch.pushHist(ch.cur.rms, t)
		}
	}
	for _, ch := range d.chans {
		if !ch.seen {
			continue
		}
		ch.seen = false
		d.block(ch, ch.cur, t)
	}
	d.flushLegs(t, false)
	d.plm.tick(d, t)
}

// mainsVote counts spectral windows showing clear hum at the other mains
// frequency; MainsVotes of them in a row switch the notches.
func (d *Detector) mainsVote(f features) {
	if d.mainsFixed() {
		return
	}
	cur, other := f.score50, f.score60
	if d.mainsHz == 60 {
		cur, other = other, cur
	}
	ev := d.cfg.MainsEvidence
	if other >= ev && other >= 4*cur {
		d.votes++
	} else {
		d.votes = 0
	}
	if d.votes < d.cfg.MainsVotes {
		return
	}
	d.votes = 0
	d.mainsHz = 110 - d.mainsHz
	for _, ch := range d.chans {
		ch.chain.redesignNotch(&d.cfg, d.mainsHz)
		// The baseline learnt so far included the un-notched hum: relearn.
		// A burst so far may be the hum itself: drop it.
		ch.base.init(&d.cfg, d.cfg.BaselinePriorUV)
		if ch.b.phase == candidate {
			ch.b.phase = idle
		}
		ch.level = math.Max(ch.base.level, d.cfg.BaselineFloorUV)
	}
}

// IMU processes one IMU frame.
func (d *Detector) IMU(f *wire.IMUFrame) {
	if f.Len() == 0 || !(f.Rate >= 1) || math.IsInf(f.Rate, 0) {
		return
	}
	slot := siteSlot(f.Site)
	if slot < 0 {
		return
	}
	s := d.sites[slot]
	if s == nil {
		s = newIMUSite(f.Site, &d.cfg)
		d.sites[slot] = s
	}
	s.push(&d.cfg, f, d.motionFn)
}

func siteSlot(s wire.Site) int {
	if (s.Segment != wire.Shank && s.Segment != wire.Thigh) || (s.Side != wire.Left && s.Side != wire.Right) {
		return -1
	}
	return int(s.Segment-1)*2 + int(s.Side-1)
}

func (d *Detector) onMotion(s *imuSite, b motionBlock) {
	d.out.Motion(Motion{
		Device:   d.device,
		Site:     s.site,
		Time:     time.UnixMicro(b.t),
		Activity: b.activity,
		TiltDeg:  s.tilt(&b),
	})
}

// LeadOff reports the channels whose electrodes are off at sample time t
// (Unix µs), from a status frame; an empty ch clears lead-off. While off, a
// channel is in artifact; the episode is reported when the signal has been
// clean for ArtifactHoldS after lead-off cleared.
func (d *Detector) LeadOff(t int64, ch []wire.Channel) {
	d.statusOff = append(d.statusOff[:0], ch[:min(len(ch), maxChannels)]...)
	for _, c := range d.chans {
		off := slices.Contains(d.statusOff, c.id)
		switch {
		case off && !c.statusOff:
			if !c.art.active {
				c.art = episode{active: true, cause: CauseLeadOff, onset: t}
			} else {
				c.art.cause = CauseLeadOff
			}
			c.art.last = t
			if c.b.phase != idle {
				d.abortBurst(c, t)
			}
		case !off && c.statusOff:
			c.art.last = t
		}
		c.statusOff = off
	}
}

// Gap reports frames lost on stream s between from and to (Unix µs). An
// EMG gap of at least GapMinS ends what was going on (a cramp at its last
// active time) and is reported as an artifact on every channel; an IMU gap
// makes the leg's stillness unknown until data returns (IMUStaleS).
func (d *Detector) Gap(s wire.Stream, from, to int64) {
	if s != wire.StreamEMG {
		return
	}
	d.dropPartial()
	if to-from < secs(d.cfg.GapMinS) {
		return
	}
	for _, ch := range d.chans {
		if ch.b.phase != idle {
			d.abortBurst(ch, from)
		}
		d.emitArtifact(ch.id, CauseGap, from, to, to, 1)
	}
}

// Close ends the stream at sample time at (Unix µs): open bursts are
// classified as if released, a cramp ends at its last active time, and
// open artifact episodes and pending movements and PLM are reported.
func (d *Detector) Close(at int64) {
	for _, ch := range d.chans {
		if ch.b.phase != idle {
			d.finishBurst(ch, at)
		}
		if ch.art.active {
			end := ch.art.last
			if ch.statusOff {
				end = at
			}
			d.endArtifact(ch, end, at)
		}
	}
	d.flushLegs(at, true)
	d.plm.flush(d, at)
}

package detect

import (
	"math"
	"time"

	"github.com/crampwatch/crampwatch/wire"
)

// Artifact causes, as reported in Event.Cause.
const (
	CauseLeadOff    = "lead_off"
	CauseFlatLine   = "flat_line"
	CauseSaturation = "saturation"
	CauseMainsHum   = "mains_hum"
	CauseGap        = "gap"
)

// causeRank orders causes when several flag one episode: the one closest
// to the root cause wins (a lead-off often also saturates or goes flat).
func causeRank(c string) int {
	switch c {
	case CauseLeadOff:
		return 4
	case CauseSaturation:
		return 3
	case CauseFlatLine:
		return 2
	case CauseMainsHum:
		return 1
	}
	return 0
}

// phase is where a channel's burst stands.
type phase uint8

const (
	idle      phase = iota
	candidate       // above threshold, not classified yet
	moving          // classified as movement, waiting for its end
	cramping        // confirmed cramp, waiting for its end
)

// maxSites is the number of IMU slots: shank and thigh on each leg.
const maxSites = 4

// burst is one period of activity on a channel, from the onset crossing to
// the release.
type burst struct {
	phase       phase
	onset       int64 // first crossing of the onset threshold, Unix µs
	lastAbove   int64 // end of the last block above the release threshold
	belowS      float64
	peak, sum   float64
	n, nCramp   int // blocks in the burst, and those at cramp level
	mfSum       float64
	mfN         int
	confirmedAt int64
	still       bool  // leg known still at confirmation
	with        uint8 // bit per index in Detector.chans: channels whose bursts started within BilateralS
	xtalk       bool  // latest verdict: crosstalk of a stronger contraction on the same leg
	motion      [maxSites]motionAcc
}

// episode is an artifact episode on a channel.
type episode struct {
	active         bool
	cause          string
	onset, last    int64
	flagged, total int
}

// channel is one EMG channel: its chain and its detection state.
type channel struct {
	id    wire.Channel
	idx   int // index in Detector.chans
	chain chain
	seen  bool       // got samples in the current block
	cur   blockStats // the block being processed

	base  baseline
	level float64 // baseline used for thresholds (floored), uV

	hist  []float64 // envelope of recent blocks, for continuity and crosstalk checks
	hpos  int
	hfill int
	histT int64 // end of the newest block in hist, Unix µs

	b         burst
	art       episode
	statusOff bool    // status frames say the electrode is off
	flatS     float64 // seconds of flat signal so far
	nextSpec  int64
}

func newChannel(id wire.Channel, cfg *Config, prior float64) *channel {
	ch := &channel{id: id, hist: make([]float64, int(math.Ceil(maxHistoryS*cfg.EnvelopeRate))+1)}
	ch.base.init(cfg, prior)
	return ch
}

func (ch *channel) pushHist(v float64, t int64) {
	ch.histT = t
	ch.hist[ch.hpos] = v
	ch.hpos = (ch.hpos + 1) % len(ch.hist)
	ch.hfill = min(ch.hfill+1, len(ch.hist))
}

// frac is the fraction of the last k blocks of the burst at or above level.
func (ch *channel) frac(k int, level float64) float64 {
	k = min(k, ch.b.n, ch.hfill)
	if k <= 0 {
		return 0
	}
	var c int
	for i := 1; i <= k; i++ {
		if ch.hist[(ch.hpos-i+len(ch.hist))%len(ch.hist)] >= level {
			c++
		}
	}
	return float64(c) / float64(k)
}

// excess is the sum over the last k blocks of the envelope above the
// channel's baseline.
func (ch *channel) excess(k int) float64 {
	var sum float64
	for i := 1; i <= k; i++ {
		sum += math.Max(ch.hist[(ch.hpos-i+len(ch.hist))%len(ch.hist)]-ch.level, 0)
	}
	return sum
}

// block runs a channel's block-rate work: artifact checks, spectrum,
// state machine, baseline, envelope output. The block's envelope is
// already in ch.hist (endBlock pushes every channel's first, so
// cross-channel checks compare the same blocks).
func (d *Detector) block(ch *channel, s blockStats, t int64) {
	cfg := &d.cfg
	dt := float64(s.n) / d.rate

	cause := ""
	// Saturation is checked before the DC level: a railed amplifier also
	// has a huge mean, but a floating electrode is noisy, never stuck.
	switch {
	case ch.statusOff:
		cause = CauseLeadOff
	case s.satFrac >= cfg.SaturationFraction:
		cause = CauseSaturation
	case math.Abs(s.dc) >= cfg.LeadOffDCUV:
		cause = CauseLeadOff
	}
	if s.rms < cfg.FlatLineUV {
		ch.flatS += dt
	} else {
		ch.flatS = 0
	}
	start := t - secs(dt)
	if cause == "" && ch.flatS >= cfg.FlatLineS {
		cause = CauseFlatLine
		start = t - secs(ch.flatS)
	}
	if cause == "" && s.humRMS >= cfg.HumMinUV && s.humRMS*s.humRMS >= cfg.HumRatio*s.rms*s.rms {
		cause = CauseMainsHum
	}
	d.artifactStep(ch, cause, start, t)

	b := &ch.b
	if b.phase != idle && ch.chain.rfill == len(ch.chain.ring) && t >= ch.nextSpec {
		d.spectral(ch, t)
	}

	B := ch.level
	thrOn := B + math.Max(cfg.OnsetK*B, cfg.OnsetMinUV)
	if ch.base.learnt < cfg.WarmupS {
		thrOn *= cfg.WarmupFactor
	}
	thrOff := B + math.Max(cfg.ReleaseK*B, cfg.ReleaseMinUV)

	// Mains hum is notched out of the envelope, so it only holds back a
	// confirmation; the other artifacts make the envelope meaningless.
	blocked := ch.art.active && ch.art.cause != CauseMainsHum
	if blocked && b.phase != idle {
		d.abortBurst(ch, t)
	}
	switch {
	case b.phase == idle:
		if !blocked && s.rms > thrOn {
			d.startBurst(ch, s.rms, t, dt)
		}
	default:
		b.peak = math.Max(b.peak, s.rms)
		b.sum += s.rms
		b.n++
		if s.rms >= d.crampLevel(B) {
			b.nCramp++
		}
		if s.rms > thrOff {
			b.lastAbove = t
			b.belowS = 0
		} else {
			b.belowS += dt
		}
		release := cfg.LMReleaseS
		if b.phase == cramping || float64(b.lastAbove-b.onset)/1e6 > cfg.LMMaxS {
			release = cfg.CrampReleaseS
		}
		if b.belowS >= release-1e-9 {
			d.finishBurst(ch, t)
		} else if b.phase == candidate {
			d.evaluate(ch, t)
		}
	}

	// Learn the resting level from idle, clean blocks; a burst freezes it,
	// but not for ever, so a lasting step in noise is eventually learnt.
	if !blocked && cause == "" && s.n > 0 &&
		(b.phase == idle || float64(t-b.onset)/1e6 > cfg.BaselineFreezeMaxS) {
		ch.base.add(s.rms, dt)
		ch.level = math.Max(ch.base.level, cfg.BaselineFloorUV)
	}
	if b.phase == idle && ch.chain.rfill == len(ch.chain.ring) && t >= ch.nextSpec && !d.mainsFixed() {
		d.spectral(ch, t)
	}

	d.out.Envelope(Envelope{
		Device:     d.device,
		Channel:    ch.id,
		Time:       time.UnixMicro(t),
		RMSUV:      s.rms,
		BaselineUV: ch.level,
	})
}

func (d *Detector) crampLevel(B float64) float64 {
	return math.Max(d.cfg.CrampRatio*B, d.cfg.CrampMinUV)
}

// spectral analyses the channel's last half second: median frequency for a
// burst, and mains evidence.
func (d *Detector) spectral(ch *channel, t int64) {
	cfg := &d.cfg
	c := &ch.chain
	d.spec.load(c.ring, c.rpos)
	f := d.spec.analyse(d.rate, c.bp.low, c.bp.high, c.nt.mains, max(1, c.nt.n))
	interval := cfg.MainsCheckS
	if ch.b.phase != idle {
		// Half-second windows back to back cover the burst.
		interval = 0.5
		if f.medianHz > 0 {
			ch.b.mfSum += f.medianHz
			ch.b.mfN++
		}
	} else if ch.base.learnt < cfg.WarmupS {
		interval = 1
	}
	ch.nextSpec = t + secs(interval)
	d.mainsVote(f)
}

func (d *Detector) startBurst(ch *channel, rms float64, t int64, dt float64) {
	ch.b = burst{
		phase:     candidate,
		onset:     t - secs(dt/2),
		lastAbove: t,
		peak:      rms,
		sum:       rms,
		n:         1,
	}
	if rms >= d.crampLevel(ch.level) {
		ch.b.nCramp = 1
	}
	ch.nextSpec = t
	bil := secs(d.cfg.BilateralS)
	for _, o := range d.chans {
		if o != ch && o.b.phase != idle && ch.b.onset-o.b.onset <= bil {
			ch.b.with |= 1 << o.idx
			o.b.with |= 1 << ch.idx
		}
	}
}

// startedWith tells whether another muscle started contracting within
// BilateralS of ch's burst. Crosstalk of ch's own contraction on another
// channel of the leg starts with it too, but is not a second muscle.
func (d *Detector) startedWith(ch *channel) bool {
	bil := secs(d.cfg.BilateralS)
	for _, o := range d.chans {
		if ch.b.with&(1<<o.idx) == 0 {
			continue
		}
		if o.id.Side == ch.id.Side && o.b.xtalk && absI64(o.b.onset-ch.b.onset) <= bil {
			continue
		}
		return true
	}
	return false
}

// crosstalk tells whether ch's burst is another muscle's contraction picked
// up by ch's electrodes: a channel of the same leg is in a burst that
// started no later (within BilateralS) and, over ch's burst so far (at most
// the weak tier's window), ch's envelope above baseline is at most
// CrosstalkRatio of that channel's. A cramp is one muscle, and crosstalk
// rises and falls with its source, so a second muscle counts only when it
// is strong compared with the first; one that started earlier on its own
// is never crosstalk of a later contraction.
func (d *Detector) crosstalk(ch *channel, t int64) bool {
	cfg := &d.cfg
	k := min(ch.b.n, ch.hfill, d.holdBlocks(cfg.WeakConfirmS))
	if k <= 0 || ch.histT != t {
		return false
	}
	self := ch.excess(k)
	bil := secs(cfg.BilateralS)
	for _, o := range d.chans {
		if o == ch || o.id.Side != ch.id.Side || o.b.phase == idle || o.histT != t ||
			o.hfill < k || o.b.onset > ch.b.onset+bil {
			continue
		}
		if dom := o.excess(k); dom > 0 && self <= cfg.CrosstalkRatio*dom {
			return true
		}
	}
	return false
}

// holdBlocks is the number of blocks in 0.75 x s seconds: the window over
// which a tier's level must hold.
func (d *Detector) holdBlocks(s float64) int {
	return int(math.Round(0.75 * s * d.cfg.EnvelopeRate))
}

// legMotion folds the IMU blocks up to t into the burst's motion and says
// whether the leg moved, whether it is known to be quiet (own IMU, fresh,
// activity at most QuietActivityG), and whether the decision must wait for
// IMU data still in flight.
func (d *Detector) legMotion(ch *channel, t int64) (moved, known, quiet, wait bool) {
	b := &ch.b
	cfg := &d.cfg
	own := false
	for _, s := range d.sites {
		if s != nil && s.site.Side == ch.id.Side {
			own = true
		}
	}
	known = own
	activity := 0.0
	from := b.onset - secs(cfg.StillBeforeS)
	tol := secs(1 / cfg.EnvelopeRate)
	for i, s := range d.sites {
		// A leg without its own IMU borrows the others' as evidence of
		// motion (turning over moves both legs), never as proof of stillness.
		if s == nil || (own && s.site.Side != ch.id.Side) {
			continue
		}
		if s.until < t-secs(cfg.IMUStaleS) {
			known = false
			continue
		}
		if s.until < t-tol {
			wait = true
		}
		m := &b.motion[i]
		to := min(t, s.until)
		s.scan(m, max(from, m.scanned), to)
		m.scanned = max(m.scanned, to)
		if m.moved(cfg) {
			moved = true
		}
		activity = math.Max(activity, m.activity)
	}
	return moved, known, known && activity <= cfg.QuietActivityG, wait
}

// evaluate decides whether a candidate burst is a movement or a confirmed
// cramp yet. The tiers trade latency for evidence: the stronger and more
// continuous the contraction on a still leg, the earlier a PLM or a
// movement is ruled out.
func (d *Detector) evaluate(ch *channel, t int64) {
	cfg := &d.cfg
	b := &ch.b
	// Crosstalk is decided first: it follows its source's movement too, and
	// the source's own burst reports that.
	b.xtalk = d.crosstalk(ch, t)
	if b.xtalk {
		return
	}
	moved, known, quiet, wait := d.legMotion(ch, t)
	if moved {
		b.phase = moving
		return
	}
	if wait || (ch.art.active && (ch.art.cause != CauseMainsHum || ch.art.last == t)) {
		return
	}
	B := ch.level
	dur := float64(t-b.onset) / 1e6
	span := float64(b.lastAbove-b.onset) / 1e6
	hold := d.holdBlocks
	var ok bool
	switch {
	case span > cfg.LMMaxS && dur >= cfg.WeakConfirmS && b.belowS == 0:
		ok = ch.frac(hold(cfg.WeakConfirmS), d.crampLevel(B)) >= cfg.Continuity
	case d.plm.running(d, ch.id.Side, b.onset):
		// May be the next PLM of a series: wait until longer than any LM.
	case !known:
		// No IMU on this leg: only a strong contraction, and not before
		// ModerateConfirmS, since a PLM can only be told by its amplitude.
		ok = dur >= cfg.ModerateConfirmS && !d.startedWith(ch) &&
			ch.frac(hold(cfg.ModerateConfirmS), math.Max(cfg.StrongRatio*B, cfg.StrongMinUV)) >= cfg.Continuity
	case !quiet:
		// Some leg motion below a movement: a leg movement (PLM) moves the
		// leg, a cramp holds it. Only outlasting any LM rules a PLM out.
	case dur >= cfg.ModerateConfirmS:
		ok = ch.frac(hold(cfg.ModerateConfirmS), math.Max(cfg.ModerateRatio*B, cfg.CrampMinUV)) >= cfg.Continuity
	case dur >= cfg.StrongConfirmS && !d.startedWith(ch):
		ok = ch.frac(hold(cfg.StrongConfirmS), math.Max(cfg.StrongRatio*B, cfg.StrongMinUV)) >= cfg.Continuity
	}
	if !ok {
		return
	}
	b.phase = cramping
	b.confirmedAt = t
	b.still = quiet
	d.emitCramp(ch, StateOngoing, t)
}

// finishBurst classifies a burst that has just been released.
func (d *Detector) finishBurst(ch *channel, t int64) {
	b := &ch.b
	switch b.phase {
	case cramping:
		d.emitCramp(ch, StateEnded, t)
	case moving:
		d.legMoveAdd(ch, t)
	case candidate:
		if b.xtalk {
			// Another muscle's contraction seen through this channel: that
			// channel reports it.
			break
		}
		if moved, _, _, _ := d.legMotion(ch, t); moved {
			d.legMoveAdd(ch, t)
			break
		}
		span := float64(b.lastAbove-b.onset) / 1e6
		if span >= d.cfg.LMMinS && span <= d.cfg.LMMaxS {
			d.plm.add(d, legMove{
				onset:    b.onset,
				end:      b.lastAbove,
				ch:       ch.id,
				legs:     legBit(ch.id.Side),
				peak:     b.peak,
				mean:     b.mean(),
				medianHz: b.medianHz(),
			}, t)
		}
	}
	b.phase = idle
}

// abortBurst ends a burst cut short by an artifact or a gap: a confirmed
// cramp ends at its last active time, a movement is still reported, a
// candidate is dropped since its evidence is incomplete.
func (d *Detector) abortBurst(ch *channel, t int64) {
	switch ch.b.phase {
	case cramping:
		d.emitCramp(ch, StateEnded, t)
	case moving:
		d.legMoveAdd(ch, t)
	}
	ch.b.phase = idle
}

func (b *burst) mean() float64 {
	if b.n == 0 {
		return 0
	}
	return b.sum / float64(b.n)
}

func (b *burst) medianHz() float64 {
	if b.mfN == 0 {
		return 0
	}
	return b.mfSum / float64(b.mfN)
}

func (d *Detector) emitCramp(ch *channel, st State, t int64) {
	b := &ch.b
	cfg := &d.cfg
	end := t
	if st == StateEnded {
		end = b.lastAbove
	}
	dur := float64(end-b.onset) / 1e6
	// Confidence: amplitude margin over the cramp level on a log scale,
	// continuity, stillness known from an IMU, and duration.
	B := ch.level
	a := clamp01(math.Log(b.mean()/(cfg.CrampRatio*B)) / math.Log(2*cfg.StrongRatio/cfg.CrampRatio))
	c := float64(b.nCramp) / float64(max(1, b.n))
	s := 0.6
	if b.still {
		s = 1
	}
	conf := 0.4*a + 0.25*c + 0.2*s + 0.15*math.Min(1, dur/cfg.WeakConfirmS)
	d.out.Event(Event{
		Device:       d.device,
		Kind:         KindCramp,
		State:        st,
		Channel:      ch.id,
		Onset:        time.UnixMicro(b.onset),
		End:          time.UnixMicro(end),
		ConfirmedAt:  time.UnixMicro(b.confirmedAt),
		DurationS:    dur,
		PeakUV:       b.peak,
		MeanUV:       b.mean(),
		MedianFreqHz: b.medianHz(),
		Confidence:   clamp01(conf),
	})
}

func clamp01(v float64) float64 {
	if math.IsNaN(v) {
		return 0
	}
	return math.Max(0, math.Min(1, v))
}

// artifactStep advances the channel's artifact episode with one block's
// verdict (cause empty if clean).
func (d *Detector) artifactStep(ch *channel, cause string, start, t int64) {
	a := &ch.art
	if cause != "" {
		if !a.active {
			*a = episode{active: true, cause: cause, onset: start}
		} else if causeRank(cause) > causeRank(a.cause) {
			a.cause = cause
		}
		a.last = t
		a.flagged++
		a.total++
		return
	}
	if !a.active {
		return
	}
	a.total++
	if t-a.last >= secs(d.cfg.ArtifactHoldS) {
		d.endArtifact(ch, a.last, t)
	}
}

func (d *Detector) endArtifact(ch *channel, end, now int64) {
	a := &ch.art
	conf := 0.5 + 0.5*float64(a.flagged)/float64(max(1, a.total))
	if a.cause == CauseLeadOff && a.flagged == 0 {
		conf = 1 // reported by the device itself
	}
	d.emitArtifact(ch.id, a.cause, a.onset, max(end, a.onset), now, conf)
	a.active = false
}

func (d *Detector) emitArtifact(id wire.Channel, cause string, onset, end, now int64, conf float64) {
	d.out.Event(Event{
		Device:      d.device,
		Kind:        KindArtifact,
		State:       StateEnded,
		Channel:     id,
		Onset:       time.UnixMicro(onset),
		End:         time.UnixMicro(end),
		ConfirmedAt: time.UnixMicro(now),
		DurationS:   float64(end-onset) / 1e6,
		Confidence:  clamp01(conf),
		Cause:       cause,
	})
}

// legPending is a movement on one leg being gathered from its channels.
type legPending struct {
	active     bool
	onset, end int64
	ch         wire.Channel
	peak, mean float64
	medianHz   float64
	margin     float64
}

// legMoveAdd folds a finished movement burst into its leg's movement.
func (d *Detector) legMoveAdd(ch *channel, t int64) {
	b := &ch.b
	p := &d.legs[ch.id.Side%3]
	if p.active && b.onset > p.end+secs(d.cfg.ArtifactHoldS) {
		d.emitMovement(p, t)
	}
	margin := 0.0
	for i := range b.motion {
		margin = math.Max(margin, b.motion[i].margin(&d.cfg))
	}
	if !p.active {
		*p = legPending{active: true, onset: b.onset, end: b.lastAbove}
	}
	p.onset = min(p.onset, b.onset)
	p.end = max(p.end, b.lastAbove)
	p.margin = math.Max(p.margin, margin)
	if b.peak > p.peak {
		p.peak, p.mean, p.ch, p.medianHz = b.peak, b.mean(), ch.id, b.medianHz()
	}
}

// flushLegs reports a leg's movement once none of its channels is still in
// a burst that could belong to it.
func (d *Detector) flushLegs(t int64, force bool) {
	for side := range d.legs {
		p := &d.legs[side]
		if !p.active {
			continue
		}
		if !force {
			if t < p.end+secs(d.cfg.ArtifactHoldS) {
				continue
			}
			busy := false
			for _, ch := range d.chans {
				if int(ch.id.Side%3) == side && ch.b.phase == moving {
					busy = true
				}
			}
			if busy {
				continue
			}
		}
		d.emitMovement(p, t)
	}
}

func (d *Detector) emitMovement(p *legPending, t int64) {
	// Confidence: 0.5 at a motion threshold, 1 at four times it.
	conf := 0.5 + 0.25*math.Log2(math.Max(p.margin, 1))
	d.out.Event(Event{
		Device:       d.device,
		Kind:         KindMovement,
		State:        StateEnded,
		Channel:      p.ch,
		Onset:        time.UnixMicro(p.onset),
		End:          time.UnixMicro(p.end),
		ConfirmedAt:  time.UnixMicro(max(t, p.end)),
		DurationS:    float64(p.end-p.onset) / 1e6,
		PeakUV:       p.peak,
		MeanUV:       p.mean,
		MedianFreqHz: p.medianHz,
		Confidence:   clamp01(conf),
	})
	p.active = false
}

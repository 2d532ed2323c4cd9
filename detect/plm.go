package detect

import (
	"math"
	"time"

	"github.com/crampwatch/crampwatch/wire"
)

// legMove is one leg movement (LM): a burst of 0.5-10 s on a still leg,
// possibly merged from several channels and both legs.
type legMove struct {
	onset, end int64
	ch         wire.Channel // channel with the largest burst
	legs       uint8        // bit per wire.Side
	peak       float64
	mean       float64
	medianHz   float64
}

func legBit(s wire.Side) uint8 { return 1 << s }

// plmTracker scores periodic limb movements after WASM 2016 for one device:
// LMs of both legs whose spans lie within BilateralS of each other count as
// one; PLMMinRun or more LMs in a row with onset-to-onset intervals in
// [PLMMinIntervalS, PLMMaxIntervalS] form a series; any other interval
// breaks the series and the new LM starts the next candidate series. The
// members of a series are reported when it is established, later members as
// they are final.
type plmTracker struct {
	members     [maxPLMRun]legMove
	n           int
	established bool
	pending     legMove // newest LM, still open to bilateral merging
	hasPending  bool
}

// add takes an LM that just ended. Committing the previous pending LM may
// emit events.
func (p *plmTracker) add(d *Detector, m legMove, now int64) {
	bil := secs(d.cfg.BilateralS)
	if p.hasPending && m.onset <= p.pending.end+bil && m.end >= p.pending.onset-bil {
		q := &p.pending
		q.onset = min(q.onset, m.onset)
		q.end = max(q.end, m.end)
		q.legs |= m.legs
		if m.peak > q.peak {
			q.peak, q.mean, q.ch, q.medianHz = m.peak, m.mean, m.ch, m.medianHz
		}
		return
	}
	if p.hasPending {
		p.commit(d, now)
	}
	p.pending, p.hasPending = m, true
}

// tick commits the pending LM once no other burst can still merge with it:
// BilateralS has passed since its end and no channel has an open burst that
// started within BilateralS of it.
func (p *plmTracker) tick(d *Detector, now int64) {
	if !p.hasPending {
		return
	}
	bil := secs(d.cfg.BilateralS)
	if now < p.pending.end+bil {
		return
	}
	for _, ch := range d.chans {
		if ch.b.phase != idle && ch.b.onset <= p.pending.end+bil {
			return
		}
	}
	p.commit(d, now)
}

func (p *plmTracker) commit(d *Detector, now int64) {
	m := p.pending
	p.hasPending = false
	cfg := &d.cfg
	if p.n > 0 {
		iv := float64(m.onset-p.members[p.n-1].onset) / 1e6
		if iv < cfg.PLMMinIntervalS || iv > cfg.PLMMaxIntervalS {
			p.n, p.established = 0, false
		}
	}
	if p.n == len(p.members) {
		// Established long ago: the oldest members are reported already.
		copy(p.members[:], p.members[1:])
		p.n--
	}
	p.members[p.n] = m
	p.n++
	switch {
	case p.established:
		d.emitPLM(&p.members[p.n-1], p.n, now)
	case p.n >= cfg.PLMMinRun:
		p.established = true
		for i := 0; i < p.n; i++ {
			d.emitPLM(&p.members[i], p.n, now)
		}
	}
}

// running tells whether a PLM series involving leg is under way that a
// burst starting at onset could extend: at least two LMs in a row with a
// valid interval, the newest within PLMMaxIntervalS. Such a burst may be
// the next PLM, so a cramp there must wait until it outlasts any LM. A
// single earlier LM is not enough: isolated LMs are common and would delay
// many true cramps.
func (p *plmTracker) running(d *Detector, leg wire.Side, onset int64) bool {
	n := p.n
	var last int64
	var legs uint8
	for i := 0; i < p.n; i++ {
		legs |= p.members[i].legs
	}
	if n > 0 {
		last = p.members[n-1].onset
	}
	if p.hasPending {
		iv := float64(p.pending.onset-last) / 1e6
		if n > 0 && iv >= d.cfg.PLMMinIntervalS && iv <= d.cfg.PLMMaxIntervalS {
			n++
			legs |= p.pending.legs
		} else {
			n, legs = 1, p.pending.legs
		}
		last = p.pending.onset
	}
	return n >= 2 && onset > last && onset-last <= secs(d.cfg.PLMMaxIntervalS) && legs&legBit(leg) != 0
}

// flush commits what is pending, at the end of the stream.
func (p *plmTracker) flush(d *Detector, now int64) {
	if p.hasPending {
		p.commit(d, now)
	}
}

func (d *Detector) emitPLM(m *legMove, seriesLen int, now int64) {
	// Confidence grows with the length of the series: four in a row is the
	// minimum WASM accepts, eight or more leaves little doubt.
	conf := math.Min(1, 0.6+0.1*float64(seriesLen-d.cfg.PLMMinRun+1))
	d.out.Event(Event{
		Device:       d.device,
		Kind:         KindPLM,
		State:        StateEnded,
		Channel:      m.ch,
		Onset:        time.UnixMicro(m.onset),
		End:          time.UnixMicro(m.end),
		ConfirmedAt:  time.UnixMicro(max(now, m.end)),
		DurationS:    float64(m.end-m.onset) / 1e6,
		PeakUV:       m.peak,
		MeanUV:       m.mean,
		MedianFreqHz: m.medianHz,
		Confidence:   conf,
	})
}

// secs converts seconds to microseconds.
func secs(s float64) int64 { return int64(math.Round(s * 1e6)) }

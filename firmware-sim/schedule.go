package firmwaresim

import (
	"math"
	"math/rand/v2"
	"sort"
)

// epKind is what a scheduled episode is.
type epKind uint8

const (
	epCramp epKind = iota + 1
	epPLM
	epLM
	epTurn
	epGetUp
	epStretch
	epLeadOff
	epFlat
	epSaturation
	epHum
	epGap
)

// Leg indices: 0 is the left leg, 1 the right (wire.Side minus one).
const (
	legLeft  = 0
	legRight = 1
)

// dip is a brief partial relaxation during a cramp.
type dip struct{ at, width, depth float64 }

// spike is an electrode motion artifact: a low-frequency half-sine.
type spike struct {
	at, width, amp float64
	leg            int
}

// legPart is one leg's share of a leg-level episode (PLM burst, movement).
type legPart struct {
	on         bool
	start, end float64 // seconds since the start of the night
	amp        float64 // EMG level, uV RMS (gain applied)
	roll       float64 // permanent change of the shank's roll, degrees (movements)
	tilt       float64 // dorsiflexion tilt blip, degrees (PLM and LM)
}

// episode is one scheduled happening. Times are seconds since the start of
// the night; [start, end) is the interval the truth reports. Episodes are
// immutable once scheduled, except hold (the flat-line value), which the EMG
// generator sets when the flat line begins.
type episode struct {
	kind       epKind
	start, end float64
	legs       [2]legPart
	ch         int // channel index for cramps and per-channel artifacts, else -1

	amp           float64 // cramp level or hum level, uV RMS (gain applied for cramps)
	ramp, release float64 // cramp onset ramp and relaxation, seconds
	tilt          float64 // cramp plantar-flexion tilt or movement pitch excursion, degrees
	react, reactD float64 // cramp: start and length of the wearer's reaction movement (reactD 0: none)
	dips          []dip
	spikes        []spike
	offset, noise float64 // lead-off DC offset and noise, uV
	freq          float64 // saturation swing frequency, Hz
	series        int     // PLM series number (1-based), 0 for other kinds
}

// span is a reserved interval of a leg's timeline.
type span struct{ a, b float64 }

// scheduler places a night's episodes so that no two overlap on a leg.
type scheduler struct {
	rng      *rand.Rand
	sc       *Scenario
	w        *wearer
	night    float64
	frameS   float64 // EMG frame length, seconds (gaps are aligned to it)
	legChans [2][]int
	hasLeg   [2]bool
	busy     [2][]span
	lms      []span // PLM and isolated LMs, which must stay apart to not join series
	eps      []episode
	series   int
}

// lmClearance keeps isolated leg movements and PLM series further apart than
// the 90 s that would let scoring chain them into one series.
const lmClearance = 95

// maxTries bounds the random placement attempts per episode; an episode that
// finds no free time (a crowded scenario) is left out.
const maxTries = 200

func (s *scheduler) free(leg int, a, b float64) bool {
	g := s.sc.GuardS
	for _, sp := range s.busy[leg] {
		if a < sp.b+g && sp.a-g < b {
			return false
		}
	}
	return true
}

func (s *scheduler) freeLegs(a, b float64) bool {
	for leg := range 2 {
		if s.hasLeg[leg] && !s.free(leg, a, b) {
			return false
		}
	}
	return true
}

func (s *scheduler) reserve(leg int, a, b float64) { s.busy[leg] = append(s.busy[leg], span{a, b}) }

func (s *scheduler) lmFree(a, b float64) bool {
	for _, sp := range s.lms {
		if a < sp.b+lmClearance && sp.a-lmClearance < b {
			return false
		}
	}
	return true
}

// window returns a random start so that an episode of length d fits between
// the settle time and one second before the end of the night.
func (s *scheduler) window(d float64) (float64, bool) {
	lo, hi := s.sc.SettleS, s.night-d-1
	if hi <= lo {
		return 0, false
	}
	return lo + s.rng.Float64()*(hi-lo), true
}

func (s *scheduler) uniform(r Range) float64 { return r[0] + s.rng.Float64()*(r[1]-r[0]) }

func (s *scheduler) logUniform(r Range) float64 {
	if r[0] <= 0 {
		return s.uniform(r)
	}
	return math.Exp(math.Log(r[0]) + s.rng.Float64()*(math.Log(r[1])-math.Log(r[0])))
}

// poisson draws a Poisson count (Knuth's method; means here are small).
func (s *scheduler) poisson(mean float64) int {
	if mean <= 0 {
		return 0
	}
	if mean > 500 {
		return int(math.Round(mean + math.Sqrt(mean)*s.rng.NormFloat64()))
	}
	l, k, p := math.Exp(-mean), 0, 1.0
	for {
		p *= s.rng.Float64()
		if p <= l {
			return k
		}
		k++
	}
}

func (s *scheduler) sign() float64 {
	if s.rng.IntN(2) == 0 {
		return -1
	}
	return 1
}

// randomLeg picks a leg that has sensors, or -1.
func (s *scheduler) randomLeg(needEMG bool) int {
	var legs []int
	for leg := range 2 {
		if (needEMG && len(s.legChans[leg]) > 0) || (!needEMG && s.hasLeg[leg]) {
			legs = append(legs, leg)
		}
	}
	if len(legs) == 0 {
		return -1
	}
	return legs[s.rng.IntN(len(legs))]
}

// buildSchedule places every episode of a night. Cramps go first, so crowded
// scenarios keep their cramp count; then movements, PLM series, isolated leg
// movements and artifacts.
func buildSchedule(sc *Scenario, w *wearer, chans []chanInfo, sites []siteInfo, rng *rand.Rand) []episode {
	s := &scheduler{rng: rng, sc: sc, w: w, night: sc.Hours * 3600, frameS: math.Round(sc.Rate*sc.FrameMS/1000) / sc.Rate}
	for i, c := range chans {
		s.legChans[c.leg] = append(s.legChans[c.leg], i)
		s.hasLeg[c.leg] = true
	}
	for _, st := range sites {
		s.hasLeg[st.leg] = true
	}
	s.cramps(chans)
	s.movements()
	s.plmSeries()
	s.isolatedLMs()
	s.artifacts(chans)
	sort.SliceStable(s.eps, func(i, j int) bool { return s.eps[i].start < s.eps[j].start })
	return s.eps
}

func (s *scheduler) crampDuration() float64 {
	c := &s.sc.Cramps
	d := c.DurationMedianS * math.Exp(c.DurationSigma*s.rng.NormFloat64())
	return math.Min(math.Max(d, c.DurationS[0]), c.DurationS[1])
}

// crampChannel picks the cramping channel on leg by the scenario's muscle weights.
func (s *scheduler) crampChannel(leg int, chans []chanInfo) int {
	cands := s.legChans[leg]
	weights := make([]float64, len(cands))
	total := 0.0
	for i, ci := range cands {
		for _, mw := range s.sc.sortedMuscles() {
			if mw.m == chans[ci].ch.Muscle {
				weights[i] = mw.w
				total += mw.w
			}
		}
	}
	if total == 0 {
		return cands[s.rng.IntN(len(cands))]
	}
	x := s.rng.Float64() * total
	for i, w := range weights {
		if x < w {
			return cands[i]
		}
		x -= w
	}
	return cands[len(cands)-1]
}

func (s *scheduler) cramps(chans []chanInfo) {
	c := &s.sc.Cramps
	if s.randomLeg(true) < 0 {
		return
	}
	if c.EveryS > 0 {
		for k := 0; ; k++ {
			at := s.sc.SettleS + float64(k)*c.EveryS + (s.rng.Float64()*0.2-0.1)*c.EveryS
			d := s.crampDuration()
			if at+d > s.night-1 {
				return
			}
			at = math.Max(at, s.sc.SettleS)
			leg := s.randomLeg(true)
			if !s.free(leg, at, at+d) {
				leg = 1 - leg
			}
			if len(s.legChans[leg]) > 0 && s.free(leg, at, at+d) {
				s.addCramp(at, d, leg, chans)
			}
		}
	}
	for range s.poisson(c.PerNight) {
		d := s.crampDuration()
		for range maxTries {
			at, ok := s.window(d)
			if !ok {
				break
			}
			leg := s.randomLeg(true)
			if s.free(leg, at, at+d) {
				s.addCramp(at, d, leg, chans)
				break
			}
		}
	}
}

func (s *scheduler) addCramp(at, d float64, leg int, chans []chanInfo) {
	c := &s.sc.Cramps
	e := episode{kind: epCramp, start: at, end: at + d, ch: s.crampChannel(leg, chans)}
	e.legs[leg] = legPart{on: true, start: at, end: at + d}
	e.ramp = s.uniform(c.RampS)
	e.release = s.uniform(c.ReleaseS)
	// Short cramps still need a plateau: ramp and release share at most 60%.
	if k := 0.6 * d / (e.ramp + e.release); k < 1 {
		e.ramp *= k
		e.release *= k
	}
	e.amp = s.logUniform(c.PeakUV) * s.w.gain
	e.tilt = s.uniform(c.TiltDeg)
	plateau := d - e.ramp - e.release
	for range s.poisson(c.DipsPerMinute * plateau / 60) {
		width := 0.3 + 1.7*s.rng.Float64()
		e.dips = append(e.dips, dip{
			at:    at + e.ramp + s.rng.Float64()*plateau,
			width: math.Min(width, plateau/2),
			depth: 0.3 + 0.35*s.rng.Float64(),
		})
	}
	if s.rng.Float64() < c.ReactionProb {
		delay, rd := s.uniform(c.ReactionDelayS), s.uniform(c.ReactionS)
		// Only while the muscle is still contracted, before the relaxation.
		if at+delay+rd < e.end-e.release {
			e.react, e.reactD = at+delay, rd
			for range s.rng.IntN(3) {
				width := 0.02 + 0.08*s.rng.Float64()
				e.spikes = append(e.spikes, spike{
					at: e.react + s.rng.Float64()*(rd-width), width: width,
					amp: s.sign() * s.logUniform(s.sc.Movements.MotionSpikeUV), leg: leg,
				})
			}
		}
	}
	s.reserve(leg, e.start, e.end)
	s.eps = append(s.eps, e)
}

func (s *scheduler) movements() {
	m := &s.sc.Movements
	place := func(kind epKind, dr Range) {
		d := s.uniform(dr)
		for range maxTries {
			at, ok := s.window(d)
			if !ok {
				return
			}
			if !s.freeLegs(at, at+d) {
				continue
			}
			e := episode{kind: kind, start: at, end: at + d, ch: -1}
			var roll float64
			if kind == epTurn {
				roll = s.sign() * s.uniform(m.TurnRollDeg)
			} else {
				roll = s.uniform(Range{-90, 90})
				e.tilt = s.uniform(Range{40, 80})
			}
			for leg := range 2 {
				if !s.hasLeg[leg] {
					continue
				}
				e.legs[leg] = legPart{on: true, start: at, end: at + d,
					amp:  s.logUniform(m.EMGUV) * s.w.gain,
					roll: roll * (0.8 + 0.4*s.rng.Float64()),
				}
				s.reserve(leg, at, at+d)
			}
			n := int(math.Round(s.uniform(m.MotionSpikes)))
			for range n {
				width := 0.02 + 0.08*s.rng.Float64()
				e.spikes = append(e.spikes, spike{
					at:    at + s.rng.Float64()*math.Max(d-width, 0),
					width: width,
					amp:   s.sign() * s.logUniform(m.MotionSpikeUV),
					leg:   s.randomLeg(false),
				})
			}
			s.eps = append(s.eps, e)
			return
		}
	}
	for range s.poisson(m.TurnsPerNight) {
		place(epTurn, m.TurnS)
	}
	for range s.poisson(m.GetUpsPerNight) {
		place(epGetUp, m.GetUpS)
	}
	for range s.poisson(m.StretchesPerNight) {
		d := s.uniform(m.StretchS)
		for range maxTries {
			at, ok := s.window(d)
			if !ok {
				return
			}
			leg := s.randomLeg(true)
			if leg < 0 || !s.free(leg, at, at+d) {
				continue
			}
			e := episode{kind: epStretch, start: at, end: at + d, ch: -1}
			e.legs[leg] = legPart{on: true, start: at, end: at + d,
				amp:  s.logUniform(m.StretchUV) * s.w.gain,
				tilt: s.uniform(m.StretchDeg),
			}
			s.reserve(leg, at, at+d)
			s.eps = append(s.eps, e)
			break
		}
	}
}

// burst draws one leg movement's duration and level.
func (s *scheduler) burst(on float64) legPart {
	p := &s.sc.PLM
	var d float64
	if s.rng.Float64() < p.LongBurstFraction && p.BurstS[1] < 10 {
		d = s.uniform(Range{p.BurstS[1], 10})
	} else {
		d = s.logUniform(p.BurstS)
	}
	return legPart{on: true, start: on, end: on + d,
		amp:  s.logUniform(p.AmplitudeUV) * s.w.gain,
		tilt: s.uniform(p.DorsiflexionDeg),
	}
}

func (s *scheduler) plmSeries() {
	p := &s.sc.PLM
	if !s.w.plm || s.randomLeg(true) < 0 {
		return
	}
	for range s.poisson(p.SeriesPerNight) {
		n := int(math.Round(s.uniform(p.Movements)))
		mean := s.uniform(p.IntervalS)
		leg := s.randomLeg(true)
		// Lay the series out from 0, then shift it to where it fits.
		var moves []episode
		on := 0.0
		for i := range n {
			if i > 0 {
				prev := moves[i-1]
				iv := mean + p.JitterS*s.rng.NormFloat64()
				// Stay inside the scoring window (10-90 s onset to onset)
				// with a margin, and after the previous burst has ended.
				iv = math.Min(math.Max(iv, 11), 88)
				on = math.Max(prev.legs[leg].start+iv, prev.end+2)
			}
			e := episode{kind: epPLM, ch: -1}
			e.legs[leg] = s.burst(on)
			if other := 1 - leg; len(s.legChans[other]) > 0 && s.rng.Float64() < p.Bilateral {
				e.legs[other] = s.burst(math.Max(on+(s.rng.Float64()*0.8-0.4), 0))
			}
			e.start, e.end = legBounds(&e)
			moves = append(moves, e)
		}
		if len(moves) == 0 {
			continue
		}
		first, last := moves[0].start, 0.0
		for _, m := range moves {
			first = math.Min(first, m.start)
			last = math.Max(last, m.end)
		}
		d := last - first
		for range maxTries {
			at, ok := s.window(d)
			if !ok {
				break
			}
			if !s.freeLegs(at, at+d) || !s.lmFree(at, at+d) {
				continue
			}
			s.series++
			shift := at - first
			for _, m := range moves {
				m.start += shift
				m.end += shift
				for leg := range m.legs {
					m.legs[leg].start += shift
					m.legs[leg].end += shift
				}
				m.series = s.series
				s.eps = append(s.eps, m)
			}
			for leg := range 2 {
				if s.hasLeg[leg] {
					s.reserve(leg, at, at+d)
				}
			}
			s.lms = append(s.lms, span{at, at + d})
			break
		}
	}
}

func legBounds(e *episode) (start, end float64) {
	start, end = math.Inf(1), math.Inf(-1)
	for _, lp := range e.legs {
		if lp.on {
			start = math.Min(start, lp.start)
			end = math.Max(end, lp.end)
		}
	}
	return start, end
}

func (s *scheduler) isolatedLMs() {
	for range s.poisson(s.sc.PLM.IsolatedPerNight) {
		proto := s.burst(0)
		d := proto.end
		for range maxTries {
			at, ok := s.window(d)
			if !ok {
				return
			}
			leg := s.randomLeg(true)
			if !s.free(leg, at, at+d) || !s.lmFree(at, at+d) {
				continue
			}
			e := episode{kind: epLM, start: at, end: at + d, ch: -1}
			e.legs[leg] = proto
			e.legs[leg].start, e.legs[leg].end = at, at+d
			s.reserve(leg, at, at+d)
			s.lms = append(s.lms, span{at, at + d})
			s.eps = append(s.eps, e)
			break
		}
	}
}

func (s *scheduler) artifacts(chans []chanInfo) {
	a := &s.sc.Artifacts
	rail := s.sc.Wearer.RailUV
	perChannel := func(kind epKind, count int, dr Range, logDur bool) {
		if len(chans) == 0 {
			return
		}
		for range count {
			d := s.uniform(dr)
			if logDur {
				d = s.logUniform(dr)
			}
			for range maxTries {
				at, ok := s.window(d)
				if !ok {
					return
				}
				ch := s.rng.IntN(len(chans))
				leg := chans[ch].leg
				if !s.free(leg, at, at+d) {
					continue
				}
				e := episode{kind: kind, start: at, end: at + d, ch: ch}
				switch kind {
				case epLeadOff:
					// A floating electrode drifts towards a rail and picks up
					// broadband noise and a lot of hum.
					e.offset = s.sign() * rail * (0.4 + 0.55*s.rng.Float64())
					e.noise = s.logUniform(Range{30, 300})
					e.amp = s.logUniform(Range{50, 500})
				case epSaturation:
					e.freq = 1 + 3*s.rng.Float64()
					e.offset = s.sign()
				}
				s.reserve(leg, at, at+d)
				s.eps = append(s.eps, e)
				break
			}
		}
	}
	perChannel(epLeadOff, s.poisson(a.LeadOffPerNight), a.LeadOffS, true)
	perChannel(epFlat, s.poisson(a.FlatPerNight), a.FlatS, true)
	perChannel(epSaturation, s.poisson(a.SaturationPerNight), a.SaturationS, false)

	device := func(kind epKind, count int, dr Range) {
		for range count {
			d := s.logUniform(dr)
			for range maxTries {
				at, ok := s.window(d)
				if !ok {
					return
				}
				if kind == epGap {
					// Whole frames go missing: align the gap to the frame grid.
					at = math.Ceil(at/s.frameS) * s.frameS
					d = math.Max(1, math.Round(d/s.frameS)) * s.frameS
				}
				if !s.freeLegs(at, at+d) {
					continue
				}
				e := episode{kind: kind, start: at, end: at + d, ch: -1}
				if kind == epHum {
					e.amp = s.uniform(a.HumUV)
				}
				for leg := range 2 {
					if s.hasLeg[leg] {
						e.legs[leg] = legPart{on: true, start: at, end: at + d}
						s.reserve(leg, at, at+d)
					}
				}
				s.eps = append(s.eps, e)
				break
			}
		}
	}
	device(epHum, s.poisson(a.HumPerNight), a.HumS)
	device(epGap, s.poisson(a.GapsPerNight), a.GapS)
}

package detect

import (
	"math"

	"github.com/crampwatch/crampwatch/wire"
)

// imuHighPassHz is the corner of the activity high-pass.
const imuHighPassHz = 3

// motionBlock is one block of an IMU site's features.
type motionBlock struct {
	t        int64      // block end, Unix µs
	activity float64    // high-passed acceleration RMS, g
	gyro     float64    // angular rate RMS, deg/s
	g        [3]float64 // mean acceleration (gravity direction when still), g
}

// imuSite turns one IMU's samples into block features and keeps a short
// history of them, so a burst's classification can look back to just before
// its onset.
type imuSite struct {
	site     wire.Site
	rate     float64
	blockLen int
	pos      int

	// hp removes gravity and slow posture changes from each acceleration
	// axis, leaving the jerks of moving limbs.
	hp       [3]biquad
	hpPrimed bool

	sumDyn2, sumGyr2 float64
	sumAcc           [3]float64
	n                int

	// Activity and angular rate are smoothed over about 0.3 s: a 5-sample
	// block at 50 Hz is too noisy to compare its maximum with a threshold,
	// and real movements last longer than that.
	dyn2, gyr2 float64
	smooth     float64

	ref       [3]float64 // resting orientation, for TiltDeg
	refPrimed bool
	refAlpha  float64

	until int64 // sample time up to which data has been processed

	hist  []motionBlock
	hpos  int
	hfill int
}

func newIMUSite(site wire.Site, cfg *Config) *imuSite {
	return &imuSite{
		site:     site,
		hist:     make([]motionBlock, int(math.Ceil(maxHistoryS*cfg.EnvelopeRate))+2),
		refAlpha: 1 - math.Exp(-1/(60*cfg.EnvelopeRate)),
		smooth:   1 - math.Exp(-1/(0.3*cfg.EnvelopeRate)),
	}
}

func (s *imuSite) setRate(cfg *Config, rate float64) {
	s.rate = rate
	s.blockLen = max(1, int(math.Round(rate/cfg.EnvelopeRate)))
	s.pos = 0
	// A 2nd-order high-pass at 3 Hz: a cramp's slow forced tilt (a few
	// degrees over a second) stays below it, the jerks of a leg movement or
	// of turning over pass.
	fc := math.Min(imuHighPassHz, 0.3*rate)
	for k := range s.hp {
		s.hp[k] = highpass(fc, rate, math.Sqrt2/2)
	}
	s.hpPrimed = false
	s.sumDyn2, s.sumGyr2, s.sumAcc, s.n = 0, 0, [3]float64{}, 0
}

// push processes one frame and calls emit for every finished block.
func (s *imuSite) push(cfg *Config, f *wire.IMUFrame, emit func(*imuSite, motionBlock)) {
	if f.Rate != s.rate {
		s.setRate(cfg, f.Rate)
	}
	n := min(len(f.Acc), len(f.Gyr))
	for i := 0; i < n; i++ {
		a, w := f.Acc[i], f.Gyr[i]
		if !s.hpPrimed {
			// Start in the steady state for the current posture, so gravity
			// does not ring through the filter as a step.
			for k := range s.hp {
				s.hp[k].z1, s.hp[k].z2 = -s.hp[k].b0*a[k], s.hp[k].b2*a[k]
			}
			s.hpPrimed = true
		}
		var dyn2 float64
		for k := 0; k < 3; k++ {
			q := &s.hp[k]
			d := q.b0*a[k] + q.z1
			q.z1 = q.b1*a[k] - q.a1*d + q.z2
			q.z2 = q.b2*a[k] - q.a2*d
			dyn2 += d * d
			s.sumAcc[k] += a[k]
		}
		s.sumDyn2 += dyn2
		s.sumGyr2 += w[0]*w[0] + w[1]*w[1] + w[2]*w[2]
		s.n++
		s.pos++
		if s.pos == s.blockLen {
			t := f.T0 + wire.SpanMicros(i+1, f.Rate)
			emit(s, s.endBlock(cfg, t))
		}
	}
	if end := f.End(); end > s.until {
		s.until = end
	}
}

func (s *imuSite) endBlock(cfg *Config, t int64) motionBlock {
	nf := float64(s.n)
	s.dyn2 += s.smooth * (s.sumDyn2/nf - s.dyn2)
	s.gyr2 += s.smooth * (s.sumGyr2/nf - s.gyr2)
	b := motionBlock{
		t:        t,
		activity: math.Sqrt(s.dyn2),
		gyro:     math.Sqrt(s.gyr2),
		g:        [3]float64{s.sumAcc[0] / nf, s.sumAcc[1] / nf, s.sumAcc[2] / nf},
	}
	s.sumDyn2, s.sumGyr2, s.sumAcc, s.n, s.pos = 0, 0, [3]float64{}, 0, 0
	// The resting orientation follows the segment slowly, and only while it
	// is still, so TiltDeg reads "how far from the sleeping posture".
	if !s.refPrimed {
		s.ref = b.g
		s.refPrimed = true
	} else if b.activity < cfg.MoveActivityG/4 && b.gyro < cfg.MoveGyroDPS/4 {
		for k := range s.ref {
			s.ref[k] += s.refAlpha * (b.g[k] - s.ref[k])
		}
	}
	s.hist[s.hpos] = b
	s.hpos = (s.hpos + 1) % len(s.hist)
	s.hfill = min(s.hfill+1, len(s.hist))
	return b
}

// tilt is the angle of the block's gravity from the resting orientation.
func (s *imuSite) tilt(b *motionBlock) float64 { return angleDeg(b.g, s.ref) }

func angleDeg(a, b [3]float64) float64 {
	na := math.Sqrt(a[0]*a[0] + a[1]*a[1] + a[2]*a[2])
	nb := math.Sqrt(b[0]*b[0] + b[1]*b[1] + b[2]*b[2])
	if na == 0 || nb == 0 {
		return 0
	}
	c := (a[0]*b[0] + a[1]*b[1] + a[2]*b[2]) / (na * nb)
	return math.Acos(math.Max(-1, math.Min(1, c))) * 180 / math.Pi
}

// motionAcc accumulates the motion seen during a burst.
type motionAcc struct {
	activity, gyro, tilt float64
	g0                   [3]float64 // orientation at the start of the scan
	primed               bool
	scanned              int64 // blocks up to this time have been looked at
}

// scan folds in the site's blocks ending in (m.scanned, to].
func (s *imuSite) scan(m *motionAcc, from, to int64) {
	for i := 0; i < s.hfill; i++ {
		// Oldest first, so g0 is the orientation at the start.
		b := &s.hist[(s.hpos-s.hfill+i+len(s.hist))%len(s.hist)]
		if b.t <= from || b.t > to {
			continue
		}
		if !m.primed {
			m.g0 = b.g
			m.primed = true
		}
		m.activity = math.Max(m.activity, b.activity)
		m.gyro = math.Max(m.gyro, b.gyro)
		m.tilt = math.Max(m.tilt, angleDeg(b.g, m.g0))
	}
}

// moved tells whether the accumulated motion is a movement.
func (m *motionAcc) moved(cfg *Config) bool {
	return m.activity >= cfg.MoveActivityG || m.gyro >= cfg.MoveGyroDPS || m.tilt >= cfg.MoveTiltDeg
}

// margin is how far beyond the movement thresholds the motion went (1 = at
// a threshold).
func (m *motionAcc) margin(cfg *Config) float64 {
	return math.Max(m.activity/cfg.MoveActivityG, math.Max(m.gyro/cfg.MoveGyroDPS, m.tilt/cfg.MoveTiltDeg))
}

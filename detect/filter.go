package detect

import (
	"math"
	"math/cmplx"
)

// biquad is one second-order IIR section in transposed direct form II,
// normalised so a0 = 1. Transposed DF-II keeps two state values and behaves
// well numerically in float64 at the rates we use.
type biquad struct {
	b0, b1, b2, a1, a2 float64
	z1, z2             float64
}

// run filters x in place. One loop per section keeps the coefficients and
// state in registers; the cascade is applied section by section over a block.
func (q *biquad) run(x []float64) {
	b0, b1, b2, a1, a2 := q.b0, q.b1, q.b2, q.a1, q.a2
	z1, z2 := q.z1, q.z2
	for i, v := range x {
		y := b0*v + z1
		z1 = b1*v - a1*y + z2
		z2 = b2*v - a2*y
		x[i] = y
	}
	q.z1, q.z2 = flush(z1), flush(z2)
}

// response returns the complex gain of the section at f Hz for sample rate fs.
func (q *biquad) response(f, fs float64) complex128 {
	z1 := cmplx.Exp(complex(0, -2*math.Pi*f/fs)) // z^-1
	z2 := z1 * z1
	num := complex(q.b0, 0) + complex(q.b1, 0)*z1 + complex(q.b2, 0)*z2
	den := 1 + complex(q.a1, 0)*z1 + complex(q.a2, 0)*z2
	return num / den
}

// The RBJ audio-EQ-cookbook sections below are the bilinear transform of
// the analogue prototypes with the frequency pre-warped at f0, so cascading
// low- or high-pass sections with Butterworth Q values gives an exact
// digital Butterworth filter.

func lowpass(f0, fs, q float64) biquad {
	w := 2 * math.Pi * f0 / fs
	c, s := math.Cos(w), math.Sin(w)
	alpha := s / (2 * q)
	a0 := 1 + alpha
	return biquad{
		b0: (1 - c) / 2 / a0, b1: (1 - c) / a0, b2: (1 - c) / 2 / a0,
		a1: -2 * c / a0, a2: (1 - alpha) / a0,
	}
}

func highpass(f0, fs, q float64) biquad {
	w := 2 * math.Pi * f0 / fs
	c, s := math.Cos(w), math.Sin(w)
	alpha := s / (2 * q)
	a0 := 1 + alpha
	return biquad{
		b0: (1 + c) / 2 / a0, b1: -(1 + c) / a0, b2: (1 + c) / 2 / a0,
		a1: -2 * c / a0, a2: (1 - alpha) / a0,
	}
}

func notch(f0, fs, q float64) biquad {
	w := 2 * math.Pi * f0 / fs
	c, s := math.Cos(w), math.Sin(w)
	alpha := s / (2 * q)
	a0 := 1 + alpha
	return biquad{
		b0: 1 / a0, b1: -2 * c / a0, b2: 1 / a0,
		a1: -2 * c / a0, a2: (1 - alpha) / a0,
	}
}

// butterworthQ returns the Q of section k (0-based) of an even-order
// Butterworth filter: the poles sit on the unit circle at angles
// (2k+1)pi/(2n) from the negative real axis.
func butterworthQ(order, k int) float64 {
	return 1 / (2 * math.Cos(float64(2*k+1)*math.Pi/float64(2*order)))
}

// Fixed section counts keep the filter state inside the channel struct, so
// designing or redesigning never allocates.
const (
	bandOrder  = 4         // per edge: 4th-order high-pass and 4th-order low-pass
	bandStages = bandOrder // two high-pass plus two low-pass sections
	maxNotches = 3
)

// bandpass is the EMG band-pass: a Butterworth high-pass cascaded with a
// Butterworth low-pass.
type bandpass struct {
	st        [bandStages]biquad
	low, high float64 // edges, Hz
}

// design sets the band for sample rate fs, clipping the upper edge below
// Nyquist, and clears the state.
func (b *bandpass) design(cfg *Config, fs float64) {
	b.low = cfg.BandLowHz
	b.high = math.Min(cfg.BandHighHz, cfg.MaxHighFraction*fs)
	for k := 0; k < bandOrder/2; k++ {
		q := butterworthQ(bandOrder, k)
		b.st[k] = highpass(b.low, fs, q)
		b.st[bandOrder/2+k] = lowpass(b.high, fs, q)
	}
}

// run filters x in place through all four sections in one pass. Fusing the
// sections lets the CPU overlap section k of one sample with section k-1 of
// the next, instead of waiting on each section's recurrence in turn; this
// is the hottest loop of the service.
func (b *bandpass) run(x []float64) {
	p, q, r, s := &b.st[0], &b.st[1], &b.st[2], &b.st[3]
	p1, p2, q1, q2 := p.z1, p.z2, q.z1, q.z2
	r1, r2, s1, s2 := r.z1, r.z2, s.z1, s.z2
	for i, v := range x {
		y := p.b0*v + p1
		p1 = p.b1*v - p.a1*y + p2
		p2 = p.b2*v - p.a2*y
		v = y
		y = q.b0*v + q1
		q1 = q.b1*v - q.a1*y + q2
		q2 = q.b2*v - q.a2*y
		v = y
		y = r.b0*v + r1
		r1 = r.b1*v - r.a1*y + r2
		r2 = r.b2*v - r.a2*y
		v = y
		y = s.b0*v + s1
		s1 = s.b1*v - s.a1*y + s2
		s2 = s.b2*v - s.a2*y
		x[i] = y
	}
	p.z1, p.z2, q.z1, q.z2 = flush(p1), flush(p2), flush(q1), flush(q2)
	r.z1, r.z2, s.z1, s.z2 = flush(r1), flush(r2), flush(s1), flush(s2)
}

// flush zeroes tiny filter state: after a flat line the state decays into
// subnormal numbers, which are very slow on common CPUs.
func flush(v float64) float64 {
	if math.Abs(v) < 1e-30 {
		return 0
	}
	return v
}

// response is the band-pass gain magnitude at f Hz.
func (b *bandpass) response(f, fs float64) float64 {
	h := complex(1, 0)
	for i := range b.st {
		h *= b.st[i].response(f, fs)
	}
	return cmplx.Abs(h)
}

// notches removes the mains fundamental and harmonics below the band's
// upper edge.
type notches struct {
	st    [maxNotches]biquad
	n     int
	mains float64
}

func (m *notches) design(cfg *Config, fs, mains, high float64) {
	m.n = 0
	m.mains = mains
	for h := 1; h <= cfg.NotchHarmonics && h <= maxNotches; h++ {
		f := float64(h) * mains
		if f >= high {
			break
		}
		m.st[m.n] = notch(f, fs, cfg.NotchQ)
		m.n++
	}
}

// run applies the notches in place; two or three sections (the usual
// cases) are fused like the band-pass.
func (m *notches) run(x []float64) {
	switch m.n {
	case 2:
		m.run2(x)
	case 3:
		m.run3(x)
	default:
		for i := 0; i < m.n; i++ {
			m.st[i].run(x)
		}
	}
}

func (m *notches) run2(x []float64) {
	p, q := &m.st[0], &m.st[1]
	p1, p2, q1, q2 := p.z1, p.z2, q.z1, q.z2
	for i, v := range x {
		y := p.b0*v + p1
		p1 = p.b1*v - p.a1*y + p2
		p2 = p.b2*v - p.a2*y
		v = y
		y = q.b0*v + q1
		q1 = q.b1*v - q.a1*y + q2
		q2 = q.b2*v - q.a2*y
		x[i] = y
	}
	p.z1, p.z2, q.z1, q.z2 = flush(p1), flush(p2), flush(q1), flush(q2)
}

func (m *notches) run3(x []float64) {
	p, q, r := &m.st[0], &m.st[1], &m.st[2]
	p1, p2, q1, q2, r1, r2 := p.z1, p.z2, q.z1, q.z2, r.z1, r.z2
	for i, v := range x {
		y := p.b0*v + p1
		p1 = p.b1*v - p.a1*y + p2
		p2 = p.b2*v - p.a2*y
		v = y
		y = q.b0*v + q1
		q1 = q.b1*v - q.a1*y + q2
		q2 = q.b2*v - q.a2*y
		v = y
		y = r.b0*v + r1
		r1 = r.b1*v - r.a1*y + r2
		r2 = r.b2*v - r.a2*y
		x[i] = y
	}
	p.z1, p.z2, q.z1, q.z2 = flush(p1), flush(p2), flush(q1), flush(q2)
	r.z1, r.z2 = flush(r1), flush(r2)
}

func (m *notches) response(f, fs float64) float64 {
	h := complex(1, 0)
	for i := 0; i < m.n; i++ {
		h *= m.st[i].response(f, fs)
	}
	return cmplx.Abs(h)
}

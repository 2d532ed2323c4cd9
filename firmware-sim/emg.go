package firmwaresim

import (
	"math"
	"math/rand/v2"

	"github.com/crampwatch/crampwatch/wire"
)

// biquad is a second-order IIR section in transposed direct form II.
type biquad struct {
	b0, b1, b2, a1, a2 float64
	z1, z2             float64
}

// lowpass and highpass design RBJ cookbook sections; two low-pass sections
// with Q 0.5412 and 1.3066 make a 4th-order Butterworth.
func lowpass(fc, rate, q float64) biquad {
	w := 2 * math.Pi * fc / rate
	cw, alpha := math.Cos(w), math.Sin(w)/(2*q)
	a0 := 1 + alpha
	return biquad{
		b0: (1 - cw) / 2 / a0, b1: (1 - cw) / a0, b2: (1 - cw) / 2 / a0,
		a1: -2 * cw / a0, a2: (1 - alpha) / a0,
	}
}

func highpass(fc, rate, q float64) biquad {
	w := 2 * math.Pi * fc / rate
	cw, alpha := math.Cos(w), math.Sin(w)/(2*q)
	a0 := 1 + alpha
	return biquad{
		b0: (1 + cw) / 2 / a0, b1: -(1 + cw) / a0, b2: (1 + cw) / 2 / a0,
		a1: -2 * cw / a0, a2: (1 - alpha) / a0,
	}
}

func (q *biquad) step(x float64) float64 {
	y := q.b0*x + q.z1
	q.z1 = q.b1*x - q.a1*y + q.z2
	q.z2 = q.b2*x - q.a2*y
	return y
}

// uniformScale turns an int32 into a uniform value of unit variance:
// uniform on [-sqrt(3), sqrt(3)). Band-pass filtering makes the sum of many
// such values Gaussian, and it costs a fraction of a Gaussian draw.
const uniformScale = 1.7320508075688772 / (1 << 31)

// Surface EMG band: most of its power lies between these frequencies.
const (
	emgLowHz  = 20
	emgHighHz = 250
)

// controlHz is the rate at which slow quantities (envelope, wander, hum
// level) are computed; samples in between are interpolated linearly.
const controlHz = 100

// ctrl is the slowly varying part of one channel at one instant.
type ctrl struct {
	amp    float64 // RMS of the band-limited EMG, uV
	wander float64 // baseline, uV
	hum    float64 // mains hum amplitude, uV
}

// emgChan is one channel's generator state.
type emgChan struct {
	ch        wire.Channel
	leg       int
	hp        biquad
	lp1, lp2  biquad
	norm      float64 // 1 / RMS of the filter chain's output for unit-variance input
	rest      float64 // resting level, uV RMS, gain applied
	restPhase float64
	wanderA   [3]float64
	wanderW   [3]float64 // rad/s
	wanderP   [3]float64
	hum       float64    // normal hum amplitude, uV
	humA      [2]float64 // fundamental phase: hum = A0*cos + A1*sin
	hum3A     [2]float64 // third harmonic
	sensor    float64    // white amplifier noise, uV RMS
	mod, mod2 float64    // AR(1) modulation processes, unit variance
	prev      ctrl
	havePrev  bool
	last      float64 // last output sample (quantised), for flat lines
}

// emgGen produces one device's EMG frames.
type emgGen struct {
	rate      float64
	frameLen  int
	ctrlK     int   // control intervals per frame
	n0        int64 // index of the next frame's first sample
	chans     []emgChan
	pcg       *rand.PCG  // sample noise
	ctl       *rand.Rand // control-rate processes
	modA      [2]float64 // AR(1) coefficients of mod and mod2
	modB      [2]float64
	crosstalk float64
	restMod   float64
	rail      float64
	lsb       float64
	invLSB    float64
	humRot    [2]float64 // cos and sin of the per-sample rotation of the fundamental
	hum3Rot   [2]float64
	ph, ph3   [2]float64 // phasor state
	humC      []float64  // per-frame phasor buffers: fundamental cos, sin, third cos, sin
	humS      []float64
	hum3C     []float64
	hum3S     []float64
	eps       []episode
	next      int
	active    []*episode
}

func newEMGGen(sc *Scenario, w *wearer, chans []chanInfo, eps []episode, seed uint64) *emgGen {
	g := &emgGen{
		rate:      sc.Rate,
		frameLen:  int(math.Round(sc.Rate * sc.FrameMS / 1000)),
		ctrlK:     max(1, int(math.Round(sc.FrameMS/1000*controlHz))),
		pcg:       rand.NewPCG(seed, streamEMG),
		ctl:       rand.New(rand.NewPCG(seed, streamControl)),
		crosstalk: sc.Cramps.Crosstalk,
		restMod:   sc.Wearer.RestModulation,
		rail:      sc.Wearer.RailUV,
		lsb:       sc.Wearer.LSBUV,
		eps:       eps,
		active:    make([]*episode, 0, 16),
	}
	if g.lsb > 0 {
		g.invLSB = 1 / g.lsb
	}
	g.ctrlK = min(g.ctrlK, g.frameLen)
	dt := sc.FrameMS / 1000 / float64(g.ctrlK)
	for i, tau := range [2]float64{0.5, 5} {
		a := math.Exp(-dt / tau)
		g.modA[i], g.modB[i] = a, math.Sqrt(1-a*a)
	}
	wr := 2 * math.Pi * sc.Mains / sc.Rate
	g.humRot = [2]float64{math.Cos(wr), math.Sin(wr)}
	g.hum3Rot = [2]float64{math.Cos(3 * wr), math.Sin(3 * wr)}
	g.ph, g.ph3 = [2]float64{1, 0}, [2]float64{1, 0}
	g.humC = make([]float64, g.frameLen)
	g.humS = make([]float64, g.frameLen)
	g.hum3C = make([]float64, g.frameLen)
	g.hum3S = make([]float64, g.frameLen)

	// The band is 20-250 Hz, narrowed to 40% of the sample rate at low rates
	// so the low-pass stays well below Nyquist.
	hi := math.Min(emgHighHz, 0.4*sc.Rate)
	proto := [3]biquad{
		highpass(emgLowHz, sc.Rate, math.Sqrt2/2),
		lowpass(hi, sc.Rate, 0.5412),
		lowpass(hi, sc.Rate, 1.3066),
	}
	norm := 1 / math.Sqrt(impulseEnergy(proto))
	third := 3*sc.Mains < 0.45*sc.Rate
	for i, ci := range chans {
		c := emgChan{
			ch: ci.ch, leg: ci.leg,
			hp: proto[0], lp1: proto[1], lp2: proto[2],
			norm:      norm,
			rest:      w.rest[i],
			restPhase: w.restPhase[i],
			wanderA:   w.wanderA[i],
			wanderW:   w.wanderW[i],
			wanderP:   w.wanderP[i],
			hum:       w.hum[i],
			sensor:    w.sensor[i],
		}
		c.humA = [2]float64{math.Cos(w.humPhase[i]), math.Sin(w.humPhase[i])}
		if third {
			// The third harmonic (transformers, dimmers) is a fraction of the fundamental.
			p := w.humPhase[i] * 3.7
			c.hum3A = [2]float64{0.3 * math.Cos(p), 0.3 * math.Sin(p)}
		}
		g.chans = append(g.chans, c)
	}
	return g
}

// impulseEnergy returns the sum of squares of the impulse response of a
// cascade of sections: the output variance for unit-variance white input.
// It stops once the response has decayed, before it turns subnormal (which
// is very slow arithmetic).
func impulseEnergy(qs [3]biquad) float64 {
	e := 0.0
	for n := range 1 << 20 {
		x := 0.0
		if n == 0 {
			x = 1
		}
		for i := range qs {
			x = qs[i].step(x)
		}
		e += x * x
		if n > 64 && x*x < 1e-18*e && math.Abs(qs[0].z1)+math.Abs(qs[2].z1) < 1e-12 {
			break
		}
	}
	return e
}

// sampleTime returns the time of sample n in seconds since the start of the night.
func (g *emgGen) sampleTime(n int64) float64 { return float64(n) / g.rate }

// updateActive keeps g.active to the episodes overlapping [t0, t1).
func updateActive(active []*episode, eps []episode, next *int, t0, t1 float64) []*episode {
	kept := active[:0]
	for _, e := range active {
		if e.end > t0 {
			kept = append(kept, e)
		}
	}
	for *next < len(eps) && eps[*next].start < t1 {
		if eps[*next].end > t0 {
			kept = append(kept, &eps[*next])
		}
		*next++
	}
	return kept
}

// fill generates the next frame's samples into f.Data, which must hold one
// row of frameLen samples per channel.
func (g *emgGen) fill(f *wire.EMGFrame) {
	n := g.frameLen
	t0, t1 := g.sampleTime(g.n0), g.sampleTime(g.n0+int64(n))
	g.active = updateActive(g.active, g.eps, &g.next, t0, t1)

	// Mains phasors for the frame, shared by all channels. Renormalised once
	// per frame so rounding never lets the amplitude drift over a night.
	ph, ph3 := g.ph, g.ph3
	for j := range n {
		g.humC[j], g.humS[j] = ph[0], ph[1]
		g.hum3C[j], g.hum3S[j] = ph3[0], ph3[1]
		ph = [2]float64{ph[0]*g.humRot[0] - ph[1]*g.humRot[1], ph[1]*g.humRot[0] + ph[0]*g.humRot[1]}
		ph3 = [2]float64{ph3[0]*g.hum3Rot[0] - ph3[1]*g.hum3Rot[1], ph3[1]*g.hum3Rot[0] + ph3[0]*g.hum3Rot[1]}
	}
	r := math.Hypot(ph[0], ph[1])
	r3 := math.Hypot(ph3[0], ph3[1])
	g.ph = [2]float64{ph[0] / r, ph[1] / r}
	g.ph3 = [2]float64{ph3[0] / r3, ph3[1] / r3}

	for ci := range g.chans {
		c := &g.chans[ci]
		out := f.Data[ci][:n]
		g.synth(c, ci, out)
		g.artifacts(c, ci, out, t0)
		g.finish(c, ci, out, t0)
	}
	g.n0 += int64(n)
}

// synth writes band-limited EMG, wander, hum and sensor noise into out.
func (g *emgGen) synth(c *emgChan, ci int, out []float64) {
	n := len(out)
	if !c.havePrev {
		c.prev = g.control(c, ci, g.sampleTime(g.n0))
		c.havePrev = true
	}
	c0 := c.prev
	hp, lp1, lp2 := c.hp, c.lp1, c.lp2
	hA0, hA1, h3A0, h3A1 := c.humA[0], c.humA[1], c.hum3A[0], c.hum3A[1]
	sensor := c.sensor * uniformScale
	for k := range g.ctrlK {
		j0, j1 := k*n/g.ctrlK, (k+1)*n/g.ctrlK
		c1 := g.control(c, ci, g.sampleTime(g.n0+int64(j1)))
		inv := 1 / float64(j1-j0)
		a, da := c0.amp*c.norm, (c1.amp-c0.amp)*c.norm*inv
		w, dw := c0.wander, (c1.wander-c0.wander)*inv
		h, dh := c0.hum, (c1.hum-c0.hum)*inv
		for j := j0; j < j1; j++ {
			rnd := g.pcg.Uint64()
			x := float64(int32(uint32(rnd))) * uniformScale
			y := hp.step(x)
			y = lp1.step(y)
			y = lp2.step(y)
			hum := hA0*g.humC[j] + hA1*g.humS[j] + h3A0*g.hum3C[j] + h3A1*g.hum3S[j]
			out[j] = a*y + w + h*hum + sensor*float64(int32(rnd>>32))
			a += da
			w += dw
			h += dh
		}
		c0 = c1
	}
	c.hp, c.lp1, c.lp2 = hp, lp1, lp2
	c.prev = c0
}

// raisedCos is 0 at u<=0, 1 at u>=1, and a half cosine in between.
func raisedCos(u float64) float64 {
	if u <= 0 {
		return 0
	}
	if u >= 1 {
		return 1
	}
	return 0.5 - 0.5*math.Cos(math.Pi*u)
}

// edges is 1 inside [a, b) with raised-cosine edges of length r inside it.
func edges(t, a, b, r float64) float64 {
	if t < a || t >= b {
		return 0
	}
	return raisedCos((t-a)/r) * raisedCos((b-t)/r)
}

// crampLevel is a cramp's intensity at t relative to its level: onset ramp,
// plateau with dips, relaxation.
func crampLevel(e *episode, t float64) float64 {
	if t < e.start || t >= e.end {
		return 0
	}
	v := raisedCos((t-e.start)/e.ramp) * raisedCos((e.end-t)/e.release)
	for _, d := range e.dips {
		if u := (t - d.at) / d.width; u >= 0 && u < 1 {
			s := math.Sin(math.Pi * u)
			v *= 1 - d.depth*s*s
		}
	}
	return v
}

// moveLevel is a movement's EMG envelope shape on one leg.
func moveLevel(e *episode, lp *legPart, t float64) float64 {
	if t < lp.start || t >= lp.end {
		return 0
	}
	switch e.kind {
	case epTurn:
		return math.Sqrt(math.Sin(math.Pi * (t - lp.start) / (lp.end - lp.start)))
	case epStretch:
		return edges(t, lp.start, lp.end, 0.4)
	}
	return edges(t, lp.start, lp.end, 0.5)
}

// control computes a channel's slow quantities at time t and advances its
// modulation processes by one control step.
func (g *emgGen) control(c *emgChan, ci int, t float64) ctrl {
	c.mod = g.modA[0]*c.mod + g.modB[0]*g.ctl.NormFloat64()
	c.mod2 = g.modA[1]*c.mod2 + g.modB[1]*g.ctl.NormFloat64()
	// Resting tone follows the sleep cycle (about 90 minutes).
	rest := c.rest * (1 + g.restMod*math.Sin(2*math.Pi*t/5400+c.restPhase))
	power := rest * rest
	hum := c.hum
	for _, e := range g.active {
		switch e.kind {
		case epCramp:
			if e.legs[c.leg].on {
				lv := crampLevel(e, t)
				if lv == 0 {
					continue
				}
				m := math.Max(1+0.15*c.mod+0.2*c.mod2, 0.35)
				a := e.amp * lv * m
				if e.ch != ci {
					a *= g.crosstalk
				}
				power += a * a
			}
		case epPLM, epLM:
			lp := &e.legs[c.leg]
			if lp.on {
				a := lp.amp * edges(t, lp.start, lp.end, 0.1) * math.Max(1+0.2*c.mod, 0.3)
				power += a * a
			}
		case epTurn, epGetUp, epStretch:
			lp := &e.legs[c.leg]
			if lp.on {
				a := lp.amp * moveLevel(e, lp, t) * math.Max(1+0.35*c.mod, 0.2)
				power += a * a
			}
		case epHum:
			hum += e.amp * edges(t, e.start, e.end, 0.3)
		}
	}
	wander := 0.0
	for i := range c.wanderA {
		wander += c.wanderA[i] * math.Sin(c.wanderW[i]*t+c.wanderP[i])
	}
	return ctrl{amp: math.Sqrt(power), wander: wander, hum: hum}
}

// window returns the sample indices of out (starting at time t0) inside [a, b).
func (g *emgGen) window(t0 float64, n int, a, b float64) (int, int) {
	j0 := int(math.Ceil((a - t0) * g.rate))
	j1 := int(math.Ceil((b - t0) * g.rate))
	return max(j0, 0), min(j1, n)
}

// artifacts overlays motion spikes, lead-off and saturation on out.
func (g *emgGen) artifacts(c *emgChan, ci int, out []float64, t0 float64) {
	n := len(out)
	for _, e := range g.active {
		switch e.kind {
		case epTurn, epGetUp, epCramp:
			for _, s := range e.spikes {
				if s.leg != c.leg {
					continue
				}
				j0, j1 := g.window(t0, n, s.at, s.at+s.width)
				for j := j0; j < j1; j++ {
					t := t0 + float64(j)/g.rate
					out[j] += s.amp * math.Sin(math.Pi*(t-s.at)/s.width)
				}
			}
		case epLeadOff:
			if e.ch != ci {
				continue
			}
			j0, j1 := g.window(t0, n, e.start, e.end)
			for j := j0; j < j1; j++ {
				rnd := g.pcg.Uint64()
				hum := c.humA[0]*g.humC[j] + c.humA[1]*g.humS[j]
				out[j] = e.offset + e.noise*float64(int32(uint32(rnd)))*uniformScale + e.amp*hum
			}
		case epSaturation:
			if e.ch != ci {
				continue
			}
			// A large low-frequency swing that the amplifier clips at both rails.
			j0, j1 := g.window(t0, n, e.start, e.end)
			for j := j0; j < j1; j++ {
				t := t0 + float64(j)/g.rate
				out[j] += e.offset * 3 * g.rail * math.Sin(2*math.Pi*e.freq*(t-e.start)+0.3)
			}
		}
	}
}

// finish clips to the rails, quantises, and applies flat lines, which hold
// the last quantised value exactly.
func (g *emgGen) finish(c *emgChan, ci int, out []float64, t0 float64) {
	rail := g.rail
	if g.invLSB > 0 {
		inv := g.invLSB
		for j, v := range out {
			v = math.Max(-rail, math.Min(rail, v))
			out[j] = math.Round(v*inv) / inv
		}
	} else {
		for j, v := range out {
			out[j] = math.Max(-rail, math.Min(rail, v))
		}
	}
	for _, e := range g.active {
		if e.kind != epFlat || e.ch != ci {
			continue
		}
		j0, j1 := g.window(t0, len(out), e.start, e.end)
		hold := c.last
		if j0 > 0 {
			hold = out[j0-1]
		}
		for j := j0; j < j1; j++ {
			out[j] = hold
		}
	}
	if len(out) > 0 {
		c.last = out[len(out)-1]
	}
}

package detect

import (
	"math"
	"math/rand/v2"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/crampwatch/crampwatch/wire"
)

// This file synthesizes nights for the tests: resting EMG as white noise,
// muscle activity as amplitude-modulated noise, mains hum, IMU posture and
// rotations, and artifacts, delivered as frames in arrival order.

const t0 = 1_763_946_000_000_000 // an arbitrary night, Unix µs

var (
	calfL  = wire.Channel{Muscle: wire.Calf, Side: wire.Left}
	calfR  = wire.Channel{Muscle: wire.Calf, Side: wire.Right}
	hamL   = wire.Channel{Muscle: wire.Hamstring, Side: wire.Left}
	shankL = wire.Site{Segment: wire.Shank, Side: wire.Left}
	shankR = wire.Site{Segment: wire.Shank, Side: wire.Right}
)

// burstSpec adds activity of RMS amp uV from start for dur seconds, with
// linear ramps of ramp seconds up and 0.3 s down.
// move is the leg's jerk (g RMS per axis) during the burst, as a leg
// movement (PLM) makes it.
type burstSpec struct {
	start, dur, amp, ramp float64
	move                  float64
}

func (b burstSpec) envelope(t float64) float64 {
	if t < b.start || t > b.start+b.dur {
		return 0
	}
	a := b.amp
	if b.ramp > 0 && t < b.start+b.ramp {
		a *= (t - b.start) / b.ramp
	}
	if rest := b.start + b.dur - t; rest < 0.3 {
		a *= rest / 0.3
	}
	return a
}

// segment is a time span on one channel, for artifacts.
type segment struct {
	ch         wire.Channel
	start, dur float64
}

func (s segment) has(ch wire.Channel, t float64) bool {
	return s.ch == ch && t >= s.start && t < s.start+s.dur
}

// rotation turns a leg's shank by deg degrees about its long axis over dur
// seconds (turning over in bed).
type rotation struct {
	side       wire.Side
	start, dur float64
	deg        float64
}

type chanSpec struct {
	id     wire.Channel
	bursts []burstSpec
}

type night struct {
	rate      float64
	durS      float64
	gain      float64 // 0 means 1
	restUV    float64 // 0 means 3
	humUV     float64
	humHz     float64
	strongHum []segment // segments with 2000 uV hum at humHz
	chans     []chanSpec
	sites     []wire.Site
	moves     []rotation
	flat      []segment
	rail      []segment // amplifier stuck at +8 mV
	clip      []segment // wild signal clipped at +-3 mV
	leadOff   []segment // status lead-off, signal drifts to 300 mV DC
	seed      uint64
}

// recorder is an Output that keeps what it gets.
type recorder struct {
	events    []Event
	envelopes int
	motions   int
	lastEnv   map[wire.Channel]Envelope
}

func (r *recorder) Event(e Event) { r.events = append(r.events, e) }
func (r *recorder) Envelope(e Envelope) {
	r.envelopes++
	if r.lastEnv == nil {
		r.lastEnv = map[wire.Channel]Envelope{}
	}
	r.lastEnv[e.Channel] = e
}
func (r *recorder) Motion(Motion) { r.motions++ }

func (r *recorder) count(k Kind, s State) int {
	n := 0
	for _, e := range r.events {
		if e.Kind == k && e.State == s {
			n++
		}
	}
	return n
}

func (r *recorder) kinds(k Kind) []Event {
	var out []Event
	for _, e := range r.events {
		if e.Kind == k {
			out = append(out, e)
		}
	}
	return out
}

// rel is seconds since t0 of a time.
func rel(t time.Time) float64 { return float64(t.UnixMicro()-t0) / 1e6 }

// run synthesizes the night and feeds it to a new detector.
func (n night) run(t testing.TB, cfg Config) *recorder {
	t.Helper()
	rec := &recorder{}
	d := New("dev1", cfg, rec)
	n.feed(d)
	return rec
}

func (n night) feed(d *Detector) {
	gain := n.gain
	if gain == 0 {
		gain = 1
	}
	restUV := n.restUV
	if restUV == 0 {
		restUV = 3
	}
	rng := rand.New(rand.NewPCG(n.seed, 42))
	emgLen := int(math.Round(n.rate / 10)) // 100 ms frames
	imuRate := 50.0
	imuLen := 10 // 200 ms frames

	ids := make([]wire.Channel, len(n.chans))
	data := make([][]float64, len(n.chans))
	shapers := make([]*shaper, len(n.chans))
	for i, c := range n.chans {
		ids[i] = c.id
		data[i] = make([]float64, emgLen)
		shapers[i] = &shaper{rest: newShaped(n.rate), act: newShaped(n.rate)}
	}
	emg := &wire.EMGFrame{Rate: n.rate, Unit: wire.Microvolt, Channels: ids, Data: data}
	imu := &wire.IMUFrame{Rate: imuRate, Acc: make([][3]float64, imuLen), Gyr: make([][3]float64, imuLen)}

	emgN, imuN := 0, 0 // samples produced so far
	totalEMG := int(n.durS * n.rate)
	totalIMU := int(n.durS * imuRate)
	statusOff := map[wire.Channel]bool{}
	for emgN < totalEMG || imuN < totalIMU {
		emgEnd := float64(emgN+emgLen) / n.rate
		imuEnd := float64(imuN+imuLen) / imuRate
		if emgN < totalEMG && (imuN >= totalIMU || emgEnd <= imuEnd) {
			ts := float64(emgN) / n.rate
			// Status frames arrive with the data.
			var off []wire.Channel
			for _, c := range n.chans {
				on := false
				for _, s := range n.leadOff {
					if s.has(c.id, ts) {
						on = true
					}
				}
				if on {
					off = append(off, c.id)
				}
				if on != statusOff[c.id] {
					statusOff[c.id] = on
					d.LeadOff(t0+int64(ts*1e6), off)
				}
			}
			emg.Seq++
			emg.T0 = t0 + wire.SpanMicros(emgN, n.rate)
			for i, c := range n.chans {
				for k := 0; k < emgLen; k++ {
					tt := float64(emgN+k) / n.rate
					data[i][k] = n.emgSample(rng, shapers[i], c, tt, restUV, gain)
				}
			}
			d.EMG(emg)
			emgN += emgLen
			continue
		}
		for _, site := range n.sites {
			imu.Seq++
			imu.T0 = t0 + wire.SpanMicros(imuN, imuRate)
			imu.Site = site
			for k := 0; k < imuLen; k++ {
				tt := float64(imuN+k) / imuRate
				imu.Acc[k], imu.Gyr[k] = n.imuSample(rng, site, tt)
			}
			d.IMU(imu)
		}
		imuN += imuLen
	}
	d.Close(t0 + int64(n.durS*1e6))
}

func (n night) emgSample(rng *rand.Rand, st *shaper, c chanSpec, t, restUV, gain float64) float64 {
	// Rails and lead-off levels belong to the amplifier: gain does not scale them.
	for _, s := range n.flat {
		if s.has(c.id, t) {
			return 0
		}
	}
	for _, s := range n.rail {
		if s.has(c.id, t) {
			return 8000
		}
	}
	for _, s := range n.leadOff {
		if s.has(c.id, t) {
			return 300000 + 50*rng.NormFloat64()
		}
	}
	for _, s := range n.clip {
		if s.has(c.id, t) {
			// A motion artifact swings the amplifier into its rails.
			return math.Max(-3000, math.Min(3000, 20000*math.Sin(2*math.Pi*2*t)+100*rng.NormFloat64()))
		}
	}
	// Surface EMG is band-limited by tissue whatever the sample rate:
	// shape the noise so its RMS in uV means the same at every rate.
	x := restUV * st.rest.next(rng.NormFloat64())
	var a float64
	for _, b := range c.bursts {
		a += b.envelope(t)
	}
	x += a * st.act.next(rng.NormFloat64())
	x *= gain
	if n.humUV > 0 {
		x += n.humUV * math.Sqrt2 * math.Sin(2*math.Pi*n.humHz*t)
	}
	for _, s := range n.strongHum {
		if s.has(c.id, t) {
			x += 2000 * math.Sqrt2 * math.Sin(2*math.Pi*n.humHz*t)
		}
	}
	return x
}

// imuSample is a shank lying still (gravity along z) with sensor noise,
// rotating about its long axis (x) during a rotation.
func (n night) imuSample(rng *rand.Rand, site wire.Site, t float64) (acc, gyr [3]float64) {
	angle := 0.0
	rate := 0.0
	jerk := 0.0
	for _, m := range n.moves {
		if m.side != site.Side || t < m.start {
			continue
		}
		if t >= m.start+m.dur {
			angle += m.deg
			continue
		}
		f := (t - m.start) / m.dur
		angle += m.deg * f
		rate = m.deg / m.dur
		jerk = 0.15
	}
	for _, c := range n.chans {
		if c.id.Side != site.Side {
			continue
		}
		for _, b := range c.bursts {
			if b.move > 0 && b.amp > 0 {
				jerk += b.move * b.envelope(t) / b.amp
			}
		}
	}
	a := angle * math.Pi / 180
	acc = [3]float64{
		0.004*rng.NormFloat64() + jerk*rng.NormFloat64(),
		math.Sin(a) + 0.004*rng.NormFloat64() + jerk*rng.NormFloat64(),
		math.Cos(a) + 0.004*rng.NormFloat64() + jerk*rng.NormFloat64(),
	}
	gyr = [3]float64{rate + 0.5*rng.NormFloat64(), 0.5 * rng.NormFloat64(), 0.5 * rng.NormFloat64()}
	return acc, gyr
}

// describe is a compact listing of events for failure messages.
func describe(evs []Event) string {
	s := ""
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].Onset.Before(evs[j].Onset) })
	for _, e := range evs {
		s += "\n  " + string(e.Kind) + "/" + string(e.State) + " " + e.Channel.String() + " " + e.Cause +
			" onset=" + ftoa(rel(e.Onset)) + " end=" + ftoa(rel(e.End)) + " conf@" + ftoa(rel(e.ConfirmedAt)) +
			" peak=" + ftoa(e.PeakUV) + " mf=" + ftoa(e.MedianFreqHz) + " c=" + ftoa(e.Confidence)
	}
	return s
}

func ftoa(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) }

type shaper struct{ rest, act *shaped }

// shaped is white noise through a band-pass of 30..250 Hz (clipped at 0.4
// of the rate), scaled to unit RMS.
type shaped struct {
	st    [4]biquad
	scale float64
}

func newShaped(rate float64) *shaped {
	s := &shaped{scale: 1}
	hi := math.Min(250, 0.4*rate)
	s.st[0] = highpass(30, rate, butterworthQ(4, 0))
	s.st[1] = highpass(30, rate, butterworthQ(4, 1))
	s.st[2] = lowpass(hi, rate, butterworthQ(4, 0))
	s.st[3] = lowpass(hi, rate, butterworthQ(4, 1))
	// Noise power gain is the sum of the squared impulse response.
	var e float64
	for i := 0; i < int(rate); i++ {
		v := 0.0
		if i == 0 {
			v = 1
		}
		v = s.next(v)
		e += v * v
	}
	for i := range s.st {
		s.st[i].z1, s.st[i].z2 = 0, 0
	}
	s.scale = 1 / math.Sqrt(e)
	return s
}

func (s *shaped) next(v float64) float64 {
	for i := range s.st {
		q := &s.st[i]
		y := q.b0*v + q.z1
		q.z1 = q.b1*v - q.a1*y + q.z2
		q.z2 = q.b2*v - q.a2*y
		v = y
	}
	return v * s.scale
}

func newTestRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 7)) }

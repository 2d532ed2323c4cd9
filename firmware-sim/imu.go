package firmwaresim

import (
	"math"
	"math/rand/v2"

	"github.com/crampwatch/crampwatch/wire"
)

// IMU noise floor: a consumer MEMS part lying still.
const (
	accNoiseG   = 0.003
	gyrNoiseDPS = 0.15
	deg         = math.Pi / 180
)

// imuSite is one IMU's generator state.
type imuSite struct {
	site        wire.Site
	leg         int
	offset      float64 // sampling offset from the frame grid, seconds
	roll, pitch float64 // resting orientation, degrees; roll changes when the wearer turns
	bias        [3]float64
	dynA, dynG  [3]float64 // AR(1) motion processes, unit variance
}

// imuGen produces one device's IMU frames, one per site per frame period.
type imuGen struct {
	rate     float64
	frameLen int
	n0       int64
	sites    []imuSite
	rng      *rand.Rand
	eps      []episode
	next     int
	active   []*episode
}

func newIMUGen(sc *Scenario, w *wearer, sites []siteInfo, eps []episode, seed uint64) *imuGen {
	g := &imuGen{
		rate:     sc.IMURate,
		frameLen: int(math.Round(sc.IMURate * sc.IMUFrameMS / 1000)),
		rng:      rand.New(rand.NewPCG(seed, streamIMU)),
		eps:      eps,
		active:   make([]*episode, 0, 16),
	}
	// Sites share the imu topic and its sequence numbers; t0 must increase
	// from frame to frame of each site. With IMUStagger, like firmware that
	// reads its IMUs in turn, each site samples offset by a fraction of the
	// frame period, so the merged stream's t0 increases too; without it all
	// sites sample at the same instants and a period's frames share t0.
	period := float64(g.frameLen) / g.rate
	for i, s := range sites {
		var offset float64
		if sc.IMUStagger {
			offset = period * float64(i) / float64(len(sites))
		}
		g.sites = append(g.sites, imuSite{
			site: s.site, leg: s.leg,
			offset: offset,
			roll:   w.roll[s.leg], pitch: w.pitch[s.leg],
			bias: w.gyrBias[i],
		})
	}
	return g
}

// fill generates the next frame period for every site into fs (one frame per
// site, each with frameLen-sample Acc and Gyr).
func (g *imuGen) fill(fs []wire.IMUFrame) {
	n := g.frameLen
	t0 := float64(g.n0) / g.rate
	t1 := float64(g.n0+int64(n))/g.rate + float64(n)/g.rate // the last site samples up to a period late
	// Movements that ended before this frame leave the wearer in a new
	// position: make it the resting orientation.
	for _, e := range g.active {
		if e.end <= t0 && (e.kind == epTurn || e.kind == epGetUp) {
			for i := range g.sites {
				s := &g.sites[i]
				if lp := e.legs[s.leg]; lp.on {
					s.roll = wrapDeg(s.roll + lp.roll)
				}
			}
		}
	}
	g.active = updateActive(g.active, g.eps, &g.next, t0, t1)
	for si := range g.sites {
		s := &g.sites[si]
		f := &fs[si]
		for j := range n {
			t := float64(g.n0+int64(j))/g.rate + s.offset
			g.sample(s, t, &f.Acc[j], &f.Gyr[j])
		}
	}
	g.n0 += int64(n)
}

func wrapDeg(a float64) float64 {
	a = math.Mod(a+180, 360)
	if a < 0 {
		a += 360
	}
	return a - 180
}

// sample computes one IMU sample at time t.
func (g *imuGen) sample(s *imuSite, t float64, acc, gyr *[3]float64) {
	roll, pitch := s.roll, s.pitch
	var droll, dpitch float64 // degrees per second
	var dynAcc, dynGyr float64
	for _, e := range g.active {
		lp := &e.legs[s.leg]
		if !lp.on {
			continue
		}
		d := lp.end - lp.start
		u := (t - lp.start) / d
		switch e.kind {
		case epCramp:
			// Forced plantar flexion tilts the shank a few degrees while the
			// cramp builds, and the contracted muscle trembles slightly.
			lv := crampLevel(e, t)
			if lv == 0 {
				continue
			}
			ur := (t - e.start) / e.ramp
			if ur < 1 {
				pitch += e.tilt * raisedCos(ur)
				dpitch += e.tilt * math.Pi / (2 * e.ramp) * math.Sin(math.Pi*ur)
			} else {
				pitch += e.tilt * lv
			}
			dynAcc += 0.01 * lv
			dynGyr += 1.5 * lv
			// The wearer's reaction: pulling the leg up, reaching for the foot.
			if ur := (t - e.react) / e.reactD; e.reactD > 0 && ur >= 0 && ur < 1 {
				sn := math.Sin(math.Pi * ur)
				pitch += 25 * sn * sn
				dpitch += 25 * math.Pi / e.reactD * math.Sin(2*math.Pi*ur)
				dynAcc += 0.3 * sn
				dynGyr += 40 * sn
			}
		case epStretch:
			// Pointing the foot: the shank tilts within half a second, holds,
			// and returns.
			if u < 0 || u >= 1 {
				continue
			}
			r := math.Min(0.5, d/4)
			pitch += lp.tilt * edges(t, lp.start, lp.end, r)
			if t-lp.start < r {
				dpitch += lp.tilt * math.Pi / (2 * r) * math.Sin(math.Pi*(t-lp.start)/r)
			} else if lp.end-t < r {
				dpitch -= lp.tilt * math.Pi / (2 * r) * math.Sin(math.Pi*(lp.end-t)/r)
			}
			sn := math.Sin(math.Pi * u)
			dynAcc += 0.06 * sn
			dynGyr += 8 * sn
		case epPLM, epLM:
			// Ankle dorsiflexion: a small tilt blip and acceleration.
			if u < 0 || u >= 1 {
				continue
			}
			a := lp.tilt
			sn := math.Sin(math.Pi * u)
			pitch -= a * sn * sn
			dpitch -= a * math.Pi / d * math.Sin(2*math.Pi*u)
			dynAcc += 0.04 * sn
			dynGyr += 3 * sn
		case epTurn, epGetUp:
			if u < 0 {
				continue
			}
			if u >= 1 {
				roll += lp.roll
				continue
			}
			sn := math.Sin(math.Pi * u)
			roll += lp.roll * raisedCos(u)
			droll += lp.roll * math.Pi / (2 * d) * sn
			if e.kind == epTurn {
				dynAcc += 0.15 * sn
				dynGyr += 20 * sn
			} else {
				pitch += e.tilt * sn * sn
				dpitch += e.tilt * math.Pi / d * math.Sin(2*math.Pi*u)
				dynAcc += 0.35 * sn
				dynGyr += 45 * sn
			}
		}
	}
	for i := range 3 {
		s.dynA[i] = 0.5*s.dynA[i] + 0.8660254037844386*g.rng.NormFloat64()
		s.dynG[i] = 0.7*s.dynG[i] + 0.714142842854285*g.rng.NormFloat64()
	}
	sr, cr := math.Sincos(roll * deg)
	sp, cp := math.Sincos(pitch * deg)
	grav := [3]float64{-sp, cp * sr, cp * cr}
	rates := [3]float64{droll, dpitch, 0}
	for i := range 3 {
		acc[i] = round(grav[i]+dynAcc*s.dynA[i]+accNoiseG*g.rng.NormFloat64(), 1e4)
		gyr[i] = round(rates[i]+s.bias[i]+dynGyr*s.dynG[i]+gyrNoiseDPS*g.rng.NormFloat64(), 100)
	}
}

// round rounds v to 1/inv, like an IMU's fixed resolution.
func round(v, inv float64) float64 { return math.Round(v*inv) / inv }

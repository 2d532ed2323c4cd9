package firmwaresim

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/crampwatch/crampwatch/wire"
)

// PCG stream numbers: each part of a simulated night draws from its own
// sequence, so changing how one part consumes random numbers never changes
// another part (the schedule does not depend on the noise, for instance).
const (
	streamSchedule uint64 = iota + 1
	streamWearer
	streamEMG
	streamControl
	streamIMU
	streamTransport
)

// Firmware is the firmware string simulated devices report in status frames.
const Firmware = "crampwatch-sim/1"

// chanInfo and siteInfo are a device's parsed channels and IMU sites.
type chanInfo struct {
	ch  wire.Channel
	leg int
}

type siteInfo struct {
	site wire.Site
	leg  int
}

// wearer is what makes one virtual wearer different from another.
type wearer struct {
	gain      float64
	plm       bool
	rest      []float64 // per channel, uV RMS, gain applied
	restPhase []float64
	hum       []float64 // per channel, uV
	humPhase  []float64
	sensor    []float64
	wanderA   [][3]float64
	wanderW   [][3]float64
	wanderP   [][3]float64
	roll      [2]float64 // resting shank orientation per leg, degrees
	pitch     [2]float64
	gyrBias   [][3]float64 // per site
	battery   float64      // percent at the start of the night
	drain     float64      // percent per hour
	rssi      float64      // dBm
}

func newWearer(sc *Scenario, chans []chanInfo, sites []siteInfo, rng *rand.Rand) wearer {
	u := func(r Range) float64 { return r[0] + rng.Float64()*(r[1]-r[0]) }
	w := wearer{
		gain:    u(sc.Wearer.Gain),
		plm:     rng.Float64() < sc.PLM.WearerFraction,
		battery: 70 + 30*rng.Float64(),
		drain:   1 + 1.5*rng.Float64(),
		rssi:    -75 + 25*rng.Float64(),
	}
	rest := u(sc.Wearer.RestUV) * w.gain
	hum := u(sc.Wearer.HumUV)
	sensor := u(sc.Wearer.SensorNoiseUV)
	for range chans {
		w.rest = append(w.rest, rest*(1+sc.Wearer.ChannelSpread*(2*rng.Float64()-1)))
		w.restPhase = append(w.restPhase, 2*math.Pi*rng.Float64())
		w.hum = append(w.hum, hum*(0.5+rng.Float64()))
		w.humPhase = append(w.humPhase, 2*math.Pi*rng.Float64())
		w.sensor = append(w.sensor, sensor)
		// Baseline wander: three slow sinusoids (breathing, electrode
		// settling, temperature) sharing the channel's wander amplitude.
		total := u(sc.Wearer.WanderUV)
		var a, f, p [3]float64
		for i, share := range [3]float64{0.6, 0.3, 0.1} {
			a[i] = total * share
			f[i] = 2 * math.Pi * math.Exp(math.Log(0.01)+rng.Float64()*(math.Log(0.8)-math.Log(0.01)))
			p[i] = 2 * math.Pi * rng.Float64()
		}
		w.wanderA = append(w.wanderA, a)
		w.wanderW = append(w.wanderW, f)
		w.wanderP = append(w.wanderP, p)
	}
	for leg := range 2 {
		w.roll[leg] = -40 + 80*rng.Float64()
		w.pitch[leg] = -5 + 30*rng.Float64()
	}
	for range sites {
		w.gyrBias = append(w.gyrBias, [3]float64{0.3 * rng.NormFloat64(), 0.3 * rng.NormFloat64(), 0.3 * rng.NormFloat64()})
	}
	return w
}

// WearerInfo describes a virtual wearer, for tests and documentation.
type WearerInfo struct {
	Gain   float64   // multiplies all physiological EMG
	RestUV []float64 // resting EMG level per channel, uV RMS, gain applied (before the sleep-cycle modulation)
	HumUV  []float64 // normal mains hum amplitude per channel, uV
	PLM    bool      // whether the wearer has PLM series
}

// Message is one MQTT message of a device, in send order.
type Message struct {
	Stream  wire.Stream
	Payload []byte
	// End is the sample time of the frame's last sample, Unix microseconds,
	// on the nominal (jitter-free) clock: the firmware can send the frame
	// from then on. For a status message it is the status time.
	End int64
}

// Counts says what a device has sent so far.
type Counts struct {
	Frames     uint64 // messages returned by Next, duplicates included
	Lost       uint64 // frames dropped by random transport loss
	GapLost    uint64 // frames and status messages dropped inside sensor gaps
	Duplicates uint64 // frames sent twice
}

// Device is one virtual wearer's night, generated lazily frame by frame:
// memory does not grow with the length of the night.
type Device struct {
	id      string
	sc      Scenario
	start   time.Time
	startUS int64
	w       wearer
	chans   []chanInfo
	sites   []siteInfo
	eps     []episode
	truth   []Truth
	emg     *emgGen
	imu     *imuGen
	tr      *rand.Rand
	err     error

	emgFrame  wire.EMGFrame
	imuFrames []wire.IMUFrame
	status    wire.StatusFrame

	night            float64
	emgTotal, emgIdx int64
	imuTotal, imuIdx int64
	imuSite          int // next site of the current IMU period; 0: period not generated yet
	emgSeq, imuSeq   uint32
	statusIdx        int64     // periodic status messages done
	extras           []float64 // lead-off transitions, which trigger a status message
	extraIdx         int
	gaps             []span
	leadOffs         []*episode

	dup        []byte
	dupMsg     Message
	dupPending bool
	counts     Counts
}

// NewDevice creates the night of one virtual wearer. The scenario must be
// valid (see Scenario.Validate); the same scenario, seed and start always
// give the same truth and the same bytes. Device ids should match the wire
// contract ([A-Za-z0-9_-]{1,64}); the id is only used in topics and truth.
func NewDevice(id string, sc Scenario, seed int64, start time.Time) *Device {
	d := &Device{id: id, sc: sc, start: start, startUS: start.UnixMicro(), night: sc.Hours * 3600}
	if err := sc.Validate(); err != nil {
		d.err = fmt.Errorf("firmwaresim: device %s: %w", id, err)
		return d
	}
	for _, l := range sc.Channels {
		c, _ := wire.ParseChannel(l)
		d.chans = append(d.chans, chanInfo{ch: c, leg: int(c.Side) - 1})
	}
	for _, l := range sc.IMUSites {
		s, _ := wire.ParseSite(l)
		d.sites = append(d.sites, siteInfo{site: s, leg: int(s.Side) - 1})
	}
	s := uint64(seed)
	d.w = newWearer(&d.sc, d.chans, d.sites, rand.New(rand.NewPCG(s, streamWearer)))
	d.eps = buildSchedule(&d.sc, &d.w, d.chans, d.sites, rand.New(rand.NewPCG(s, streamSchedule)))
	d.truth = d.buildTruth()
	d.emg = newEMGGen(&d.sc, &d.w, d.chans, d.eps, s)
	d.imu = newIMUGen(&d.sc, &d.w, d.sites, d.eps, s)
	d.tr = rand.New(rand.NewPCG(s, streamTransport))

	n := d.emg.frameLen
	d.emgTotal = int64(math.Floor(d.night * sc.Rate / float64(n)))
	if len(d.sites) > 0 {
		last := d.imu.sites[len(d.imu.sites)-1].offset
		d.imuTotal = int64(math.Floor((d.night - last) * sc.IMURate / float64(d.imu.frameLen)))
	}
	d.emgFrame = wire.EMGFrame{Rate: sc.Rate, Unit: wire.Microvolt}
	if sc.Unit == "mV" {
		d.emgFrame.Unit = wire.Millivolt
	}
	for _, c := range d.chans {
		d.emgFrame.Channels = append(d.emgFrame.Channels, c.ch)
		d.emgFrame.Data = append(d.emgFrame.Data, make([]float64, n))
	}
	for _, st := range d.sites {
		d.imuFrames = append(d.imuFrames, wire.IMUFrame{
			Rate: sc.IMURate, Site: st.site,
			Acc: make([][3]float64, d.imu.frameLen),
			Gyr: make([][3]float64, d.imu.frameLen),
		})
	}
	for i := range d.eps {
		e := &d.eps[i]
		switch e.kind {
		case epGap:
			d.gaps = append(d.gaps, span{e.start, e.end})
		case epLeadOff:
			d.leadOffs = append(d.leadOffs, e)
			d.extras = append(d.extras, e.start)
			if e.end < d.night {
				d.extras = append(d.extras, e.end)
			}
		}
	}
	sort.Float64s(d.extras)
	d.status = wire.StatusFrame{Firmware: Firmware, LeadOff: make([]wire.Channel, 0, len(d.chans))}
	return d
}

// ID returns the device id.
func (d *Device) ID() string { return d.id }

// Err returns why the device cannot produce (more) messages: an invalid
// scenario, or a frame the encoder refused. Next returns ok=false then.
func (d *Device) Err() error { return d.err }

// Truth returns the whole night's ground truth, sorted by onset. It is known
// up front; the caller must not modify the returned slice.
func (d *Device) Truth() []Truth { return d.truth }

// Counts returns what the device has sent and dropped so far.
func (d *Device) Counts() Counts { return d.counts }

// Wearer describes the virtual wearer.
func (d *Device) Wearer() WearerInfo {
	return WearerInfo{
		Gain:   d.w.gain,
		RestUV: append([]float64(nil), d.w.rest...),
		HumUV:  append([]float64(nil), d.w.hum...),
		PLM:    d.w.plm,
	}
}

func (d *Device) at(sec float64) time.Time {
	return d.start.Add(time.Duration(math.Round(sec*1e6)) * time.Microsecond)
}

func (d *Device) micros(sec float64) int64 { return d.startUS + int64(math.Round(sec*1e6)) }

func (d *Device) legMuscle(leg int) string {
	for _, c := range d.chans {
		if c.leg == leg {
			return c.ch.Muscle.String()
		}
	}
	return ""
}

func legName(leg int) string { return wire.Side(leg + 1).String() }

// buildTruth turns the schedule into the truth the detector is judged on.
func (d *Device) buildTruth() []Truth {
	var ts []Truth
	add := func(kind, muscle, side string, a, b float64, cause string) {
		ts = append(ts, Truth{Device: d.id, Kind: kind, Muscle: muscle, Side: side, Onset: d.at(a), End: d.at(b), Cause: cause})
	}
	perLeg := func(e *episode, kind, cause string) {
		for leg, lp := range e.legs {
			if lp.on {
				add(kind, d.legMuscle(leg), legName(leg), lp.start, lp.end, cause)
			}
		}
	}
	for i := range d.eps {
		e := &d.eps[i]
		switch e.kind {
		case epCramp:
			c := d.chans[e.ch]
			add("cramp", c.ch.Muscle.String(), legName(c.leg), e.start, e.end, "")
		case epPLM, epLM:
			kind := "plm"
			if e.kind == epLM {
				kind = KindLM
			}
			if e.legs[0].on && e.legs[1].on {
				add(kind, d.legMuscle(legLeft), SideBoth, e.start, e.end, "")
			} else {
				perLeg(e, kind, "")
			}
		case epTurn:
			perLeg(e, "movement", "turn_over")
		case epGetUp:
			perLeg(e, "movement", "get_up")
		case epStretch:
			perLeg(e, "movement", "stretch")
		case epLeadOff, epFlat, epSaturation:
			cause := map[epKind]string{epLeadOff: "lead_off", epFlat: "flat_line", epSaturation: "saturation"}[e.kind]
			c := d.chans[e.ch]
			add("artifact", c.ch.Muscle.String(), legName(c.leg), e.start, e.end, cause)
		case epHum:
			perLeg(e, "artifact", "mains_hum")
		case epGap:
			perLeg(e, "artifact", "gap")
		}
	}
	sort.SliceStable(ts, func(i, j int) bool { return ts[i].Onset.Before(ts[j].Onset) })
	return ts
}

func (d *Device) inGap(sec float64) bool {
	for _, g := range d.gaps {
		if sec >= g.a && sec < g.b {
			return true
		}
	}
	return false
}

// nextStatusTime returns the time of the next status message, or +Inf.
func (d *Device) nextStatusTime() float64 {
	t := float64(d.statusIdx) * d.sc.StatusEveryS
	if d.extraIdx < len(d.extras) {
		t = math.Min(t, d.extras[d.extraIdx])
	}
	if t >= d.night {
		return math.Inf(1)
	}
	return t
}

// transport draws one frame's fate: lost, duplicated, and T0 jitter.
func (d *Device) transport() (lost, dup bool, jitter int64) {
	tp := &d.sc.Transport
	lost = d.tr.Float64() < tp.LossProb
	dup = d.tr.Float64() < tp.DupProb
	jitter = int64(math.Round((2*d.tr.Float64() - 1) * tp.JitterUS))
	return lost, dup, jitter
}

// Next returns the next message in send order: EMG, IMU and status messages
// interleaved by sample time (status first, then EMG, then IMU at equal
// times), lost frames skipped, duplicates repeated right after the original.
// The payload is appended to dst[:0] and valid until the next call. ok is
// false after the end of the night (or on an error, see Err).
func (d *Device) Next(dst []byte) (m Message, ok bool) {
	if d.err != nil {
		return Message{}, false
	}
	if d.dupPending {
		d.dupPending = false
		m = d.dupMsg
		m.Payload = append(dst[:0], d.dup...)
		d.counts.Frames++
		return m, true
	}
	for {
		inf := math.Inf(1)
		st := d.nextStatusTime()
		emgT, imuT := inf, inf
		if d.emgIdx < d.emgTotal {
			n := int64(d.emg.frameLen)
			emgT = float64((d.emgIdx+1)*n-1) / d.sc.Rate
		}
		if d.imuIdx < d.imuTotal {
			n := int64(d.imu.frameLen)
			imuT = float64((d.imuIdx+1)*n-1)/d.sc.IMURate + d.imu.sites[d.imuSite].offset
		}
		var err error
		switch {
		case math.IsInf(st, 1) && math.IsInf(emgT, 1) && math.IsInf(imuT, 1):
			return Message{}, false
		case st <= emgT && st <= imuT:
			d.advanceStatus(st)
			if d.inGap(st) {
				d.counts.GapLost++
				continue
			}
			d.fillStatus(st)
			m = Message{Stream: wire.StreamStatus, End: d.micros(st)}
			m.Payload = wire.AppendStatusJSON(dst[:0], &d.status)
		case emgT <= imuT:
			f := &d.emgFrame
			t0 := float64(d.emgIdx*int64(d.emg.frameLen)) / d.sc.Rate
			d.emg.fill(f)
			d.emgIdx++
			f.Seq = d.emgSeq
			d.emgSeq++
			lost, dup, jitter := d.transport()
			if d.inGap(t0) {
				d.counts.GapLost++
				continue
			}
			if lost {
				d.counts.Lost++
				continue
			}
			f.T0 = d.micros(t0) + jitter
			m = Message{Stream: wire.StreamEMG, End: d.micros(emgT)}
			if d.sc.Encoding == "binary" {
				m.Payload, err = wire.AppendEMGBinary(dst[:0], f)
			} else {
				m.Payload = wire.AppendEMGJSON(dst[:0], f)
			}
			d.dupPending = dup
		default:
			t0 := float64(d.imuIdx*int64(d.imu.frameLen))/d.sc.IMURate + d.imu.sites[d.imuSite].offset
			if d.imuSite == 0 {
				d.imu.fill(d.imuFrames)
			}
			f := &d.imuFrames[d.imuSite]
			d.imuSite++
			if d.imuSite == len(d.imuFrames) {
				d.imuSite = 0
				d.imuIdx++
			}
			f.Seq = d.imuSeq
			d.imuSeq++
			lost, dup, jitter := d.transport()
			if d.inGap(t0) {
				d.counts.GapLost++
				continue
			}
			if lost {
				d.counts.Lost++
				continue
			}
			f.T0 = d.micros(t0) + jitter
			m = Message{Stream: wire.StreamIMU, End: d.micros(imuT)}
			if d.sc.Encoding == "binary" {
				m.Payload, err = wire.AppendIMUBinary(dst[:0], f)
			} else {
				m.Payload = wire.AppendIMUJSON(dst[:0], f)
			}
			d.dupPending = dup
		}
		if err != nil {
			d.err = fmt.Errorf("firmwaresim: device %s: encode %v frame: %w", d.id, m.Stream, err)
			return Message{}, false
		}
		if d.dupPending {
			d.dup = append(d.dup[:0], m.Payload...)
			d.dupMsg = m
			d.dupMsg.Payload = nil
			d.counts.Duplicates++
		}
		d.counts.Frames++
		return m, true
	}
}

// advanceStatus moves past the status message at time t.
func (d *Device) advanceStatus(t float64) {
	if float64(d.statusIdx)*d.sc.StatusEveryS <= t {
		d.statusIdx++
	}
	for d.extraIdx < len(d.extras) && d.extras[d.extraIdx] <= t {
		d.extraIdx++
	}
}

// fillStatus sets the status frame for time t.
func (d *Device) fillStatus(t float64) {
	s := &d.status
	s.T = d.micros(t)
	s.BatteryPct = math.Round(math.Max(1, d.w.battery-d.w.drain*t/3600)*10) / 10
	// Signal strength wanders with the wearer's position in bed.
	s.RSSI = math.Round(d.w.rssi + 6*math.Sin(2*math.Pi*t/3100))
	s.LeadOff = s.LeadOff[:0]
	for _, e := range d.leadOffs {
		if t >= e.start && t < e.end {
			s.LeadOff = append(s.LeadOff, d.chans[e.ch].ch)
		}
	}
}

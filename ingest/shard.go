package ingest

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crampwatch/crampwatch/wire"
)

// shard is one worker goroutine with the devices that hash to it. Everything
// in it is touched only by that goroutine, so the hot path takes no locks.
type shard struct {
	r     *Router
	id    int
	q     chan message
	h     Handler
	sc    *seqConfig
	depth prometheus.Gauge

	dec     *wire.Decoder
	emg     *wire.EMGFrame // decode target; swapped with a spare when a frame is held
	imu     *wire.IMUFrame
	status  wire.StatusFrame
	devices map[string]*device
}

func newShard(r *Router, id int, sc *seqConfig, h Handler) *shard {
	return &shard{
		r:       r,
		id:      id,
		q:       make(chan message, r.cfg.QueueLen),
		h:       h,
		sc:      sc,
		depth:   r.m.shardDepth(id),
		dec:     wire.NewDecoder(r.cfg.MaxPayload),
		emg:     new(wire.EMGFrame),
		imu:     new(wire.IMUFrame),
		devices: make(map[string]*device),
	}
}

// run processes the queue until Close closes it, then releases every
// device's held frames.
func (s *shard) run() {
	defer s.r.wg.Done()
	var sweep <-chan time.Time
	if idle := s.r.cfg.IdleTimeout; idle > 0 {
		t := time.NewTicker(max(idle/8, 10*time.Millisecond))
		defer t.Stop()
		sweep = t.C
	}
	for {
		select {
		case m, ok := <-s.q:
			if !ok {
				s.closeAll()
				return
			}
			s.process(m)
			s.depth.Set(float64(len(s.q)))
		case now := <-sweep:
			s.evictIdle(now)
		}
	}
}

// process handles one message: decode, sequence, deliver, report health.
func (s *shard) process(m message) {
	now := time.Now()
	d := s.devices[m.device]
	if d != nil {
		d.lastSeen = now
	}
	if m.buf == nil {
		// Rejected in Handle and already counted there; only the device's
		// own count is left to do.
		if d != nil {
			d.rejected++
		}
		return
	}
	defer s.r.bufs.Put(m.buf)
	if d != nil && m.live && !d.allow(now, &s.r.cfg) {
		// Checked before decoding: a flood costs a map lookup per message.
		s.reject(d, m.device, m.stream, ReasonRateLimited, nil)
		return
	}
	if d == nil && s.r.ndev.Load() >= int64(s.r.cfg.MaxDevices) {
		// Checked before decoding so a flood of new ids costs little.
		s.reject(nil, m.device, m.stream, ReasonTooManyDevices, nil)
		return
	}
	payload := *m.buf
	switch m.stream {
	case wire.StreamEMG:
		if err := s.dec.DecodeEMG(payload, s.emg); err != nil {
			s.reject(d, m.device, m.stream, reasonOf(err), err)
			return
		}
		if d = s.ensure(d, m.device, now); d == nil {
			return
		}
		f := s.emg
		s.observeLag(d, now, f.T0+wire.SpanMicros(f.Len()-1, f.Rate))
		before := d.drops()
		d.emg.offer(&s.emg, f.Seq, 0, f.T0, f.End(), &d.emgOut)
		d.noteCatchUp(before, &s.r.cfg)
	case wire.StreamIMU:
		if err := s.dec.DecodeIMU(payload, s.imu); err != nil {
			s.reject(d, m.device, m.stream, reasonOf(err), err)
			return
		}
		if d = s.ensure(d, m.device, now); d == nil {
			return
		}
		f := s.imu
		s.observeLag(d, now, f.T0+wire.SpanMicros(f.Len()-1, f.Rate))
		before := d.drops()
		// Sites share the stream's sequence numbers but each is its own
		// series of samples: two sites sampled together send equal t0s.
		d.imu.offer(&s.imu, f.Seq, siteLane(f.Site), f.T0, f.End(), &d.imuOut)
		d.noteCatchUp(before, &s.r.cfg)
	case wire.StreamStatus:
		if err := s.dec.DecodeStatus(payload, &s.status); err != nil {
			s.reject(d, m.device, m.stream, reasonOf(err), err)
			return
		}
		if d = s.ensure(d, m.device, now); d == nil {
			return
		}
		s.handleStatus(d, &s.status)
		return
	}
	if d.newest-d.lastHealth >= s.healthEvery() || d.lastHealth-d.newest >= s.healthEvery() {
		s.health(d)
	}
}

func (s *shard) healthEvery() int64 { return s.r.cfg.HealthInterval.Microseconds() }

// ensure returns d, creating the device's state if it has none yet. It
// returns nil when MaxDevices is reached (shards race for the last slots,
// hence the second check here).
func (s *shard) ensure(d *device, id string, now time.Time) *device {
	if d != nil {
		return d
	}
	if s.r.ndev.Add(1) > int64(s.r.cfg.MaxDevices) {
		s.r.ndev.Add(-1)
		s.reject(nil, id, 0, ReasonTooManyDevices, nil)
		return nil
	}
	s.r.m.devices.Inc()
	// Clone: id points into the MQTT topic, which must not be kept alive.
	d = newDevice(s, strings.Clone(id), now)
	s.devices[d.id] = d
	return d
}

// observeLag records wall clock minus the sample time of the frame's last
// sample: how far behind the wearer's body the service is.
func (s *shard) observeLag(d *device, now time.Time, last int64) {
	d.lag = float64(now.UnixMicro()-last) / 1e6
	s.r.m.lag.Observe(d.lag)
}

// handleStatus passes a status frame on and reports health with it.
func (s *shard) handleStatus(d *device, st *wire.StatusFrame) {
	d.framesIn++
	s.r.m.framesStatus.Inc()
	if st.BatteryPct >= 0 {
		d.battery = st.BatteryPct
	}
	if st.Firmware != "" && st.Firmware != d.firmware {
		d.firmware = strings.Clone(st.Firmware)
	}
	if !slices.Equal(st.LeadOff, d.leadOff) {
		// A new slice, never modified later: Health values handed out
		// earlier may still hold the old one.
		d.leadOff = slices.Clone(st.LeadOff)
	}
	d.newest = st.T
	s.h.Status(d.id, st)
	s.health(d)
}

// health reports the device's state to the handler.
func (s *shard) health(d *device) {
	d.lastHealth = d.newest
	s.h.Health(Health{
		Device:     d.id,
		Time:       time.UnixMicro(d.newest),
		BatteryPct: d.battery,
		Firmware:   d.firmware,
		LeadOff:    d.leadOff,
		FramesIn:   d.framesIn,
		FramesLost: d.framesLost,
		FramesDup:  d.framesDup,
		FramesLate: d.framesLate,
		Rejected:   d.rejected,
		LastSeen:   d.lastSeen,
		LagSeconds: d.lag,
	})
}

// reject counts and logs a rejected message; d may be nil (unknown device).
func (s *shard) reject(d *device, id string, stream wire.Stream, reason wire.Reason, err error) {
	s.r.m.reject(reason)
	if d != nil {
		d.rejected++
	}
	if s.r.log.Enabled(context.Background(), slog.LevelDebug) && s.r.logLim.allow(time.Now()) {
		s.r.log.Debug("ingest: message rejected", "device", id, "stream", stream.String(),
			"reason", string(reason), "err", err)
	}
}

// evictIdle drops the state of devices silent for longer than IdleTimeout.
func (s *shard) evictIdle(now time.Time) {
	for id, d := range s.devices {
		if now.Sub(d.lastSeen) < s.r.cfg.IdleTimeout {
			continue
		}
		d.release()
		delete(s.devices, id)
		s.r.ndev.Add(-1)
		s.r.m.devices.Dec()
		s.r.m.evicted.Inc()
		s.r.log.Info("ingest: idle device state dropped", "device", id, "silent", now.Sub(d.lastSeen).Round(time.Second))
	}
}

// closeAll delivers every frame still held, at shutdown.
func (s *shard) closeAll() {
	for id, d := range s.devices {
		d.release()
		delete(s.devices, id)
		s.r.ndev.Add(-1)
		s.r.m.devices.Dec()
	}
}

// device is one device's ingest state, owned by its shard.
type device struct {
	s  *shard
	id string

	emg    sequencer[wire.EMGFrame]
	imu    sequencer[wire.IMUFrame]
	emgOut streamOut[wire.EMGFrame]
	imuOut streamOut[wire.IMUFrame]

	newest     int64 // sample time of the newest delivered frame, µs
	lastHealth int64 // newest at the last Health report
	lastSeen   time.Time
	lag        float64
	battery    float64

	// Rate limit: a token bucket of live messages, refilled on the wall
	// clock, and whether the device is catching up on a backlog (exempt).
	tokens     float64
	tokenTime  time.Time
	catchingUp bool
	firmware   string
	leadOff    []wire.Channel

	framesIn, framesLost, framesDup, framesLate, rejected uint64
}

func newDevice(s *shard, id string, now time.Time) *device {
	d := &device{s: s, id: id, lastSeen: now, battery: -1, lastHealth: minInt64 / 2,
		tokens: float64(s.r.cfg.DeviceBurst), tokenTime: now}
	d.emg.cfg, d.imu.cfg = s.sc, s.sc
	d.emgOut = streamOut[wire.EMGFrame]{d: d, stream: wire.StreamEMG, deliverTo: s.h.EMG, frames: s.r.m.framesEMG}
	d.imuOut = streamOut[wire.IMUFrame]{d: d, stream: wire.StreamIMU, deliverTo: s.h.IMU, frames: s.r.m.framesIMU}
	return d
}

// allow takes a token for one live message. The bucket refills even while
// the device is exempt, so the limit is back at full strength, not empty,
// when a backlog ends.
func (d *device) allow(now time.Time, cfg *Config) bool {
	if cfg.DeviceRate <= 0 {
		return true
	}
	if el := now.Sub(d.tokenTime).Seconds(); el > 0 {
		d.tokens = min(float64(cfg.DeviceBurst), d.tokens+el*cfg.DeviceRate)
		d.tokenTime = now
	}
	if d.catchingUp {
		return true
	}
	if d.tokens < 1 {
		return false
	}
	d.tokens--
	return true
}

// drops counts the device's frames that were offered and not taken:
// duplicates, late frames and rejections.
func (d *device) drops() uint64 { return d.framesDup + d.framesLate + d.rejected }

// noteCatchUp decides, after a frame was offered to its sequencer, whether
// the device is catching up on a backlog: the frame's samples are more than
// CatchUpLag old and the sequencer took it (delivered it, or held it for a
// missing predecessor; drops has not moved past before). Duplicates, late
// frames and frames whose time goes backwards do not qualify, so replaying
// old data in a loop stays rate limited. Holding must qualify: a backlog
// with a lost frame holds several frames, and charging them would let the
// bucket run dry in a long backlog with the usual 0.1 % loss.
func (d *device) noteCatchUp(before uint64, cfg *Config) {
	d.catchingUp = d.drops() == before && d.lag > cfg.CatchUpLag.Seconds()
}

// siteLane maps an IMU site to its sequencer lane, 0..maxLanes-1. The
// decoder only lets the four valid sites through; anything else would share
// lane 0 rather than index out of range.
func siteLane(s wire.Site) uint8 {
	if (s.Segment != wire.Shank && s.Segment != wire.Thigh) || (s.Side != wire.Left && s.Side != wire.Right) {
		return 0
	}
	return uint8(s.Segment-1)*2 + uint8(s.Side-1)
}

// release delivers the frames held for reordering.
func (d *device) release() {
	d.emg.releaseAll(&d.emgOut)
	d.imu.releaseAll(&d.imuOut)
}

// streamOut is a device stream's seqSink: it counts, logs and calls the handler.
type streamOut[F any] struct {
	d         *device
	stream    wire.Stream
	deliverTo func(device string, f *F)
	frames    prometheus.Counter
}

func (o *streamOut[F]) deliver(f *F, t0, end int64) {
	d := o.d
	d.framesIn++
	d.newest = end
	o.frames.Inc()
	o.deliverTo(d.id, f)
}

func (o *streamOut[F]) gap(lost int, from, to int64) {
	d := o.d
	d.framesLost += uint64(lost)
	d.s.r.m.lost.Add(float64(lost))
	d.s.h.Gap(d.id, o.stream, lost, from, to)
}

func (o *streamOut[F]) dropped(why drop) {
	d := o.d
	m := d.s.r.m
	switch why {
	case dropDuplicate:
		d.framesDup++
		m.duplicate.Inc()
	case dropLate:
		d.framesLate++
		m.late.Inc()
	case dropBadTime:
		d.s.reject(d, d.id, o.stream, wire.ReasonBadTime, nil)
	}
}

func (o *streamOut[F]) clockJump() {
	d := o.d
	d.s.r.m.clockJumps.Inc()
	if d.s.r.logLim.allow(time.Now()) {
		d.s.r.log.Info("ingest: device clock stepped forward; reporting a discontinuity",
			"device", d.id, "stream", o.stream.String())
	}
}

func (o *streamOut[F]) reset() {
	d := o.d
	d.s.r.m.resets.Inc()
	if d.s.r.logLim.allow(time.Now()) {
		d.s.r.log.Info("ingest: device stream restarted (reboot or clock/counter jump)",
			"device", d.id, "stream", o.stream.String())
	}
}

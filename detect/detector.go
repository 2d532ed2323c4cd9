package detect

import (
	"math"
	"time"

	"github.com/crampwatch/crampwatch/wire"
)

// Detector is one device's detection state: one chain per EMG channel, one
// per IMU site, and the classifier. Not safe for concurrent use; state is
// bounded (well under 256 KiB per device).
type Detector struct {
	device string
	cfg    Config
	out    Output

	rate     float64 // EMG sample rate the chains are designed for
	blockLen int     // EMG samples per block
	pos      int     // samples into the current block
	chans    []*channel
}

// channel is one EMG channel: its chain and its detection state.
type channel struct {
	id    wire.Channel
	chain chain
	seen  bool // got samples in the current block
}

// New returns a detector for one device. cfg must pass Validate; a bad
// config is replaced by DefaultConfig rather than failing later mid-night.
func New(device string, cfg Config, out Output) *Detector {
	if cfg.Validate() != nil {
		cfg = DefaultConfig()
	}
	return &Detector{device: device, cfg: cfg, out: out}
}

func (d *Detector) mains() float64 {
	if d.cfg.MainsHz != 0 {
		return d.cfg.MainsHz
	}
	return d.cfg.MainsPriorHz
}

// EMG processes one frame. Data is in microvolts; frames arrive in order and
// de-duplicated.
func (d *Detector) EMG(f *wire.EMGFrame) {
	n := f.Len()
	if n == 0 || !(f.Rate > 0) || len(f.Channels) != len(f.Data) {
		return
	}
	if f.Rate != d.rate {
		d.setRate(f.Rate)
	}
	rows := make([]*channel, len(f.Channels))
	for i, id := range f.Channels {
		rows[i] = d.channel(id)
	}
	for i := 0; i < n; {
		m := min(n-i, d.blockLen-d.pos)
		for r, ch := range rows {
			ch.chain.push(f.Data[r][i : i+m])
			ch.seen = true
		}
		d.pos += m
		i += m
		if d.pos == d.blockLen {
			d.endBlock(f.T0 + wire.SpanMicros(i, f.Rate))
			d.pos = 0
		}
	}
}

func (d *Detector) setRate(rate float64) {
	d.rate = rate
	d.blockLen = max(1, int(math.Round(rate/d.cfg.EnvelopeRate)))
	d.pos = 0
	for _, ch := range d.chans {
		ch.chain.design(&d.cfg, rate, d.mains(), d.blockLen)
	}
}

func (d *Detector) channel(id wire.Channel) *channel {
	for _, ch := range d.chans {
		if ch.id == id {
			return ch
		}
	}
	ch := &channel{id: id}
	ch.chain.design(&d.cfg, d.rate, d.mains(), d.blockLen)
	d.chans = append(d.chans, ch)
	return ch
}

func (d *Detector) endBlock(t int64) {
	for _, ch := range d.chans {
		if !ch.seen {
			continue
		}
		ch.seen = false
		s := ch.chain.endBlock()
		d.out.Envelope(Envelope{
			Device:     d.device,
			Channel:    ch.id,
			Time:       time.UnixMicro(t),
			RMSUV:      s.rms,
			BaselineUV: d.cfg.BaselinePriorUV,
		})
	}
}

// IMU processes one IMU frame.
func (d *Detector) IMU(f *wire.IMUFrame) {}

// LeadOff reports the channels whose electrodes are off at sample time t
// (Unix µs), from a status frame; an empty ch clears lead-off.
func (d *Detector) LeadOff(t int64, ch []wire.Channel) {}

// Gap reports frames lost on stream s between from and to (Unix µs).
func (d *Detector) Gap(s wire.Stream, from, to int64) {}

// Close ends the stream at sample time at (Unix µs): open events are
// finished and reported.
func (d *Detector) Close(at int64) {}

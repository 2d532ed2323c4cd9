package detect

import (
	"math"
)

// chain is the per-sample part of one EMG channel: band-pass, mains notches,
// and the block accumulators the envelope and artifact checks need. It does
// only multiply-adds and compares per sample; everything else runs once per
// block.
type chain struct {
	rate float64
	bp   bandpass
	nt   notches

	buf []float64 // scratch for one block, filtered in place

	// Spectral ring: the last specLen band-passed samples before the notch,
	// so spectra show the hum (for mains detection) and the notch is applied
	// in the spectrum by skipping mains bins.
	ring  []float64
	rpos  int
	rfill int

	// Block accumulators.
	n          int
	sumRaw     float64 // raw sum, for the DC level (lead-off)
	sumPre     float64 // band-passed power before the notch
	sumPost    float64 // band-passed power after the notch: the EMG
	prev       float64
	run        int // identical consecutive raw samples
	satRun     int // run length that means saturation
	satUV      float64
	satSamples int
}

// blockStats is what one finished block yields.
type blockStats struct {
	n       int
	rms     float64 // EMG envelope: RMS after band-pass and notch, uV
	humRMS  float64 // RMS of what the notches removed, uV
	dc      float64 // raw mean, uV
	satFrac float64 // fraction of samples in saturated runs
}

// design prepares the chain for a sample rate and mains frequency; it
// allocates only when the rate needs larger buffers than before.
func (c *chain) design(cfg *Config, rate, mains float64, blockLen int) {
	c.rate = rate
	c.bp.design(cfg, rate)
	c.nt.design(cfg, rate, mains, c.bp.high)
	if cap(c.buf) < blockLen {
		c.buf = make([]float64, blockLen)
	}
	c.buf = c.buf[:blockLen]
	sl := specLen(rate)
	if cap(c.ring) < sl {
		c.ring = make([]float64, sl)
	}
	c.ring = c.ring[:sl]
	c.rpos, c.rfill = 0, 0
	c.satRun = max(2, int(math.Round(cfg.SaturationRunS*rate)))
	c.satUV = cfg.SaturationUV
	c.resetBlock()
}

// redesignNotch switches the mains frequency and keeps the band-pass state.
func (c *chain) redesignNotch(cfg *Config, mains float64) {
	c.nt.design(cfg, c.rate, mains, c.bp.high)
}

func (c *chain) resetBlock() {
	c.n = 0
	c.sumRaw, c.sumPre, c.sumPost = 0, 0, 0
	c.satSamples = 0
}

// push feeds raw samples (uV); len(x) never exceeds the room left in the block.
func (c *chain) push(x []float64) {
	b := c.buf[:len(x)]
	prev, run, sat := c.prev, c.run, c.satSamples
	satRun, satUV := c.satRun, c.satUV
	var sumRaw float64
	for i, v := range x {
		sumRaw += v
		if v == prev {
			run++
		} else {
			run = 1
		}
		prev = v
		if run >= satRun && math.Abs(v) >= satUV {
			if run == satRun {
				sat += satRun
			} else {
				sat++
			}
		}
		b[i] = v
	}
	c.prev, c.run, c.satSamples = prev, run, sat
	c.sumRaw += sumRaw

	c.bp.run(b)
	ring, pos := c.ring, c.rpos
	var pre float64
	for _, v := range b {
		pre += v * v
		ring[pos] = v
		pos++
		if pos == len(ring) {
			pos = 0
		}
	}
	c.rpos = pos
	c.rfill = min(c.rfill+len(b), len(ring))
	c.sumPre += pre

	c.nt.run(b)
	var post float64
	for _, v := range b {
		post += v * v
	}
	c.sumPost += post
	c.n += len(x)
}

// endBlock returns the block's statistics and starts a new block.
func (c *chain) endBlock() blockStats {
	s := blockStats{n: c.n}
	if c.n > 0 {
		n := float64(c.n)
		s.rms = math.Sqrt(c.sumPost / n)
		s.humRMS = math.Sqrt(math.Max(c.sumPre-c.sumPost, 0) / n)
		s.dc = c.sumRaw / n
		s.satFrac = float64(c.satSamples) / n
	}
	c.resetBlock()
	return s
}

// specLen is the spectral window length for a sample rate: half a second,
// which gives 2 Hz bins, fine enough to tell 50 from 60 Hz and to place
// both on exact bins at the usual rates.
func specLen(rate float64) int {
	return max(16, int(math.Round(rate/2)))
}

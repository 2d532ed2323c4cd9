package detect

import (
	"math"
	"slices"

	"gonum.org/v1/gonum/dsp/fourier"
)

// spectrum holds the FFT and scratch shared by a device's channels (they are
// processed one after another, never concurrently), so each channel only
// keeps its ring of samples.
type spectrum struct {
	n     int
	fft   *fourier.FFT
	win   []float64 // Hann window
	seq   []float64
	coeff []complex128
	power []float64
}

func (s *spectrum) setLen(n int) {
	if s.n == n {
		return
	}
	s.n = n
	s.fft = fourier.NewFFT(n)
	s.win = make([]float64, n)
	for i := range s.win {
		s.win[i] = 0.5 - 0.5*math.Cos(2*math.Pi*float64(i)/float64(n))
	}
	s.seq = make([]float64, n)
	s.coeff = make([]complex128, n/2+1)
	s.power = make([]float64, n/2+1)
}

// load computes the power spectrum of the ring (oldest sample at pos).
func (s *spectrum) load(ring []float64, pos int) {
	s.setLen(len(ring))
	k := copy(s.seq, ring[pos:])
	copy(s.seq[k:], ring[:pos])
	for i := range s.seq {
		s.seq[i] *= s.win[i]
	}
	s.fft.Coefficients(s.coeff, s.seq)
	for i, c := range s.coeff {
		s.power[i] = real(c)*real(c) + imag(c)*imag(c)
	}
}

// features are what one spectral window yields.
type features struct {
	medianHz float64 // median frequency of the EMG band, mains bins skipped
	score50  float64 // power at 50 Hz over its neighbours
	score60  float64
}

// analyse returns the window's features; the band is low..high Hz and the
// bins of mains and its harmonics below high are left out of the median,
// as the notch removes them from the envelope.
func (s *spectrum) analyse(rate, low, high, mains float64, harmonics int) features {
	df := rate / float64(s.n)
	kLo := max(1, int(math.Ceil(low/df)))
	kHi := min(len(s.power)-1, int(math.Floor(high/df)))
	skip := func(k int) bool {
		for h := 1; h <= harmonics; h++ {
			km := int(math.Round(float64(h) * mains / df))
			if k >= km-1 && k <= km+1 {
				return true
			}
		}
		return false
	}
	var total float64
	for k := kLo; k <= kHi; k++ {
		if !skip(k) {
			total += s.power[k]
		}
	}
	var f features
	if total > 0 {
		var cum float64
		for k := kLo; k <= kHi; k++ {
			if skip(k) {
				continue
			}
			cum += s.power[k]
			if cum >= total/2 {
				f.medianHz = float64(k) * df
				break
			}
		}
	}
	f.score50 = s.toneScore(50, df)
	f.score60 = s.toneScore(60, df)
	return f
}

// toneScore is the power in the bin at f over the median power of bins 3 to
// 6 away on both sides: a pure tone scores in the thousands, EMG about 1.
func (s *spectrum) toneScore(f, df float64) float64 {
	k := int(math.Round(f / df))
	if k-6 < 1 || k+6 >= len(s.power) {
		return 0
	}
	var nb [8]float64
	copy(nb[0:4], s.power[k-6:k-2])
	copy(nb[4:8], s.power[k+3:k+7])
	slices.Sort(nb[:])
	ref := (nb[3] + nb[4]) / 2
	peak := s.power[k]
	if ref <= 0 {
		if peak > 0 {
			return math.Inf(1)
		}
		return 0
	}
	return peak / ref
}

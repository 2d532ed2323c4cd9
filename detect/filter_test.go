package detect

import (
	"math"
	"testing"
)

func TestBandpassResponse(t *testing.T) {
	cfg := DefaultConfig()
	for _, rate := range rates {
		var bp bandpass
		bp.design(&cfg, rate)
		tests := []struct {
			f        float64
			min, max float64
		}{
			{5, 0, 0.01},      // motion artifact, ECG-ish drift: 4th order, two octaves down
			{100, 0.95, 1.01}, // the heart of the EMG band
			{bp.high * 1.5, 0, 0.25},
		}
		if rate >= 2000 {
			tests = append(tests, struct{ f, min, max float64 }{rate / 2 * 0.95, 0, 0.01})
		}
		for _, tc := range tests {
			if tc.f >= rate/2 {
				continue
			}
			g := bp.response(tc.f, rate)
			if g < tc.min || g > tc.max {
				t.Errorf("%g Hz: gain at %.1f Hz = %.4f, want %.2f..%.2f", rate, tc.f, g, tc.min, tc.max)
			}
		}
		if want := math.Min(450, 0.45*rate); bp.high != want {
			t.Errorf("%g Hz: upper edge %g, want %g", rate, bp.high, want)
		}
		// -3 dB at both edges: that is what a Butterworth edge means.
		for _, f := range []float64{bp.low, bp.high} {
			if g := bp.response(f, rate); math.Abs(g-math.Sqrt(0.5)) > 0.03 {
				t.Errorf("%g Hz: gain at edge %.1f Hz = %.3f, want 0.707", rate, f, g)
			}
		}
	}
}

func TestNotchResponse(t *testing.T) {
	cfg := DefaultConfig()
	for _, rate := range rates {
		for _, mains := range []float64{50, 60} {
			var bp bandpass
			bp.design(&cfg, rate)
			var nt notches
			nt.design(&cfg, rate, mains, bp.high)
			if nt.n < 1 {
				t.Fatalf("%g Hz: no notch", rate)
			}
			if g := nt.response(mains, rate); g > 1e-6 {
				t.Errorf("%g Hz: gain at mains %g Hz = %g, want ~0", rate, mains, g)
			}
			for h := 2.0; h <= 3; h++ {
				if h*mains < bp.high {
					if g := nt.response(h*mains, rate); g > 1e-6 {
						t.Errorf("%g Hz: gain at %gx%g Hz = %g, want ~0", rate, h, mains, g)
					}
				}
			}
			// Off the mains lines the EMG passes.
			for _, f := range []float64{mains + 8, 0.75 * mains, 1.5 * mains} {
				if g := nt.response(f, rate); g < 0.9 {
					t.Errorf("%g Hz: gain at %g Hz next to %g Hz mains = %.3f, want > 0.9", rate, f, mains, g)
				}
			}
		}
	}
}

// TestChainFiltersSignal runs sines through the real per-sample chain and
// checks the envelope, so the block loop matches the designed response.
func TestChainFiltersSignal(t *testing.T) {
	cfg := DefaultConfig()
	for _, rate := range rates {
		for _, tc := range []struct {
			f, mains float64
			min, max float64
		}{
			{100, 60, 0.95, 1.05}, {80, 50, 0.95, 1.05},
			{5, 50, 0, 0.01}, {50, 50, 0, 0.02}, {60, 60, 0, 0.02},
		} {
			var c chain
			n := int(rate) // one-second block
			c.design(&cfg, rate, tc.mains, n)
			x := make([]float64, n)
			amp := 10.0
			var s blockStats
			for blk := 0; blk < 3; blk++ { // let the filters settle
				for i := range x {
					ti := float64(blk*n+i) / rate
					x[i] = amp * math.Sin(2*math.Pi*tc.f*ti)
				}
				c.push(x)
				s = c.endBlock()
			}
			g := s.rms / (amp / math.Sqrt2)
			if g < tc.min || g > tc.max {
				t.Errorf("%g Hz, mains %g: chain gain at %g Hz = %.4f, want %.2f..%.2f", rate, tc.mains, tc.f, g, tc.min, tc.max)
			}
		}
	}
}

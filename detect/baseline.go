package detect

import "math"

// The baseline histogram spans 0.05 uV to 50 mV in log-spaced bins, 24 per
// decade (about 10 % wide): resting EMG, drift over hours and any gain the
// wearer's amplifier might have all fit, and a percentile read from it is
// accurate to a few percent.
const (
	histLo      = 0.05
	histPerDec  = 24
	histDecades = 6
	histBins    = histPerDec * histDecades
)

// baseline is a channel's robust resting level: a low percentile of the
// envelope blocks in an exponentially forgetting histogram. A low
// percentile ignores bursts even when they fill most of the recent past,
// forgetting lets it follow slow drift (electrodes drying, temperature),
// and fixed bins keep the state small and every update O(bins) at block
// rate with no allocation.
type baseline struct {
	counts [histBins]float64
	total  float64
	decay  float64 // per-block forgetting factor
	pct    float64
	level  float64 // current percentile, uV
	learnt float64 // seconds of real data learnt
}

func (b *baseline) init(cfg *Config, prior float64) {
	*b = baseline{}
	b.decay = math.Exp(-1 / (cfg.BaselineTauS * cfg.EnvelopeRate))
	b.pct = cfg.BaselinePercentile
	b.counts[histBin(prior)] = cfg.BaselinePriorS * cfg.EnvelopeRate
	b.total = cfg.BaselinePriorS * cfg.EnvelopeRate
	b.level = prior
}

func histBin(v float64) int {
	if !(v > histLo) {
		return 0
	}
	i := int(math.Log10(v/histLo) * histPerDec)
	return min(i, histBins-1)
}

// add learns one resting block of dt seconds and updates the level.
func (b *baseline) add(v, dt float64) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return
	}
	for i := range b.counts {
		b.counts[i] *= b.decay
	}
	b.total = b.total*b.decay + 1
	b.counts[histBin(v)]++
	b.learnt += dt
	b.update()
}

func (b *baseline) update() {
	want := b.pct * b.total
	var cum float64
	for i, c := range b.counts {
		if cum+c >= want && c > 0 {
			// Interpolate geometrically inside the bin.
			f := (want - cum) / c
			b.level = histLo * math.Pow(10, (float64(i)+f)/histPerDec)
			return
		}
		cum += c
	}
}

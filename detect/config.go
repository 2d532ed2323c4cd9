package detect

import (
	"errors"
	"fmt"
	"math"
)

// Config holds every tunable of the detector. Durations are in seconds of
// sample time, amplitudes in microvolts of envelope RMS, ratios are relative
// to the channel's resting baseline. DefaultConfig documents the defaults;
// docs/detection.md explains why each value was chosen.
type Config struct {
	// EnvelopeRate is the block rate of the envelope, features and state
	// machine, Hz. Default 10.
	EnvelopeRate float64

	// BandLowHz and BandHighHz bound the EMG band-pass. BandHighHz is clipped
	// to MaxHighFraction of the sample rate (0.45 keeps it below Nyquist with
	// room for the filter's roll-off). Defaults 20, 450, 0.45.
	BandLowHz, BandHighHz, MaxHighFraction float64

	// MainsHz fixes the mains frequency (50 or 60); 0 detects it from the
	// data, starting from MainsPriorHz. Defaults 0 and 50.
	MainsHz, MainsPriorHz float64
	// NotchQ is the quality factor of the mains notches (centre / -3 dB
	// width). NotchHarmonics is how many harmonics (1 = fundamental only)
	// are notched when below the band-pass upper edge. Defaults 30 and 3.
	NotchQ         float64
	NotchHarmonics int
	// MainsEvidence is the power ratio between the mains bin and its
	// neighbouring bins that counts as clear hum; MainsVotes is how many
	// consecutive spectral windows must agree before the notch switches.
	// MainsCheckS is the interval between mains checks once warmed up.
	// Defaults 10, 3, 5 s.
	MainsEvidence float64
	MainsVotes    int
	MainsCheckS   float64

	// BaselinePercentile is the low percentile of envelope blocks taken as
	// the resting level; BaselineTauS is the forgetting time constant of its
	// histogram. Defaults 0.25 and 600 s.
	BaselinePercentile float64
	BaselineTauS       float64
	// BaselinePriorUV is the resting level assumed before data arrives, with
	// the weight of BaselinePriorS seconds of blocks. Defaults 5 uV, 5 s.
	BaselinePriorUV float64
	BaselinePriorS  float64
	// BaselineFloorUV is the lowest baseline used for thresholds, so a very
	// quiet channel does not turn noise into huge ratios. Default 0.5 uV.
	BaselineFloorUV float64
	// WarmupS is how long a channel learns its baseline before events; during
	// warm-up the onset threshold is multiplied by WarmupFactor. Defaults
	// 30 s and 4.
	WarmupS      float64
	WarmupFactor float64
	// BaselineFreezeMaxS bounds how long an active burst freezes the
	// baseline, so a lasting step in the noise level is eventually learnt.
	// Default 300 s.
	BaselineFreezeMaxS float64

	// Activity threshold: a block is active when its RMS exceeds
	// baseline + max(OnsetK*baseline, OnsetMinUV). WASM's onset rule is an
	// EMG amplitude 8 uV over resting; the envelope is an RMS, and a signal
	// of amplitude 8 uV has an RMS of 8/sqrt(2) = 5.7 uV.
	// It is released when RMS stays below baseline + max(ReleaseK*baseline,
	// ReleaseMinUV) for LMReleaseS (bursts up to LMMaxS) or CrampReleaseS
	// (longer bursts). Defaults 1, 5.7 uV, 0.5, 4 uV, 0.5 s, 1 s.
	OnsetK, OnsetMinUV     float64
	ReleaseK, ReleaseMinUV float64
	LMReleaseS             float64
	CrampReleaseS          float64

	// Leg movements last LMMinS..LMMaxS; LMs on both legs whose spans are
	// within BilateralS count as one; PLMMinRun LMs in a row with onset
	// intervals in PLMMinIntervalS..PLMMaxIntervalS form a PLM series
	// (WASM 2016). Defaults 0.5, 10, 0.5, 4, 10, 90.
	LMMinS, LMMaxS                   float64
	BilateralS                       float64
	PLMMinRun                        int
	PLMMinIntervalS, PLMMaxIntervalS float64

	// Cramp evidence tiers, by envelope ratio to baseline and absolute floor:
	// CrampRatio/CrampMinUV is the level a sustained contraction must hold
	// to be a cramp at all, confirmed after WeakConfirmS; ModerateRatio
	// confirms after ModerateConfirmS; StrongRatio/StrongMinUV after
	// StrongConfirmS. Continuity is the fraction of blocks at the tier's level
	// required over the tier's hold window. Defaults 6, 20 uV, 10.5 s;
	// 12, 4.5 s; 25, 40 uV, 2 s; 0.8.
	CrampRatio, CrampMinUV          float64
	WeakConfirmS                    float64
	ModerateRatio, ModerateConfirmS float64
	StrongRatio, StrongMinUV        float64
	StrongConfirmS                  float64
	Continuity                      float64

	// CrosstalkRatio: a burst whose envelope above its baseline stays at
	// most this fraction of the envelope of another muscle of the same leg,
	// in a contraction that started no later (BilateralS), is that muscle's
	// contraction picked up by this channel (crosstalk), not a second cramp:
	// it is never confirmed, nor reported as a leg movement or a movement.
	// The ratio is of sums over the burst's last 0.75 x WeakConfirmS.
	// Default 0.3: a cramp of a second muscle of the same leg must reach
	// 30 % of the first's amplitude to be alerted on its own.
	CrosstalkRatio float64

	// Leg motion that makes a burst a movement: shank activity (high-passed
	// acceleration RMS, g), angular rate RMS (deg/s), or an orientation change
	// (deg) between StillBeforeS before the onset and now. Defaults 0.1 g,
	// 40 deg/s, 20 deg, 0.5 s.
	MoveActivityG float64
	MoveGyroDPS   float64
	MoveTiltDeg   float64
	StillBeforeS  float64
	// QuietActivityG is the most shank activity a confirmation before
	// WeakConfirmS allows: a cramp holds the leg, a leg movement (PLM) moves
	// it a little even when far below MoveActivityG. Default 0.03 g.
	QuietActivityG float64
	// IMUStaleS is how far IMU data may lag EMG before the leg's stillness is
	// treated as unknown instead of waited for. Default 2 s.
	IMUStaleS float64

	// Artifacts. GapMinS: shortest reported sensor gap (1 s). FlatLineUV and
	// FlatLineS: band-passed RMS below which a channel is flat, and for how
	// long (0.1 uV, 1 s). SaturationUV, SaturationRunS, SaturationFraction: a
	// run of identical samples of magnitude at least SaturationUV lasting
	// SaturationRunS marks saturation once such runs fill SaturationFraction
	// of a block (1000 uV, 5 ms, 0.2). LeadOffDCUV: raw block mean magnitude
	// that means the electrode is off (5000 uV). HumRatio and
	// HumMinUV: mains hum overload when the power removed by the notches is
	// HumRatio times the EMG band power and its RMS is at least HumMinUV
	// (25, 20 uV). ArtifactHoldS: an episode ends only after this long
	// without a flagged block (1 s).
	GapMinS            float64
	FlatLineUV         float64
	FlatLineS          float64
	SaturationUV       float64
	SaturationRunS     float64
	SaturationFraction float64
	LeadOffDCUV        float64
	HumRatio, HumMinUV float64
	ArtifactHoldS      float64
}

// DefaultConfig returns the configuration documented in docs/detection.md.
func DefaultConfig() Config {
	return Config{
		EnvelopeRate:    10,
		BandLowHz:       20,
		BandHighHz:      450,
		MaxHighFraction: 0.45,

		MainsHz:        0,
		MainsPriorHz:   50,
		NotchQ:         30,
		NotchHarmonics: 3,
		MainsEvidence:  10,
		MainsVotes:     3,
		MainsCheckS:    5,

		BaselinePercentile: 0.25,
		BaselineTauS:       600,
		BaselinePriorUV:    5,
		BaselinePriorS:     5,
		BaselineFloorUV:    0.5,
		WarmupS:            30,
		WarmupFactor:       4,
		BaselineFreezeMaxS: 300,

		OnsetK:        1,
		OnsetMinUV:    5.7,
		ReleaseK:      0.5,
		ReleaseMinUV:  4,
		LMReleaseS:    0.5,
		CrampReleaseS: 1,

		LMMinS:          0.5,
		LMMaxS:          10,
		BilateralS:      0.5,
		PLMMinRun:       4,
		PLMMinIntervalS: 10,
		PLMMaxIntervalS: 90,

		CrampRatio:       6,
		CrampMinUV:       20,
		WeakConfirmS:     10.5,
		ModerateRatio:    12,
		ModerateConfirmS: 4.5,
		StrongRatio:      25,
		StrongMinUV:      40,
		StrongConfirmS:   2,
		Continuity:       0.8,
		CrosstalkRatio:   0.3,

		MoveActivityG:  0.1,
		MoveGyroDPS:    40,
		MoveTiltDeg:    20,
		StillBeforeS:   0.5,
		QuietActivityG: 0.03,
		IMUStaleS:      2,

		GapMinS:            1,
		FlatLineUV:         0.1,
		FlatLineS:          1,
		SaturationUV:       1000,
		SaturationRunS:     0.005,
		SaturationFraction: 0.2,
		LeadOffDCUV:        5000,
		HumRatio:           25,
		HumMinUV:           20,
		ArtifactHoldS:      1,
	}
}

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	var errs []error
	pos := func(name string, v float64) {
		if !(v > 0) || math.IsInf(v, 0) {
			errs = append(errs, fmt.Errorf("detect: %s must be positive and finite, got %v", name, v))
		}
	}
	nonneg := func(name string, v float64) {
		if !(v >= 0) || math.IsInf(v, 0) {
			errs = append(errs, fmt.Errorf("detect: %s must be >= 0 and finite, got %v", name, v))
		}
	}
	frac := func(name string, v float64) {
		if !(v > 0 && v < 1) {
			errs = append(errs, fmt.Errorf("detect: %s must be in (0, 1), got %v", name, v))
		}
	}
	pos("EnvelopeRate", c.EnvelopeRate)
	if c.EnvelopeRate > 100 {
		errs = append(errs, fmt.Errorf("detect: EnvelopeRate %v Hz is above 100 Hz", c.EnvelopeRate))
	}
	pos("BandLowHz", c.BandLowHz)
	pos("BandHighHz", c.BandHighHz)
	if c.BandHighHz <= c.BandLowHz {
		errs = append(errs, fmt.Errorf("detect: BandHighHz %v must exceed BandLowHz %v", c.BandHighHz, c.BandLowHz))
	}
	if !(c.MaxHighFraction > 0 && c.MaxHighFraction < 0.5) {
		errs = append(errs, fmt.Errorf("detect: MaxHighFraction must be in (0, 0.5), got %v", c.MaxHighFraction))
	}
	// The band's low edge must sit below the clipped high edge at the
	// lowest accepted rate (250 Hz), or the band would be empty.
	if c.BandLowHz >= c.MaxHighFraction*250 {
		errs = append(errs, fmt.Errorf("detect: BandLowHz %v leaves no band at 250 Hz", c.BandLowHz))
	}
	if c.MainsHz != 0 && c.MainsHz != 50 && c.MainsHz != 60 {
		errs = append(errs, fmt.Errorf("detect: MainsHz must be 0 (auto), 50 or 60, got %v", c.MainsHz))
	}
	if c.MainsPriorHz != 50 && c.MainsPriorHz != 60 {
		errs = append(errs, fmt.Errorf("detect: MainsPriorHz must be 50 or 60, got %v", c.MainsPriorHz))
	}
	pos("NotchQ", c.NotchQ)
	if c.NotchHarmonics < 0 || c.NotchHarmonics > maxNotches {
		errs = append(errs, fmt.Errorf("detect: NotchHarmonics must be 0..%d, got %d", maxNotches, c.NotchHarmonics))
	}
	pos("MainsEvidence", c.MainsEvidence)
	if c.MainsVotes < 1 {
		errs = append(errs, fmt.Errorf("detect: MainsVotes must be >= 1, got %d", c.MainsVotes))
	}
	pos("MainsCheckS", c.MainsCheckS)
	frac("BaselinePercentile", c.BaselinePercentile)
	pos("BaselineTauS", c.BaselineTauS)
	pos("BaselinePriorUV", c.BaselinePriorUV)
	pos("BaselinePriorS", c.BaselinePriorS)
	pos("BaselineFloorUV", c.BaselineFloorUV)
	nonneg("WarmupS", c.WarmupS)
	if !(c.WarmupFactor >= 1) {
		errs = append(errs, fmt.Errorf("detect: WarmupFactor must be >= 1, got %v", c.WarmupFactor))
	}
	pos("BaselineFreezeMaxS", c.BaselineFreezeMaxS)
	pos("OnsetK", c.OnsetK)
	nonneg("OnsetMinUV", c.OnsetMinUV)
	pos("ReleaseK", c.ReleaseK)
	nonneg("ReleaseMinUV", c.ReleaseMinUV)
	if c.ReleaseK > c.OnsetK || c.ReleaseMinUV > c.OnsetMinUV {
		errs = append(errs, errors.New("detect: release threshold must not exceed the onset threshold (hysteresis)"))
	}
	pos("LMReleaseS", c.LMReleaseS)
	pos("CrampReleaseS", c.CrampReleaseS)
	pos("LMMinS", c.LMMinS)
	if c.LMMaxS <= c.LMMinS {
		errs = append(errs, fmt.Errorf("detect: LMMaxS %v must exceed LMMinS %v", c.LMMaxS, c.LMMinS))
	}
	nonneg("BilateralS", c.BilateralS)
	if c.PLMMinRun < 2 || c.PLMMinRun > maxPLMRun {
		errs = append(errs, fmt.Errorf("detect: PLMMinRun must be 2..%d, got %d", maxPLMRun, c.PLMMinRun))
	}
	pos("PLMMinIntervalS", c.PLMMinIntervalS)
	if c.PLMMaxIntervalS <= c.PLMMinIntervalS {
		errs = append(errs, errors.New("detect: PLMMaxIntervalS must exceed PLMMinIntervalS"))
	}
	pos("CrampRatio", c.CrampRatio)
	nonneg("CrampMinUV", c.CrampMinUV)
	if !(c.ModerateRatio >= c.CrampRatio && c.StrongRatio >= c.ModerateRatio) {
		errs = append(errs, errors.New("detect: need CrampRatio <= ModerateRatio <= StrongRatio"))
	}
	nonneg("StrongMinUV", c.StrongMinUV)
	pos("StrongConfirmS", c.StrongConfirmS)
	if !(c.StrongConfirmS <= c.ModerateConfirmS && c.ModerateConfirmS <= c.WeakConfirmS) {
		errs = append(errs, errors.New("detect: need StrongConfirmS <= ModerateConfirmS <= WeakConfirmS"))
	}
	if c.WeakConfirmS <= c.LMMaxS {
		errs = append(errs, fmt.Errorf("detect: WeakConfirmS %v must exceed LMMaxS %v so a PLM is ruled out first", c.WeakConfirmS, c.LMMaxS))
	}
	if c.WeakConfirmS > maxHistoryS-1 {
		errs = append(errs, fmt.Errorf("detect: WeakConfirmS must be below %v s", maxHistoryS-1))
	}
	if !(c.Continuity > 0 && c.Continuity <= 1) {
		errs = append(errs, fmt.Errorf("detect: Continuity must be in (0, 1], got %v", c.Continuity))
	}
	if !(c.CrosstalkRatio > 0 && c.CrosstalkRatio < 1) {
		errs = append(errs, fmt.Errorf("detect: CrosstalkRatio must be in (0, 1), got %v", c.CrosstalkRatio))
	}
	pos("MoveActivityG", c.MoveActivityG)
	pos("MoveGyroDPS", c.MoveGyroDPS)
	pos("MoveTiltDeg", c.MoveTiltDeg)
	nonneg("StillBeforeS", c.StillBeforeS)
	pos("QuietActivityG", c.QuietActivityG)
	pos("IMUStaleS", c.IMUStaleS)
	pos("GapMinS", c.GapMinS)
	nonneg("FlatLineUV", c.FlatLineUV)
	pos("FlatLineS", c.FlatLineS)
	pos("SaturationUV", c.SaturationUV)
	pos("SaturationRunS", c.SaturationRunS)
	frac("SaturationFraction", c.SaturationFraction)
	pos("LeadOffDCUV", c.LeadOffDCUV)
	pos("HumRatio", c.HumRatio)
	nonneg("HumMinUV", c.HumMinUV)
	pos("ArtifactHoldS", c.ArtifactHoldS)
	return errors.Join(errs...)
}

// Limits that size fixed arrays.
const (
	maxPLMRun   = 16 // longest PLMMinRun, and members held for one series
	maxHistoryS = 14 // seconds of block history a channel keeps
)

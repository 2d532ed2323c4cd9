package firmwaresim

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sort"

	"go.yaml.in/yaml/v3"

	"github.com/crampwatch/crampwatch/wire"
)

// Range is a closed interval [min, max], written [min, max] in scenario files.
type Range [2]float64

// Min returns the lower bound.
func (r Range) Min() float64 { return r[0] }

// Max returns the upper bound.
func (r Range) Max() float64 { return r[1] }

func (r Range) valid(lo, hi float64) bool {
	return !math.IsNaN(r[0]) && !math.IsNaN(r[1]) && r[0] <= r[1] && r[0] >= lo && r[1] <= hi
}

// Scenario configures a simulated night: sensors, wearer physiology, how often
// each kind of event happens, artifacts and transport faults. Scenario files
// (YAML or JSON) only need the fields that differ from DefaultScenario.
type Scenario struct {
	Name        string  `yaml:"name" json:"name"`
	Description string  `yaml:"description" json:"description"`
	Hours       float64 `yaml:"hours" json:"hours"` // length of the night

	Rate     float64  `yaml:"rate" json:"rate"`         // EMG samples per second per channel, 250..4000
	FrameMS  float64  `yaml:"frame_ms" json:"frame_ms"` // EMG frame length, milliseconds
	Channels []string `yaml:"channels" json:"channels"` // EMG channel labels, e.g. calf_left
	Unit     string   `yaml:"unit" json:"unit"`         // unit on the wire: uV or mV

	IMURate    float64  `yaml:"imu_rate" json:"imu_rate"`         // IMU samples per second
	IMUFrameMS float64  `yaml:"imu_frame_ms" json:"imu_frame_ms"` // IMU frame length, milliseconds
	IMUSites   []string `yaml:"imu_sites" json:"imu_sites"`       // IMU site labels, e.g. shank_left
	// IMUStagger, when true, offsets site k of n by k/n of a frame period,
	// like firmware that reads its IMUs in turn; the merged imu stream's t0
	// then increases from frame to frame. When false every site samples at
	// the same instants, like firmware with one sample clock for all IMUs:
	// the sites' frames of one period carry the same t0 under consecutive
	// sequence numbers, which wire contract v1 allows (t0 is monotonic per
	// site).
	IMUStagger bool `yaml:"imu_stagger" json:"imu_stagger"`

	StatusEveryS float64 `yaml:"status_every_s" json:"status_every_s"` // periodic status interval, seconds
	Encoding     string  `yaml:"encoding" json:"encoding"`             // json or binary
	Mains        float64 `yaml:"mains" json:"mains"`                   // mains frequency, 50 or 60 Hz

	// SettleS is the time at the start of the night without scheduled events,
	// while the wearer falls asleep (and the detector learns the resting level).
	SettleS float64 `yaml:"settle_s" json:"settle_s"`
	// GuardS is the minimum quiet time between two events on the same leg.
	GuardS float64 `yaml:"guard_s" json:"guard_s"`

	Wearer    WearerConfig    `yaml:"wearer" json:"wearer"`
	Cramps    CrampConfig     `yaml:"cramps" json:"cramps"`
	PLM       PLMConfig       `yaml:"plm" json:"plm"`
	Movements MovementConfig  `yaml:"movements" json:"movements"`
	Artifacts ArtifactConfig  `yaml:"artifacts" json:"artifacts"`
	Transport TransportConfig `yaml:"transport" json:"transport"`
}

// WearerConfig sets the ranges from which each virtual wearer's physiology and
// electrode setup are drawn.
type WearerConfig struct {
	// Gain multiplies every physiological EMG amplitude of a wearer (skin,
	// subcutaneous fat, electrode placement).
	Gain Range `yaml:"gain" json:"gain"`
	// RestUV is the resting EMG level, microvolts RMS, before gain.
	RestUV Range `yaml:"rest_uv" json:"rest_uv"`
	// ChannelSpread varies the resting level per channel by up to this fraction.
	ChannelSpread float64 `yaml:"channel_spread" json:"channel_spread"`
	// RestModulation is the depth of the slow (sleep-cycle) modulation of the resting level.
	RestModulation float64 `yaml:"rest_modulation" json:"rest_modulation"`
	// WanderUV is the amplitude of baseline wander (slow DC drift below 1 Hz).
	WanderUV Range `yaml:"wander_uv" json:"wander_uv"`
	// HumUV is the normal mains hum amplitude at the electrodes.
	HumUV Range `yaml:"hum_uv" json:"hum_uv"`
	// SensorNoiseUV is the amplifier's white noise, RMS.
	SensorNoiseUV Range `yaml:"sensor_noise_uv" json:"sensor_noise_uv"`
	// RailUV is the amplifier's full scale: samples are clipped to +-RailUV.
	RailUV float64 `yaml:"rail_uv" json:"rail_uv"`
	// LSBUV is the resolution samples are quantised to.
	LSBUV float64 `yaml:"lsb_uv" json:"lsb_uv"`
}

// CrampConfig sets how often cramps happen and what they look like.
type CrampConfig struct {
	// PerNight is the mean of the Poisson number of cramps per night.
	PerNight float64 `yaml:"per_night" json:"per_night"`
	// EveryS, when positive, replaces the Poisson count with one cramp every
	// EveryS seconds (onsets jittered by up to 10%).
	EveryS float64 `yaml:"every_s" json:"every_s"`
	// DurationS bounds the duration; durations are log-normal around
	// DurationMedianS with log-space standard deviation DurationSigma.
	DurationS       Range   `yaml:"duration_s" json:"duration_s"`
	DurationMedianS float64 `yaml:"duration_median_s" json:"duration_median_s"`
	DurationSigma   float64 `yaml:"duration_sigma" json:"duration_sigma"`
	// RampS is the onset ramp, ReleaseS the final relaxation.
	RampS    Range `yaml:"ramp_s" json:"ramp_s"`
	ReleaseS Range `yaml:"release_s" json:"release_s"`
	// PeakUV is the contraction level, microvolts RMS before gain, drawn log-uniformly.
	PeakUV Range `yaml:"peak_uv" json:"peak_uv"`
	// Muscles weights the muscles a cramp hits, among the channels of the chosen leg.
	Muscles map[string]float64 `yaml:"muscles" json:"muscles"`
	// Crosstalk is the fraction of the cramp's EMG that other channels of the same leg pick up.
	Crosstalk float64 `yaml:"crosstalk" json:"crosstalk"`
	// DipsPerMinute is the rate of brief partial relaxations during a cramp.
	DipsPerMinute float64 `yaml:"dips_per_minute" json:"dips_per_minute"`
	// TiltDeg is the shank tilt change from forced plantar flexion, degrees.
	TiltDeg Range `yaml:"tilt_deg" json:"tilt_deg"`
	// ReactionProb is the probability that the wearer, woken by the cramp,
	// moves the cramping leg (pulls it up, reaches for the foot) during the
	// cramp: ReactionS of large motion starting ReactionDelayS after onset.
	// The cramp goes on; the motion is part of the cramp truth.
	ReactionProb   float64 `yaml:"reaction_prob" json:"reaction_prob"`
	ReactionDelayS Range   `yaml:"reaction_delay_s" json:"reaction_delay_s"`
	ReactionS      Range   `yaml:"reaction_s" json:"reaction_s"`
}

// PLMConfig sets periodic limb movement series and isolated leg movements.
type PLMConfig struct {
	// WearerFraction is the probability that a wearer has PLM series at all.
	WearerFraction float64 `yaml:"wearer_fraction" json:"wearer_fraction"`
	// SeriesPerNight is the Poisson mean of series per night for such a wearer.
	SeriesPerNight float64 `yaml:"series_per_night" json:"series_per_night"`
	// Movements bounds the number of movements in one series.
	Movements Range `yaml:"movements" json:"movements"`
	// IntervalS bounds a series' mean onset-to-onset interval; JitterS is the
	// standard deviation of each interval around that mean.
	IntervalS Range   `yaml:"interval_s" json:"interval_s"`
	JitterS   float64 `yaml:"jitter_s" json:"jitter_s"`
	// BurstS bounds the EMG burst duration; LongBurstFraction of bursts last
	// between BurstS max and 10 s instead.
	BurstS            Range   `yaml:"burst_s" json:"burst_s"`
	LongBurstFraction float64 `yaml:"long_burst_fraction" json:"long_burst_fraction"`
	// AmplitudeUV is the burst level above rest, microvolts RMS before gain.
	AmplitudeUV Range `yaml:"amplitude_uv" json:"amplitude_uv"`
	// Bilateral is the probability that a movement involves both legs (onsets within 0.5 s).
	Bilateral float64 `yaml:"bilateral" json:"bilateral"`
	// DorsiflexionDeg is the shank tilt blip of one movement.
	DorsiflexionDeg Range `yaml:"dorsiflexion_deg" json:"dorsiflexion_deg"`
	// IsolatedPerNight is the Poisson mean of isolated leg movements (not in a
	// series; truth kind "lm"), for every wearer.
	IsolatedPerNight float64 `yaml:"isolated_per_night" json:"isolated_per_night"`
}

// MovementConfig sets voluntary and postural movements.
type MovementConfig struct {
	TurnsPerNight  float64 `yaml:"turns_per_night" json:"turns_per_night"`     // Poisson mean of turning over
	TurnS          Range   `yaml:"turn_s" json:"turn_s"`                       // duration of turning over
	TurnRollDeg    Range   `yaml:"turn_roll_deg" json:"turn_roll_deg"`         // shank rotation when turning over
	EMGUV          Range   `yaml:"emg_uv" json:"emg_uv"`                       // EMG burst level, uV RMS before gain
	GetUpsPerNight float64 `yaml:"get_ups_per_night" json:"get_ups_per_night"` // Poisson mean of getting up
	GetUpS         Range   `yaml:"get_up_s" json:"get_up_s"`                   // duration of large motion when getting up
	// MotionSpikes bounds the number of electrode motion spikes per movement
	// and MotionSpikeUV their size.
	MotionSpikes  Range `yaml:"motion_spikes" json:"motion_spikes"`
	MotionSpikeUV Range `yaml:"motion_spike_uv" json:"motion_spike_uv"`
	// StretchesPerNight is the Poisson mean of voluntary stretches of one leg
	// (pointing the foot, tensing the calf): StretchS of sustained EMG at
	// StretchUV with a moderate shank movement of StretchDeg. They look like
	// the start of a cramp, but the leg moves; truth kind movement.
	StretchesPerNight float64 `yaml:"stretches_per_night" json:"stretches_per_night"`
	StretchS          Range   `yaml:"stretch_s" json:"stretch_s"`
	StretchUV         Range   `yaml:"stretch_uv" json:"stretch_uv"`
	StretchDeg        Range   `yaml:"stretch_deg" json:"stretch_deg"`
}

// ArtifactConfig sets how often each artifact happens (Poisson means per
// night) and how long it lasts.
type ArtifactConfig struct {
	LeadOffPerNight    float64 `yaml:"lead_off_per_night" json:"lead_off_per_night"`
	LeadOffS           Range   `yaml:"lead_off_s" json:"lead_off_s"`
	FlatPerNight       float64 `yaml:"flat_per_night" json:"flat_per_night"`
	FlatS              Range   `yaml:"flat_s" json:"flat_s"`
	SaturationPerNight float64 `yaml:"saturation_per_night" json:"saturation_per_night"`
	SaturationS        Range   `yaml:"saturation_s" json:"saturation_s"`
	HumPerNight        float64 `yaml:"hum_per_night" json:"hum_per_night"`
	HumS               Range   `yaml:"hum_s" json:"hum_s"`
	HumUV              Range   `yaml:"hum_uv" json:"hum_uv"`
	GapsPerNight       float64 `yaml:"gaps_per_night" json:"gaps_per_night"`
	GapS               Range   `yaml:"gap_s" json:"gap_s"`
}

// TransportConfig sets faults between the firmware and the broker.
type TransportConfig struct {
	LossProb float64 `yaml:"loss_prob" json:"loss_prob"` // probability a frame is lost
	DupProb  float64 `yaml:"dup_prob" json:"dup_prob"`   // probability a frame is sent twice
	JitterUS float64 `yaml:"jitter_us" json:"jitter_us"` // T0 clock jitter, +- microseconds
}

// DefaultScenario is a typical night: 8 hours, 1 kHz EMG on both calves,
// 50 Hz IMU on both shanks, about 1.5 cramps, PLM in a third of wearers,
// a dozen position changes, a few artifacts and light transport faults.
func DefaultScenario() Scenario {
	return Scenario{
		Name:         "typical",
		Description:  "a typical 8 h night",
		Hours:        8,
		Rate:         1000,
		FrameMS:      100,
		Channels:     []string{"calf_left", "calf_right"},
		Unit:         "uV",
		IMURate:      50,
		IMUFrameMS:   100,
		IMUSites:     []string{"shank_left", "shank_right"},
		IMUStagger:   true,
		StatusEveryS: 300,
		Encoding:     "json",
		Mains:        50,
		SettleS:      120,
		GuardS:       10,
		Wearer: WearerConfig{
			Gain:           Range{0.7, 1.4},
			RestUV:         Range{2, 6},
			ChannelSpread:  0.2,
			RestModulation: 0.15,
			WanderUV:       Range{10, 50},
			HumUV:          Range{0.5, 4},
			SensorNoiseUV:  Range{0.3, 0.8},
			RailUV:         20000,
			LSBUV:          0.01,
		},
		Cramps: CrampConfig{
			PerNight:        1.5,
			DurationS:       Range{5, 600},
			DurationMedianS: 60,
			DurationSigma:   1.0,
			RampS:           Range{0.5, 3},
			ReleaseS:        Range{1, 5},
			PeakUV:          Range{80, 800},
			Muscles:         map[string]float64{"calf": 0.85, "hamstring": 0.08, "quadriceps": 0.02, "tibialis": 0.05},
			Crosstalk:       0.08,
			DipsPerMinute:   1.5,
			TiltDeg:         Range{1, 6},
			ReactionProb:    0.3,
			ReactionDelayS:  Range{8, 60},
			ReactionS:       Range{2, 6},
		},
		PLM: PLMConfig{
			WearerFraction:    0.35,
			SeriesPerNight:    3,
			Movements:         Range{4, 40},
			IntervalS:         Range{15, 40},
			JitterS:           3,
			BurstS:            Range{0.5, 5},
			LongBurstFraction: 0.05,
			AmplitudeUV:       Range{15, 60},
			Bilateral:         0.25,
			DorsiflexionDeg:   Range{2, 8},
			IsolatedPerNight:  6,
		},
		Movements: MovementConfig{
			TurnsPerNight:     12,
			TurnS:             Range{1, 4},
			TurnRollDeg:       Range{40, 170},
			EMGUV:             Range{30, 300},
			GetUpsPerNight:    0.7,
			GetUpS:            Range{4, 12},
			MotionSpikes:      Range{0, 4},
			MotionSpikeUV:     Range{100, 1500},
			StretchesPerNight: 3,
			StretchS:          Range{2, 8},
			StretchUV:         Range{50, 400},
			StretchDeg:        Range{8, 25},
		},
		Artifacts: ArtifactConfig{
			LeadOffPerNight:    0.4,
			LeadOffS:           Range{5, 600},
			FlatPerNight:       0.3,
			FlatS:              Range{2, 60},
			SaturationPerNight: 1,
			SaturationS:        Range{0.1, 2},
			HumPerNight:        0.3,
			HumS:               Range{10, 300},
			HumUV:              Range{30, 200},
			GapsPerNight:       1,
			GapS:               Range{1.5, 20},
		},
		Transport: TransportConfig{
			LossProb: 0.002,
			DupProb:  0.002,
			JitterUS: 1000,
		},
	}
}

// WithHours returns sc lasting h hours, with every per-night mean scaled by
// h/sc.Hours so that events keep their rate per hour. Fixed-interval cramps
// (Cramps.EveryS) need no scaling.
func (sc Scenario) WithHours(h float64) Scenario {
	k := h / sc.Hours
	sc.Hours = h
	sc.Cramps.PerNight *= k
	sc.PLM.SeriesPerNight *= k
	sc.PLM.IsolatedPerNight *= k
	sc.Movements.TurnsPerNight *= k
	sc.Movements.GetUpsPerNight *= k
	sc.Movements.StretchesPerNight *= k
	a := &sc.Artifacts
	a.LeadOffPerNight *= k
	a.FlatPerNight *= k
	a.SaturationPerNight *= k
	a.HumPerNight *= k
	a.GapsPerNight *= k
	return sc
}

// LoadScenario reads a scenario file (YAML, or JSON which is valid YAML) on
// top of DefaultScenario, so a file only needs what differs. Unknown keys are
// an error, so a typo never silently falls back to a default.
func LoadScenario(path string) (Scenario, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Scenario{}, fmt.Errorf("scenario: %w", err)
	}
	sc, err := ParseScenario(b)
	if err != nil {
		return Scenario{}, fmt.Errorf("scenario %s: %w", path, err)
	}
	return sc, nil
}

// ParseScenario is LoadScenario on bytes already read.
func ParseScenario(b []byte) (Scenario, error) {
	sc := DefaultScenario()
	// A file that sets muscles replaces the default weights rather than
	// merging with them, like every other list.
	var probe struct {
		Cramps struct {
			Muscles map[string]float64 `yaml:"muscles"`
		} `yaml:"cramps"`
	}
	if err := yaml.Unmarshal(b, &probe); err == nil && probe.Cramps.Muscles != nil {
		sc.Cramps.Muscles = nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&sc); err != nil && !errors.Is(err, io.EOF) {
		return Scenario{}, fmt.Errorf("decode: %w", err)
	}
	if err := sc.Validate(); err != nil {
		return Scenario{}, err
	}
	return sc, nil
}

// Validate checks that the scenario can be simulated and that every frame it
// produces passes wire validation.
func (sc *Scenario) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if !(sc.Hours > 0 && sc.Hours <= 48) {
		bad("hours %v: want 0 < hours <= 48", sc.Hours)
	}
	if !(sc.Rate >= wire.MinEMGRate && sc.Rate <= wire.MaxEMGRate) {
		bad("rate %v: want %d..%d", sc.Rate, wire.MinEMGRate, wire.MaxEMGRate)
	}
	if !(sc.FrameMS >= 10 && sc.FrameMS <= 1000) || sc.Rate*sc.FrameMS/1000 < 1 {
		bad("frame_ms %v: want 10..1000 and at least one sample", sc.FrameMS)
	}
	if !(sc.IMURate >= wire.MinIMURate && sc.IMURate <= wire.MaxIMURate) {
		bad("imu_rate %v: want %d..%d", sc.IMURate, wire.MinIMURate, wire.MaxIMURate)
	}
	if !(sc.IMUFrameMS >= 10 && sc.IMUFrameMS <= 1000) || sc.IMURate*sc.IMUFrameMS/1000 < 1 {
		bad("imu_frame_ms %v: want 10..1000 and at least one sample", sc.IMUFrameMS)
	}
	if len(sc.Channels) == 0 || len(sc.Channels) > wire.MaxChannels {
		bad("channels: want 1..%d", wire.MaxChannels)
	}
	seen := map[string]bool{}
	for _, l := range sc.Channels {
		if _, err := wire.ParseChannel(l); err != nil {
			bad("channels: %w", err)
		}
		if seen[l] {
			bad("channels: %q twice", l)
		}
		seen[l] = true
	}
	for _, l := range sc.IMUSites {
		if _, err := wire.ParseSite(l); err != nil {
			bad("imu_sites: %w", err)
		}
		if seen[l] {
			bad("imu_sites: %q twice", l)
		}
		seen[l] = true
	}
	if sc.Unit != "uV" && sc.Unit != "mV" {
		bad("unit %q: want uV or mV", sc.Unit)
	}
	if sc.Encoding != "json" && sc.Encoding != "binary" {
		bad("encoding %q: want json or binary", sc.Encoding)
	}
	if sc.Mains != 50 && sc.Mains != 60 {
		bad("mains %v: want 50 or 60", sc.Mains)
	}
	if !(sc.StatusEveryS >= 1) {
		bad("status_every_s %v: want >= 1", sc.StatusEveryS)
	}
	if !(sc.SettleS >= 0) || !(sc.GuardS >= 0) {
		bad("settle_s and guard_s must be >= 0")
	}
	const inf = math.MaxFloat64
	ranges := []struct {
		name   string
		r      Range
		lo, hi float64
	}{
		{"wearer.gain", sc.Wearer.Gain, 0.01, 100},
		{"wearer.rest_uv", sc.Wearer.RestUV, 0, 1000},
		{"wearer.wander_uv", sc.Wearer.WanderUV, 0, 10000},
		{"wearer.hum_uv", sc.Wearer.HumUV, 0, 10000},
		{"wearer.sensor_noise_uv", sc.Wearer.SensorNoiseUV, 0, 1000},
		{"cramps.duration_s", sc.Cramps.DurationS, 1, 3600},
		{"cramps.ramp_s", sc.Cramps.RampS, 0.05, 30},
		{"cramps.release_s", sc.Cramps.ReleaseS, 0.05, 60},
		{"cramps.peak_uv", sc.Cramps.PeakUV, 1, 10000},
		{"cramps.tilt_deg", sc.Cramps.TiltDeg, 0, 45},
		{"cramps.reaction_delay_s", sc.Cramps.ReactionDelayS, 0, 3600},
		{"cramps.reaction_s", sc.Cramps.ReactionS, 0.1, 600},
		{"movements.stretch_s", sc.Movements.StretchS, 0.1, 600},
		{"movements.stretch_uv", sc.Movements.StretchUV, 0, 10000},
		{"movements.stretch_deg", sc.Movements.StretchDeg, 0, 90},
		{"plm.movements", sc.PLM.Movements, 1, 400},
		{"plm.interval_s", sc.PLM.IntervalS, 1, 300},
		{"plm.burst_s", sc.PLM.BurstS, 0.05, 60},
		{"plm.amplitude_uv", sc.PLM.AmplitudeUV, 0, 10000},
		{"plm.dorsiflexion_deg", sc.PLM.DorsiflexionDeg, 0, 45},
		{"movements.turn_s", sc.Movements.TurnS, 0.1, 60},
		{"movements.turn_roll_deg", sc.Movements.TurnRollDeg, 0, 360},
		{"movements.emg_uv", sc.Movements.EMGUV, 0, 10000},
		{"movements.get_up_s", sc.Movements.GetUpS, 0.1, 600},
		{"movements.motion_spikes", sc.Movements.MotionSpikes, 0, 50},
		{"movements.motion_spike_uv", sc.Movements.MotionSpikeUV, 0, 100000},
		{"artifacts.lead_off_s", sc.Artifacts.LeadOffS, 0.1, 36000},
		{"artifacts.flat_s", sc.Artifacts.FlatS, 0.1, 36000},
		{"artifacts.saturation_s", sc.Artifacts.SaturationS, 0.01, 3600},
		{"artifacts.hum_s", sc.Artifacts.HumS, 0.1, 36000},
		{"artifacts.hum_uv", sc.Artifacts.HumUV, 0, 100000},
		{"artifacts.gap_s", sc.Artifacts.GapS, 0.01, 36000},
	}
	for _, r := range ranges {
		if !r.r.valid(r.lo, r.hi) {
			bad("%s %v: want min <= max within [%v, %v]", r.name, [2]float64(r.r), r.lo, r.hi)
		}
	}
	nonneg := []struct {
		name string
		v    float64
		hi   float64
	}{
		{"wearer.channel_spread", sc.Wearer.ChannelSpread, 0.9},
		{"wearer.rest_modulation", sc.Wearer.RestModulation, 0.9},
		{"cramps.per_night", sc.Cramps.PerNight, 1000},
		{"cramps.every_s", sc.Cramps.EveryS, inf},
		{"cramps.duration_median_s", sc.Cramps.DurationMedianS, 3600},
		{"cramps.duration_sigma", sc.Cramps.DurationSigma, 10},
		{"cramps.crosstalk", sc.Cramps.Crosstalk, 1},
		{"cramps.dips_per_minute", sc.Cramps.DipsPerMinute, 60},
		{"cramps.reaction_prob", sc.Cramps.ReactionProb, 1},
		{"movements.stretches_per_night", sc.Movements.StretchesPerNight, 1000},
		{"plm.wearer_fraction", sc.PLM.WearerFraction, 1},
		{"plm.series_per_night", sc.PLM.SeriesPerNight, 1000},
		{"plm.jitter_s", sc.PLM.JitterS, 100},
		{"plm.long_burst_fraction", sc.PLM.LongBurstFraction, 1},
		{"plm.bilateral", sc.PLM.Bilateral, 1},
		{"plm.isolated_per_night", sc.PLM.IsolatedPerNight, 1000},
		{"movements.turns_per_night", sc.Movements.TurnsPerNight, 1000},
		{"movements.get_ups_per_night", sc.Movements.GetUpsPerNight, 1000},
		{"artifacts.lead_off_per_night", sc.Artifacts.LeadOffPerNight, 1000},
		{"artifacts.flat_per_night", sc.Artifacts.FlatPerNight, 1000},
		{"artifacts.saturation_per_night", sc.Artifacts.SaturationPerNight, 1000},
		{"artifacts.hum_per_night", sc.Artifacts.HumPerNight, 1000},
		{"artifacts.gaps_per_night", sc.Artifacts.GapsPerNight, 1000},
		{"transport.loss_prob", sc.Transport.LossProb, 0.5},
		{"transport.dup_prob", sc.Transport.DupProb, 0.5},
		{"transport.jitter_us", sc.Transport.JitterUS, 1e6},
	}
	for _, v := range nonneg {
		if !(v.v >= 0 && v.v <= v.hi) {
			bad("%s %v: want 0..%v", v.name, v.v, v.hi)
		}
	}
	if sc.Cramps.EveryS != 0 && !(sc.Cramps.EveryS >= 1) {
		bad("cramps.every_s %v: want 0 (Poisson count) or at least 1 s", sc.Cramps.EveryS)
	}
	if sc.Cramps.DurationMedianS <= 0 {
		bad("cramps.duration_median_s must be > 0")
	}
	if !(sc.Wearer.RailUV > 0 && sc.Wearer.RailUV <= wire.MaxEMGMicrovolts) {
		bad("wearer.rail_uv %v: want 0 < rail <= %d", sc.Wearer.RailUV, wire.MaxEMGMicrovolts)
	}
	if !(sc.Wearer.LSBUV >= 0 && sc.Wearer.LSBUV <= 100) {
		bad("wearer.lsb_uv %v: want 0..100", sc.Wearer.LSBUV)
	}
	if sc.PLM.Movements.Min() < 1 {
		bad("plm.movements must start at 1 or more")
	}
	for m, w := range sc.Cramps.Muscles {
		if _, err := wire.ParseChannel(m + "_left"); err != nil {
			bad("cramps.muscles: unknown muscle %q", m)
		}
		if !(w >= 0) {
			bad("cramps.muscles: weight of %q must be >= 0", m)
		}
	}
	return errors.Join(errs...)
}

// sortedMuscles returns the cramp muscle weights in a fixed order, so that
// map iteration order never changes a simulated night.
func (sc *Scenario) sortedMuscles() []muscleWeight {
	out := make([]muscleWeight, 0, len(sc.Cramps.Muscles))
	for m, w := range sc.Cramps.Muscles {
		c, err := wire.ParseChannel(m + "_left")
		if err != nil || w <= 0 {
			continue
		}
		out = append(out, muscleWeight{c.Muscle, w})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].m < out[j].m })
	return out
}

type muscleWeight struct {
	m wire.Muscle
	w float64
}

package wire

// Limits every decoded frame must respect. They are deliberately generous:
// their job is to stop garbage (a wrong unit, a broken ADC, a hostile
// client) before it reaches the detector, not to judge physiology.
const (
	// DefaultMaxPayload is the largest payload a Decoder accepts by default, in bytes.
	DefaultMaxPayload = 256 << 10

	// MaxChannels is the most EMG channels one frame may carry (4 muscles x 2 legs).
	MaxChannels = 8
	// MaxFrameSeconds is the longest stretch of samples one frame may carry.
	MaxFrameSeconds = 4

	// MinEMGRate and MaxEMGRate bound an EMG frame's sample rate, in Hz.
	MinEMGRate = 250
	MaxEMGRate = 4000
	// MinIMURate and MaxIMURate bound an IMU frame's sample rate, in Hz.
	MinIMURate = 10
	MaxIMURate = 1000

	// MaxEMGMicrovolts is the largest |EMG| sample accepted (100 mV); surface
	// EMG is a few mV at most, so anything above is a unit or hardware fault.
	MaxEMGMicrovolts = 100_000
	// MaxAccG is the largest |acceleration| component accepted, in g.
	MaxAccG = 64
	// MaxGyrDPS is the largest |angular rate| component accepted, in degrees per second.
	MaxGyrDPS = 5000

	// MaxFirmwareLen is the longest firmware string a status frame may carry, in bytes.
	MaxFirmwareLen = 64
	// MinRSSI and MaxRSSI bound a status frame's radio signal strength, in dBm.
	MinRSSI = -200
	MaxRSSI = 30

	// minTime and maxTime bound plausible sample times: after the Unix epoch
	// and before 2200-01-01T00:00:00Z, in Unix microseconds.
	minTime = 1
	maxTime = 7_258_118_400 * 1_000_000
)

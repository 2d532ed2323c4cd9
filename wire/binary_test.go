package wire

import (
	"math"
	"testing"
)

func TestDecodeEMGBinary(t *testing.T) {
	runDecodeCases(t, emgBinaryCases(t), decodeEMGCase(t))
}

func TestDecodeIMUBinary(t *testing.T) {
	runDecodeCases(t, imuBinaryCases(t), decodeIMUCase(t))
}

// emgBinaryCases are built on testEMG(3): 2 channels, 3 samples, 56 bytes.
// Channel descriptors sit at 24 and 32 (code, 3 reserved, scale at +4),
// samples at 40, CRC at 52.
func emgBinaryCases(t testing.TB) []decodeCase {
	valid := mustEMGBinary(t, testEMG(3))
	if len(valid) != 56 {
		t.Fatalf("test frame is %d bytes, the offsets below assume 56", len(valid))
	}
	with := func(change func(f *EMGFrame)) string {
		f := testEMG(3)
		change(f)
		return string(mustEMGBinary(t, f))
	}
	s := func(b []byte) string { return string(b) }
	return []decodeCase{
		{"valid", s(valid), ""},
		{"valid mV", with(func(f *EMGFrame) { f.Unit = Millivolt }), ""},
		{"valid 8 channels", with(func(f *EMGFrame) {
			f.Channels, f.Data = nil, nil
			for m := Calf; m <= Tibialis; m++ {
				for _, side := range []Side{Left, Right} {
					f.Channels = append(f.Channels, Channel{m, side})
					f.Data = append(f.Data, []float64{1, 2, 3})
				}
			}
		}), ""},

		{"version 2", s(patch(valid, 1, 2, true)), ReasonBadVersion},
		{"version 0", s(patch(valid, 1, 0, false)), ReasonBadVersion},

		{"header only", s(valid[:24]), ReasonBadBinary},
		{"magic only", s(valid[:1]), ReasonBadBinary},
		{"one byte short", s(valid[:len(valid)-1]), ReasonBadBinary},
		{"one byte extra", s(append(append([]byte(nil), valid...), 0)), ReasonBadBinary},
		{"sample corrupted", s(patch(valid, 41, valid[41]^0x01, false)), ReasonBadBinary},
		{"seq corrupted", s(patch(valid, 4, valid[4]+1, false)), ReasonBadBinary},
		{"CRC corrupted", s(patch(valid, 55, valid[55]^0x80, false)), ReasonBadBinary},
		{"IMU frame", s(patch(valid, 2, byte(StreamIMU), true)), ReasonBadBinary},
		{"status stream byte", s(patch(valid, 2, byte(StreamStatus), true)), ReasonBadBinary},
		{"reserved header byte", s(patch(valid, 23, 1, true)), ReasonBadBinary},
		{"reserved channel byte", s(patch(valid, 26, 1, true)), ReasonBadBinary},
		{"count says more samples", s(patch(valid, 20, 4, true)), ReasonBadBinary},
		{"negative scale", s(patch32(valid, 28, math.Float32bits(-1))), ReasonBadBinary},
		{"zero scale", s(patch32(valid, 36, 0)), ReasonBadBinary},

		{"NaN scale", s(patch32(valid, 28, 0x7fc00000)), ReasonNonFinite},
		{"Inf scale", s(patch32(valid, 36, 0x7f800000)), ReasonNonFinite},

		{"unit code 0", s(patch(valid, 3, 0, true)), ReasonBadUnit},
		{"unit code 3", s(patch(valid, 3, 3, true)), ReasonBadUnit},
		{"channel code 0x51", s(patch(valid, 24, 0x51, true)), ReasonUnknownChannel},
		{"channel code 0x13", s(patch(valid, 32, 0x13, true)), ReasonUnknownChannel},
		{"channel code 0x00", s(patch(valid, 24, 0x00, true)), ReasonUnknownChannel},
		{"duplicate channel", s(patch(valid, 32, 0x11, true)), ReasonDuplicateLabel},

		{"rate 100 Hz", s(patch32(valid, 16, 100_000)), ReasonBadRate},
		{"rate 0", s(patch32(valid, 16, 0)), ReasonBadRate},
		{"rate max uint32", s(patch32(valid, 16, math.MaxUint32)), ReasonBadRate},
		{"t0 zero", with(func(f *EMGFrame) { f.T0 = 0 }), ReasonBadTime},
		{"t0 negative", with(func(f *EMGFrame) { f.T0 = math.MinInt64 }), ReasonBadTime},
		{"t0 after 2200", with(func(f *EMGFrame) { f.T0 = maxTime + 1 }), ReasonBadTime},

		{"no samples", with(func(f *EMGFrame) { f.Data = [][]float64{{}, {}} }), ReasonEmpty},
		{"no channels", with(func(f *EMGFrame) { f.Channels, f.Data = nil, nil }), ReasonEmpty},

		{"nine channels", with(func(f *EMGFrame) {
			f.Channels, f.Data = nil, nil
			for i := range 9 {
				f.Channels = append(f.Channels, Channel{Muscle(1 + i%4), Side(1 + i/4%2)})
				f.Data = append(f.Data, []float64{1, 2, 3})
			}
		}), ReasonOutOfRange},
		{"255 channels", with(func(f *EMGFrame) {
			f.Channels, f.Data = nil, nil
			for range 255 {
				f.Channels = append(f.Channels, Channel{Calf, Left})
				f.Data = append(f.Data, []float64{1})
			}
		}), ReasonOutOfRange},
		{"longer than 4 s", with(func(f *EMGFrame) {
			f.Rate = 250
			f.Data = [][]float64{make([]float64, 1001), make([]float64, 1001)}
		}), ReasonOutOfRange},
		{"sample over 100 mV", with(func(f *EMGFrame) { f.Data[1][2] = -100_001 }), ReasonOutOfRange},
		{"mV sample over 100 mV", with(func(f *EMGFrame) { f.Unit = Millivolt; f.Data[0][0] = 150_000 }), ReasonOutOfRange},
	}
}

// imuBinaryCases are built on testIMU(2): 24-byte header, acc scale at 24,
// gyr scale at 28, acc at 32, gyr at 44, CRC at 56.
func imuBinaryCases(t testing.TB) []decodeCase {
	valid := mustIMUBinary(t, testIMU(2))
	if len(valid) != 60 {
		t.Fatalf("test frame is %d bytes, the offsets below assume 60", len(valid))
	}
	with := func(change func(f *IMUFrame)) string {
		f := testIMU(2)
		change(f)
		return string(mustIMUBinary(t, f))
	}
	s := func(b []byte) string { return string(b) }
	return []decodeCase{
		{"valid", s(valid), ""},
		{"valid thigh right", with(func(f *IMUFrame) { f.Site = Site{Thigh, Right} }), ""},
		{"valid all zero", with(func(f *IMUFrame) { f.Acc = [][3]float64{{}, {}}; f.Gyr = [][3]float64{{}, {}} }), ""},
		{"version 9", s(patch(valid, 1, 9, true)), ReasonBadVersion},
		{"truncated", s(valid[:40]), ReasonBadBinary},
		{"EMG frame", s(patch(valid, 2, byte(StreamEMG), true)), ReasonBadBinary},
		{"channel count set", s(patch(valid, 22, 1, true)), ReasonBadBinary},
		{"corrupted gyr", s(patch(valid, 50, valid[50]^0x10, false)), ReasonBadBinary},
		{"negative gyr scale", s(patch32(valid, 28, math.Float32bits(-0.5))), ReasonBadBinary},
		{"NaN acc scale", s(patch32(valid, 24, 0xffc00001)), ReasonNonFinite},
		{"unknown site 0x31", s(patch(valid, 3, 0x31, true)), ReasonUnknownSite},
		{"unknown site 0x10", s(patch(valid, 3, 0x10, true)), ReasonUnknownSite},
		{"rate 5 Hz", s(patch32(valid, 16, 5_000)), ReasonBadRate},
		{"t0 zero", with(func(f *IMUFrame) { f.T0 = 0 }), ReasonBadTime},
		{"no samples", with(func(f *IMUFrame) { f.Acc, f.Gyr = nil, nil }), ReasonEmpty},
		{"acc over 64 g", with(func(f *IMUFrame) { f.Acc[1][0] = 70 }), ReasonOutOfRange},
		{"gyr over 5000 dps", with(func(f *IMUFrame) { f.Gyr[0][2] = -6000 }), ReasonOutOfRange},
		{"huge scale", s(patch32(valid, 24, math.Float32bits(1e30))), ReasonOutOfRange},
		{"longer than 4 s", with(func(f *IMUFrame) { f.Rate = 10; *f = *testIMU(41); f.Rate = 10 }), ReasonOutOfRange},
	}
}

// TestEveryReasonTested makes sure each Reason has at least one decode or
// topic case, so a new reason cannot be added without a test.
func TestEveryReasonTested(t *testing.T) {
	seen := map[Reason]bool{
		ReasonBadTopic:  true, // TestParseTopic
		ReasonBadDevice: true, // TestParseTopic
		ReasonOversize:  true, // TestOversize
	}
	for _, cases := range [][]decodeCase{emgJSONCases(), imuJSONCases(), statusCases(), emgBinaryCases(t), imuBinaryCases(t)} {
		for _, c := range cases {
			seen[c.want] = true
		}
	}
	for _, r := range Reasons() {
		if !seen[r] {
			t.Errorf("reason %s has no test case", r)
		}
	}
}

func TestChannelCodes(t *testing.T) {
	for m := Calf; m <= Tibialis; m++ {
		for _, side := range []Side{Left, Right} {
			c := Channel{m, side}
			got, ok := channelFromCode(channelCode(c))
			if !ok || got != c {
				t.Errorf("channel %v: code 0x%02x decodes to %v, %v", c, channelCode(c), got, ok)
			}
			l, ok := channelFromLabel([]byte(c.String()))
			if !ok || l != c {
				t.Errorf("label %q decodes to %v, %v", c, l, ok)
			}
		}
	}
	if c := channelCode(Channel{Calf, Left}); c != 0x11 {
		t.Errorf("calf_left code 0x%02x, want 0x11", c)
	}
	if c := channelCode(Channel{Tibialis, Right}); c != 0x42 {
		t.Errorf("tibialis_right code 0x%02x, want 0x42", c)
	}
	if c := siteCode(Site{Thigh, Right}); c != 0x22 {
		t.Errorf("thigh_right code 0x%02x, want 0x22", c)
	}
}

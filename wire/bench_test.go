package wire

import (
	"encoding/json"
	"testing"
)

// The benchmark frame is the typical one: 100 ms of 2-channel EMG at 1 kHz.
const benchSamples = 100

func BenchmarkDecodeEMGJSON(b *testing.B) {
	p := AppendEMGJSON(nil, testEMG(benchSamples))
	benchDecodeEMG(b, p)
}

func BenchmarkDecodeEMGBinary(b *testing.B) {
	p := mustEMGBinary(b, testEMG(benchSamples))
	benchDecodeEMG(b, p)
}

func benchDecodeEMG(b *testing.B, p []byte) {
	d := NewDecoder(0)
	var f EMGFrame
	b.ReportAllocs()
	b.SetBytes(int64(len(p)))
	for b.Loop() {
		if err := d.DecodeEMG(p, &f); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeEMGJSONStdlib is the alternative that was measured and not
// taken: encoding/json into a reused struct, without any validation.
func BenchmarkDecodeEMGJSONStdlib(b *testing.B) {
	p := AppendEMGJSON(nil, testEMG(benchSamples))
	var v struct {
		Seq  int64       `json:"seq"`
		T0   int64       `json:"t0"`
		Rate float64     `json:"rate"`
		Unit string      `json:"unit"`
		Ch   []string    `json:"ch"`
		Data [][]float64 `json:"data"`
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(p)))
	for b.Loop() {
		if err := json.Unmarshal(p, &v); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeIMUJSON(b *testing.B) {
	benchDecodeIMU(b, AppendIMUJSON(nil, testIMU(5)))
}

func BenchmarkDecodeIMUBinary(b *testing.B) {
	benchDecodeIMU(b, mustIMUBinary(b, testIMU(5)))
}

func benchDecodeIMU(b *testing.B, p []byte) {
	d := NewDecoder(0)
	var f IMUFrame
	b.ReportAllocs()
	b.SetBytes(int64(len(p)))
	for b.Loop() {
		if err := d.DecodeIMU(p, &f); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeStatus(b *testing.B) {
	p := AppendStatusJSON(nil, &StatusFrame{T: testT0, BatteryPct: 87, Firmware: "1.4.2", LeadOff: []Channel{{Calf, Left}}, RSSI: -61})
	d := NewDecoder(0)
	var s StatusFrame
	b.ReportAllocs()
	for b.Loop() {
		if err := d.DecodeStatus(p, &s); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendEMGJSON(b *testing.B) {
	f := testEMG(benchSamples)
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendEMGJSON(buf[:0], f)
	}
}

func BenchmarkAppendEMGBinary(b *testing.B) {
	f := testEMG(benchSamples)
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = AppendEMGBinary(buf[:0], f); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseTopic(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := ParseTopic(DefaultPrefix, "crampwatch/v1/dev-01/emg"); err != nil {
			b.Fatal(err)
		}
	}
}

// TestSteadyStateAllocs pins the zero-allocation promise of the decoders:
// once a frame's slices have grown, decoding the next frame allocates nothing.
func TestSteadyStateAllocs(t *testing.T) {
	emgJ := AppendEMGJSON(nil, testEMG(benchSamples))
	mv := testEMG(benchSamples)
	mv.Unit = Millivolt
	emgMV := AppendEMGJSON(nil, mv)
	emgB := mustEMGBinary(t, testEMG(benchSamples))
	imuJ := AppendIMUJSON(nil, testIMU(5))
	imuB := mustIMUBinary(t, testIMU(5))
	status := AppendStatusJSON(nil, &StatusFrame{T: testT0, BatteryPct: 87, Firmware: "1.4.2", LeadOff: []Channel{{Calf, Left}}, RSSI: -61})
	d := NewDecoder(0)
	var (
		f EMGFrame
		g IMUFrame
		s StatusFrame
	)
	cases := []struct {
		name string
		run  func() error
	}{
		{"EMG JSON", func() error { return d.DecodeEMG(emgJ, &f) }},
		{"EMG JSON mV", func() error { return d.DecodeEMG(emgMV, &f) }},
		{"EMG binary", func() error { return d.DecodeEMG(emgB, &f) }},
		{"IMU JSON", func() error { return d.DecodeIMU(imuJ, &g) }},
		{"IMU binary", func() error { return d.DecodeIMU(imuB, &g) }},
		{"status", func() error { return d.DecodeStatus(status, &s) }},
	}
	for _, tc := range cases {
		if err := tc.run(); err != nil { // warm-up grows the buffers
			t.Fatalf("%s: %v", tc.name, err)
		}
		if n := testing.AllocsPerRun(50, func() { _ = tc.run() }); n != 0 {
			t.Errorf("%s: %v allocations per decode, want 0", tc.name, n)
		}
	}
}

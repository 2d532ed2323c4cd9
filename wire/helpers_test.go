package wire

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math"
	"testing"
)

// testT0 is 2025-11-24T01:00:00.123456Z in Unix microseconds.
const testT0 = 1763946000123456

// testEMG returns a valid 2-channel, 1 kHz EMG frame of n samples in µV.
func testEMG(n int) *EMGFrame {
	f := &EMGFrame{
		Seq: 1042, T0: testT0, Rate: 1000, Unit: Microvolt,
		Channels: []Channel{{Calf, Left}, {Hamstring, Left}},
		Data:     [][]float64{make([]float64, n), make([]float64, n)},
	}
	for i := range n {
		// Deterministic, EMG-like numbers with a decimal digit.
		f.Data[0][i] = float64((i*7919)%2001-1000) / 10
		f.Data[1][i] = float64((i*104729)%801-400) / 10
	}
	return f
}

// testIMU returns a valid 50 Hz IMU frame of n samples.
func testIMU(n int) *IMUFrame {
	f := &IMUFrame{Seq: 7, T0: testT0, Rate: 50, Site: Site{Shank, Left}}
	for i := range n {
		x := float64(i)
		f.Acc = append(f.Acc, [3]float64{0.01 * x, -0.98, 0.05})
		f.Gyr = append(f.Gyr, [3]float64{1.5 * x, -2.25, 100})
	}
	return f
}

func mustEMGBinary(t testing.TB, f *EMGFrame) []byte {
	t.Helper()
	b, err := AppendEMGBinary(nil, f)
	if err != nil {
		t.Fatalf("AppendEMGBinary: %v", err)
	}
	return b
}

func mustIMUBinary(t testing.TB, f *IMUFrame) []byte {
	t.Helper()
	b, err := AppendIMUBinary(nil, f)
	if err != nil {
		t.Fatalf("AppendIMUBinary: %v", err)
	}
	return b
}

// patch returns a copy of b with byte at off set to v and, if fix, the CRC
// trailer recomputed so that only the patched content is wrong.
func patch(b []byte, off int, v byte, fix bool) []byte {
	c := append([]byte(nil), b...)
	c[off] = v
	if fix {
		fixCRC(c)
	}
	return c
}

// patch32 writes a little-endian uint32 at off and fixes the CRC.
func patch32(b []byte, off int, v uint32) []byte {
	c := append([]byte(nil), b...)
	binary.LittleEndian.PutUint32(c[off:], v)
	fixCRC(c)
	return c
}

func fixCRC(c []byte) {
	n := len(c) - 4
	binary.LittleEndian.PutUint32(c[n:], crc32.ChecksumIEEE(c[:n]))
}

func reasonOf(err error) Reason {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ""
}

// checkEMGInvariants fails t if an accepted frame breaks the contract.
func checkEMGInvariants(t testing.TB, f *EMGFrame) {
	t.Helper()
	if f.Rate < MinEMGRate || f.Rate > MaxEMGRate || math.IsNaN(f.Rate) {
		t.Fatalf("accepted rate %g", f.Rate)
	}
	if f.T0 <= 0 || f.T0 > maxTime {
		t.Fatalf("accepted t0 %d", f.T0)
	}
	if f.Unit != Microvolt && f.Unit != Millivolt {
		t.Fatalf("accepted unit %v", f.Unit)
	}
	if len(f.Channels) == 0 || len(f.Channels) > MaxChannels || len(f.Channels) != len(f.Data) {
		t.Fatalf("accepted %d channels, %d rows", len(f.Channels), len(f.Data))
	}
	seen := map[Channel]bool{}
	for _, c := range f.Channels {
		if _, err := ParseChannel(c.String()); err != nil || seen[c] {
			t.Fatalf("accepted channel %v (dup %v)", c, seen[c])
		}
		seen[c] = true
	}
	n := f.Len()
	if n == 0 || float64(n) > MaxFrameSeconds*f.Rate {
		t.Fatalf("accepted %d samples at %g Hz", n, f.Rate)
	}
	for _, row := range f.Data {
		if len(row) != n {
			t.Fatalf("accepted ragged rows")
		}
		for _, v := range row {
			if math.IsNaN(v) || math.IsInf(v, 0) || math.Abs(v) > MaxEMGMicrovolts {
				t.Fatalf("accepted sample %g", v)
			}
		}
	}
}

func checkIMUInvariants(t testing.TB, f *IMUFrame) {
	t.Helper()
	if f.Rate < MinIMURate || f.Rate > MaxIMURate || math.IsNaN(f.Rate) {
		t.Fatalf("accepted rate %g", f.Rate)
	}
	if f.T0 <= 0 || f.T0 > maxTime {
		t.Fatalf("accepted t0 %d", f.T0)
	}
	if _, err := ParseSite(f.Site.String()); err != nil {
		t.Fatalf("accepted site %v", f.Site)
	}
	n := f.Len()
	if n == 0 || len(f.Gyr) != n || float64(n) > MaxFrameSeconds*f.Rate {
		t.Fatalf("accepted %d acc, %d gyr samples at %g Hz", n, len(f.Gyr), f.Rate)
	}
	for i := range n {
		for k := range 3 {
			a, g := f.Acc[i][k], f.Gyr[i][k]
			if math.IsNaN(a) || math.IsInf(a, 0) || math.Abs(a) > MaxAccG ||
				math.IsNaN(g) || math.IsInf(g, 0) || math.Abs(g) > MaxGyrDPS {
				t.Fatalf("accepted sample %d: acc %g gyr %g", i, a, g)
			}
		}
	}
}

package wire

import (
	"errors"
	"math"
	"slices"
	"testing"
)

// checkRejection fails t unless err is an *Error with a known reason and a detail.
func checkRejection(t *testing.T, err error) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not *Error", err, err)
	}
	if !slices.Contains(Reasons(), e.Reason) || e.Detail == "" {
		t.Fatalf("error %#v has an unknown reason or no detail", e)
	}
}

// dirtyEMG returns a frame whose slices hold leftovers of another shape,
// to check that decoding into a reused frame gives the same result.
func dirtyEMG() *EMGFrame {
	f := testEMG(7)
	f.Channels = append(f.Channels, Channel{Tibialis, Right}, Channel{Quadriceps, Left})
	f.Data = append(f.Data, []float64{1, 2}, []float64{math.NaN()})
	f.Unit = Millivolt
	return f
}

func FuzzDecodeEMG(f *testing.F) {
	for _, c := range emgJSONCases() {
		f.Add([]byte(c.payload))
	}
	for _, c := range emgBinaryCases(f) {
		f.Add([]byte(c.payload))
	}
	f.Add(AppendEMGJSON(nil, testEMG(50)))
	f.Add(mustEMGBinary(f, testEMG(50)))
	f.Add([]byte{binaryMagic})
	f.Fuzz(func(t *testing.T, p []byte) {
		fuzzEMG(t, p)
		if fixed, ok := withCRC(p); ok {
			fuzzEMG(t, fixed)
		}
	})
}

// withCRC returns a copy of a binary-looking payload with a correct CRC
// trailer, so that fuzzing gets past the checksum into the checks after it
// (a mutated frame almost never has a valid CRC by chance).
func withCRC(p []byte) ([]byte, bool) {
	if len(p) < binaryHeaderLen+binaryCRCLen || p[0] != binaryMagic {
		return nil, false
	}
	c := append([]byte(nil), p...)
	fixCRC(c)
	return c, true
}

func fuzzEMG(t *testing.T, p []byte) {
	d := NewDecoder(0)
	var fr EMGFrame
	err := d.DecodeEMG(p, &fr)
	reused := dirtyEMG()
	err2 := d.DecodeEMG(p, reused)
	if reasonOf(err) != reasonOf(err2) {
		t.Fatalf("fresh frame: %v; reused frame: %v", err, err2)
	}
	if err != nil {
		checkRejection(t, err)
		return
	}
	checkEMGInvariants(t, &fr)
	if !sameEMG(&fr, reused, 0) {
		t.Fatalf("reused frame decoded differently:\n%+v\n%+v", fr, *reused)
	}
	// Whatever is accepted must survive re-encoding in both formats.
	var back EMGFrame
	if err := d.DecodeEMG(AppendEMGJSON(nil, &fr), &back); err != nil {
		t.Fatalf("JSON re-encoding rejected: %v", err)
	}
	if !sameEMG(&fr, &back, 1e-14) {
		t.Fatalf("JSON round trip changed the frame:\n%+v\n%+v", fr, back)
	}
	bin, err := AppendEMGBinary(nil, &fr)
	if err != nil {
		t.Fatalf("binary encoding failed: %v", err)
	}
	if err := d.DecodeEMG(bin, &back); err != nil {
		t.Fatalf("binary re-encoding rejected: %v", err)
	}
	for i, row := range fr.Data {
		m, _ := maxAbs(row, 1)
		for j, v := range row {
			if e := math.Abs(back.Data[i][j] - v); e > quantum(m) {
				t.Fatalf("binary round trip: data[%d][%d] %g -> %g", i, j, v, back.Data[i][j])
			}
		}
	}
}

// quantum is the largest binary quantisation error for values up to maxAbs:
// half a scale step, with the scale at least minScale.
func quantum(maxAbs float64) float64 {
	return max(maxAbs/65534, minScale/2) * (1 + 1e-6)
}

// sameEMG compares frames, samples within relative tolerance tol.
func sameEMG(a, b *EMGFrame, tol float64) bool {
	if a.Seq != b.Seq || a.T0 != b.T0 || a.Rate != b.Rate || a.Unit != b.Unit ||
		!slices.Equal(a.Channels, b.Channels) || len(a.Data) != len(b.Data) {
		return false
	}
	for i := range a.Data {
		if len(a.Data[i]) != len(b.Data[i]) {
			return false
		}
		for j, v := range a.Data[i] {
			if math.Abs(b.Data[i][j]-v) > tol*math.Abs(v) {
				return false
			}
		}
	}
	return true
}

func FuzzDecodeIMU(f *testing.F) {
	for _, c := range imuJSONCases() {
		f.Add([]byte(c.payload))
	}
	for _, c := range imuBinaryCases(f) {
		f.Add([]byte(c.payload))
	}
	f.Add(AppendIMUJSON(nil, testIMU(20)))
	f.Add(mustIMUBinary(f, testIMU(20)))
	f.Fuzz(func(t *testing.T, p []byte) {
		fuzzIMU(t, p)
		if fixed, ok := withCRC(p); ok {
			fuzzIMU(t, fixed)
		}
	})
}

func fuzzIMU(t *testing.T, p []byte) {
	d := NewDecoder(0)
	var fr IMUFrame
	err := d.DecodeIMU(p, &fr)
	reused := testIMU(9)
	err2 := d.DecodeIMU(p, reused)
	if reasonOf(err) != reasonOf(err2) {
		t.Fatalf("fresh frame: %v; reused frame: %v", err, err2)
	}
	if err != nil {
		checkRejection(t, err)
		return
	}
	checkIMUInvariants(t, &fr)
	if !sameIMU(&fr, reused, 0, 0) {
		t.Fatalf("reused frame decoded differently")
	}
	var back IMUFrame
	if err := d.DecodeIMU(AppendIMUJSON(nil, &fr), &back); err != nil {
		t.Fatalf("JSON re-encoding rejected: %v", err)
	}
	if !sameIMU(&fr, &back, 0, 0) {
		t.Fatalf("JSON round trip changed the frame:\n%+v\n%+v", fr, back)
	}
	bin, err := AppendIMUBinary(nil, &fr)
	if err != nil {
		t.Fatalf("binary encoding failed: %v", err)
	}
	if err := d.DecodeIMU(bin, &back); err != nil {
		t.Fatalf("binary re-encoding rejected: %v", err)
	}
	accMax, gyrMax := 0.0, 0.0
	for i := range fr.Acc {
		a, _ := maxAbs(fr.Acc[i][:], 1)
		g, _ := maxAbs(fr.Gyr[i][:], 1)
		accMax, gyrMax = max(accMax, a), max(gyrMax, g)
	}
	if !sameIMU(&fr, &back, quantum(accMax), quantum(gyrMax)) {
		t.Fatalf("binary round trip beyond quantisation error:\n%+v\n%+v", fr, back)
	}
}

// sameIMU compares frames, components within absolute tolerances.
func sameIMU(a, b *IMUFrame, accTol, gyrTol float64) bool {
	if a.Seq != b.Seq || a.T0 != b.T0 || a.Rate != b.Rate || a.Site != b.Site ||
		len(a.Acc) != len(b.Acc) || len(a.Gyr) != len(b.Gyr) {
		return false
	}
	for i := range a.Acc {
		for k := range 3 {
			if math.Abs(a.Acc[i][k]-b.Acc[i][k]) > accTol || math.Abs(a.Gyr[i][k]-b.Gyr[i][k]) > gyrTol {
				return false
			}
		}
	}
	return true
}

func FuzzDecodeStatus(f *testing.F) {
	for _, c := range statusCases() {
		f.Add([]byte(c.payload))
	}
	f.Add(AppendStatusJSON(nil, &StatusFrame{T: testT0, BatteryPct: 87, Firmware: "1.4.2", LeadOff: []Channel{{Calf, Left}}, RSSI: -61}))
	f.Add([]byte(`{"t":1,"firmware":"\ud83d\ude00 \ud800x"}`))
	f.Fuzz(func(t *testing.T, p []byte) {
		d := NewDecoder(0)
		s := StatusFrame{Firmware: "old", LeadOff: []Channel{{Calf, Right}, {Calf, Left}}, BatteryPct: 5, RSSI: -1}
		err := d.DecodeStatus(p, &s)
		if err != nil {
			checkRejection(t, err)
			return
		}
		checkStatusInvariants(t, &s)
		var back StatusFrame
		if err := d.DecodeStatus(AppendStatusJSON(nil, &s), &back); err != nil {
			t.Fatalf("re-encoding rejected: %v", err)
		}
		if back.T != s.T || back.BatteryPct != s.BatteryPct || back.Firmware != s.Firmware ||
			back.RSSI != s.RSSI || !slices.Equal(back.LeadOff, s.LeadOff) {
			t.Fatalf("round trip changed the frame:\n%+v\n%+v", s, back)
		}
	})
}

func FuzzParseTopic(f *testing.F) {
	f.Add(DefaultPrefix, "crampwatch/v1/dev-01/emg")
	f.Add(DefaultPrefix, "crampwatch/v1/+/emg")
	f.Add(DefaultPrefix, "crampwatch/v1/#")
	f.Add("", "dev/status")
	f.Add("a/", "a/b/imu")
	f.Add("a//", "a//b/imu")
	f.Add("x", "x/dev/emg/")
	f.Add(DefaultPrefix, "")
	f.Fuzz(func(t *testing.T, prefix, topic string) {
		device, s, err := ParseTopic(prefix, topic)
		if err != nil {
			if r := reasonOf(err); r != ReasonBadTopic && r != ReasonBadDevice {
				t.Fatalf("reason %q", r)
			}
			return
		}
		if !ValidDevice(device) {
			t.Fatalf("accepted device %q", device)
		}
		if got := Topic(prefix, device, s); got != topic {
			t.Fatalf("Topic(%q, %q, %v) = %q, parsed from %q", prefix, device, s, got, topic)
		}
	})
}

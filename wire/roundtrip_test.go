package wire

import (
	"math"
	"strings"
	"testing"
)

func TestEMGJSONExact(t *testing.T) {
	// The spec's example, byte for byte, is what the encoder writes.
	f := &EMGFrame{
		Seq: 1042, T0: 1763946000123456, Rate: 1000, Unit: Microvolt,
		Channels: []Channel{{Calf, Left}, {Hamstring, Left}},
		Data:     [][]float64{{12.5, -4.0, 8.1}, {3.0, 4.2, -1.7}},
	}
	got := string(AppendEMGJSON(nil, f))
	want := `{"seq":1042,"t0":1763946000123456,"rate":1000,"unit":"uV","ch":["calf_left","hamstring_left"],"data":[[12.5,-4,8.1],[3,4.2,-1.7]]}`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	f.Unit = Millivolt
	got = string(AppendEMGJSON([]byte("prefix:"), f))
	want = `prefix:{"seq":1042,"t0":1763946000123456,"rate":1000,"unit":"mV","ch":["calf_left","hamstring_left"],"data":[[0.0125,-0.004,0.0081],[0.003,0.0042,-0.0017]]}`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

func TestIMUAndStatusJSONExact(t *testing.T) {
	f := &IMUFrame{Seq: 7, T0: 1763946000123456, Rate: 50, Site: Site{Thigh, Right},
		Acc: [][3]float64{{0.01, -0.98, 0.05}}, Gyr: [][3]float64{{1.5, -2.25, 100}}}
	got := string(AppendIMUJSON(nil, f))
	want := `{"seq":7,"t0":1763946000123456,"rate":50,"site":"thigh_right","acc":[[0.01,-0.98,0.05]],"gyr":[[1.5,-2.25,100]]}`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	s := &StatusFrame{T: 1763946000123456, BatteryPct: 87, Firmware: "1.4.2", LeadOff: []Channel{{Calf, Left}}, RSSI: -61}
	got = string(AppendStatusJSON(nil, s))
	want = `{"t":1763946000123456,"battery_pct":87,"firmware":"1.4.2","lead_off":["calf_left"],"rssi_dbm":-61}`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	got = string(AppendStatusJSON(nil, &StatusFrame{T: 5, BatteryPct: -1}))
	if want = `{"t":5}`; got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	got = string(AppendStatusJSON(nil, &StatusFrame{T: 5, BatteryPct: 0, Firmware: "a\"b\\c\x01\xff"}))
	if want = `{"t":5,"battery_pct":0,"firmware":"a\"b\\c\u0001\ufffd"}`; got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

func TestEMGRoundTrip(t *testing.T) {
	d := NewDecoder(0)
	for _, unit := range []Unit{Microvolt, Millivolt} {
		for _, n := range []int{1, 3, 100, 4000} {
			in := testEMG(n)
			in.Unit = unit
			in.Data[1][0] = MaxEMGMicrovolts // a sample right at the limit survives both encodings
			bin := mustEMGBinary(t, in)
			for _, enc := range []struct {
				name    string
				payload []byte
				binary  bool
			}{{"json", AppendEMGJSON(nil, in), false}, {"binary", bin, true}} {
				var out EMGFrame
				if err := d.DecodeEMG(enc.payload, &out); err != nil {
					t.Fatalf("%v %s n=%d: %v", unit, enc.name, n, err)
				}
				if out.Seq != in.Seq || out.T0 != in.T0 || out.Rate != in.Rate || out.Unit != in.Unit {
					t.Fatalf("%v %s: header %+v, want %+v", unit, enc.name, out, in)
				}
				for i, row := range in.Data {
					if out.Channels[i] != in.Channels[i] {
						t.Fatalf("%v %s: channel %d is %v, want %v", unit, enc.name, i, out.Channels[i], in.Channels[i])
					}
					// JSON is exact in µV and within float rounding in mV;
					// binary is within half a quantisation step.
					tol := 1e-12 * MaxEMGMicrovolts
					if enc.binary {
						m, _ := maxAbs(row, 1)
						tol = m/(2*32767)*(1+1e-6) + 1e-9
					}
					for j, v := range row {
						if e := math.Abs(out.Data[i][j] - v); e > tol {
							t.Fatalf("%v %s n=%d: data[%d][%d] = %.9g, want %.9g (error %g > %g)", unit, enc.name, n, i, j, out.Data[i][j], v, e, tol)
						}
					}
				}
			}
		}
	}
}

func TestIMURoundTrip(t *testing.T) {
	d := NewDecoder(0)
	in := testIMU(100)
	in.Acc[3] = [3]float64{MaxAccG, -MaxAccG, 0}
	in.Gyr[5] = [3]float64{0, -MaxGyrDPS, MaxGyrDPS}
	for _, enc := range []struct {
		name    string
		payload []byte
		binary  bool
	}{{"json", AppendIMUJSON(nil, in), false}, {"binary", mustIMUBinary(t, in), true}} {
		var out IMUFrame
		if err := d.DecodeIMU(enc.payload, &out); err != nil {
			t.Fatalf("%s: %v", enc.name, err)
		}
		if out.Seq != in.Seq || out.T0 != in.T0 || out.Rate != in.Rate || out.Site != in.Site || out.Len() != in.Len() || len(out.Gyr) != len(in.Gyr) {
			t.Fatalf("%s: header %+v, want %+v", enc.name, out, in)
		}
		accTol, gyrTol := 0.0, 0.0
		if enc.binary {
			accTol, gyrTol = MaxAccG/(2*32767.0)*(1+1e-6), MaxGyrDPS/(2*32767.0)*(1+1e-6)
		}
		for i := range in.Acc {
			for k := range 3 {
				if e := math.Abs(out.Acc[i][k] - in.Acc[i][k]); e > accTol {
					t.Fatalf("%s: acc[%d][%d] = %g, want %g", enc.name, i, k, out.Acc[i][k], in.Acc[i][k])
				}
				if e := math.Abs(out.Gyr[i][k] - in.Gyr[i][k]); e > gyrTol {
					t.Fatalf("%s: gyr[%d][%d] = %g, want %g", enc.name, i, k, out.Gyr[i][k], in.Gyr[i][k])
				}
			}
		}
	}
}

func TestStatusRoundTrip(t *testing.T) {
	d := NewDecoder(0)
	for _, in := range []StatusFrame{
		{T: testT0, BatteryPct: 87.5, Firmware: "1.4.2-rc1 (été)", LeadOff: []Channel{{Calf, Left}, {Tibialis, Right}}, RSSI: -61},
		{T: testT0, BatteryPct: 0},
		{T: 1, BatteryPct: -1},
	} {
		var out StatusFrame
		if err := d.DecodeStatus(AppendStatusJSON(nil, &in), &out); err != nil {
			t.Fatalf("%+v: %v", in, err)
		}
		if out.T != in.T || out.BatteryPct != in.BatteryPct || out.Firmware != in.Firmware || out.RSSI != in.RSSI || len(out.LeadOff) != len(in.LeadOff) {
			t.Fatalf("decoded %+v, want %+v", out, in)
		}
		for i := range in.LeadOff {
			if out.LeadOff[i] != in.LeadOff[i] {
				t.Fatalf("decoded %+v, want %+v", out, in)
			}
		}
	}
}

func TestBinaryQuantisation(t *testing.T) {
	// Tiny, huge-but-legal and all-zero channels each use their own scale.
	in := &EMGFrame{Seq: 1, T0: testT0, Rate: 2000, Unit: Microvolt,
		Channels: []Channel{{Calf, Left}, {Calf, Right}, {Quadriceps, Left}},
		Data:     [][]float64{{0.001, -0.0005, 0}, {99999, -50000, 1}, {0, 0, 0}}}
	var out EMGFrame
	if err := NewDecoder(0).DecodeEMG(mustEMGBinary(t, in), &out); err != nil {
		t.Fatal(err)
	}
	for i, row := range in.Data {
		m, _ := maxAbs(row, 1)
		for j, v := range row {
			if e := math.Abs(out.Data[i][j] - v); e > m/65534*(1+1e-6) {
				t.Errorf("data[%d][%d] = %g, want %g ± %g", i, j, out.Data[i][j], v, m/65534)
			}
		}
	}
}

func TestBinaryEncodeErrors(t *testing.T) {
	cases := []struct {
		name string
		f    func() *EMGFrame
	}{
		{"NaN sample", func() *EMGFrame { f := testEMG(3); f.Data[0][1] = math.NaN(); return f }},
		{"Inf sample", func() *EMGFrame { f := testEMG(3); f.Data[1][2] = math.Inf(-1); return f }},
		{"ragged", func() *EMGFrame { f := testEMG(3); f.Data[1] = f.Data[1][:2]; return f }},
		{"rows != channels", func() *EMGFrame { f := testEMG(3); f.Channels = f.Channels[:1]; return f }},
		{"unknown channel", func() *EMGFrame { f := testEMG(3); f.Channels[0] = Channel{}; return f }},
		{"too many samples", func() *EMGFrame { return testEMG(70000) }},
		{"negative rate", func() *EMGFrame { f := testEMG(3); f.Rate = -1; return f }},
		{"NaN rate", func() *EMGFrame { f := testEMG(3); f.Rate = math.NaN(); return f }},
		{"huge sample", func() *EMGFrame { f := testEMG(3); f.Data[0][0] = 1e300; return f }},
	}
	for _, tc := range cases {
		dst := []byte("keep")
		got, err := AppendEMGBinary(dst, tc.f())
		if err == nil {
			t.Errorf("%s: no error", tc.name)
		}
		if string(got) != "keep" {
			t.Errorf("%s: dst modified on error: %q", tc.name, got)
		}
	}
	f := testIMU(3)
	f.Gyr = f.Gyr[:2]
	if _, err := AppendIMUBinary(nil, f); err == nil {
		t.Error("IMU acc/gyr length mismatch: no error")
	}
	f = testIMU(3)
	f.Site = Site{}
	if _, err := AppendIMUBinary(nil, f); err == nil {
		t.Error("IMU unknown site: no error")
	}
	f = testIMU(3)
	f.Acc[1][2] = math.NaN()
	if _, err := AppendIMUBinary(nil, f); err == nil {
		t.Error("IMU NaN: no error")
	}
	// Frames the decoder rejects for their content are still encodable.
	g := testEMG(3)
	g.Rate = 100
	if _, err := AppendEMGBinary(nil, g); err != nil {
		t.Errorf("rate 100: %v", err)
	}
}

func TestJSONEncoderNonFinite(t *testing.T) {
	f := testEMG(2)
	f.Data[0][1] = math.NaN()
	p := AppendEMGJSON(nil, f)
	if !strings.Contains(string(p), "null") {
		t.Fatalf("NaN not written as null: %s", p)
	}
	var out EMGFrame
	if r := reasonOf(NewDecoder(0).DecodeEMG(p, &out)); r != ReasonBadJSON {
		t.Fatalf("frame with NaN decoded with reason %q, want bad_json", r)
	}
}

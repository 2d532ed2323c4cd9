package wire

import (
	"errors"
	"math"
	"strings"
	"testing"
)

// emgJSON builds an EMG JSON payload from the valid default, with fields
// replaced (or removed, with value "") by the overrides.
func emgJSON(overrides ...string) string {
	fields := [][2]string{
		{"seq", "1042"}, {"t0", "1763946000123456"}, {"rate", "1000"}, {"unit", `"uV"`},
		{"ch", `["calf_left","hamstring_left"]`}, {"data", `[[12.5,-4.0,8.1],[3.0,4.2,-1.7]]`},
	}
	return buildJSON(fields, overrides)
}

func imuJSON(overrides ...string) string {
	fields := [][2]string{
		{"seq", "7"}, {"t0", "1763946000123456"}, {"rate", "50"}, {"site", `"shank_left"`},
		{"acc", `[[0.01,-0.98,0.05],[0.02,-0.97,0.04]]`}, {"gyr", `[[1.5,-2.25,100],[1,2,3]]`},
	}
	return buildJSON(fields, overrides)
}

func buildJSON(fields [][2]string, overrides []string) string {
	for i := 0; i+1 < len(overrides); i += 2 {
		for j := range fields {
			if fields[j][0] == overrides[i] {
				fields[j][1] = overrides[i+1]
			}
		}
	}
	var b strings.Builder
	b.WriteByte('{')
	for _, f := range fields {
		if f[1] == "" {
			continue
		}
		if b.Len() > 1 {
			b.WriteByte(',')
		}
		b.WriteString(`"` + f[0] + `":` + f[1])
	}
	b.WriteByte('}')
	return b.String()
}

type decodeCase struct {
	name    string
	payload string
	want    Reason // "" means accepted
}

func TestDecodeEMGJSON(t *testing.T) {
	runDecodeCases(t, emgJSONCases(), decodeEMGCase(t))
}

func decodeEMGCase(t *testing.T) func(*Decoder, []byte) (func(), error) {
	return func(d *Decoder, p []byte) (func(), error) {
		var f EMGFrame
		err := d.DecodeEMG(p, &f)
		return func() { checkEMGInvariants(t, &f) }, err
	}
}

func decodeIMUCase(t *testing.T) func(*Decoder, []byte) (func(), error) {
	return func(d *Decoder, p []byte) (func(), error) {
		var f IMUFrame
		err := d.DecodeIMU(p, &f)
		return func() { checkIMUInvariants(t, &f) }, err
	}
}

func emgJSONCases() []decodeCase {
	ten := "[" + strings.Repeat("1,", 9) + "1]"
	nineCh := `["calf_left","calf_right","hamstring_left","hamstring_right","quadriceps_left","quadriceps_right","tibialis_left","tibialis_right","calf_left"]`
	cases := []decodeCase{
		{"valid", emgJSON(), ""},
		{"valid with whitespace", " \n\t" + strings.ReplaceAll(emgJSON(), ",", " ,\r\n ") + "\n", ""},
		{"valid mV", emgJSON("unit", `"mV"`, "data", `[[0.0125,-1],[100,0]]`), ""},
		{"valid unknown fields skipped", emgJSON("seq", `1,"fw":{"a":[1,"x",true,false,null,{"b":-1.5e3}]}`), ""},
		{"valid fields in another order", `{"data":[[1]],"ch":["tibialis_right"],"unit":"uV","rate":250,"t0":1,"seq":0}`, ""},
		{"valid max seq", emgJSON("seq", "4294967295"), ""},
		{"valid escaped label", emgJSON("ch", `["calf_\u006ceft","hamstring_left"]`), ""},
		{"valid exponent numbers", emgJSON("data", `[[1e2,-1.5E-3,0],[2e+1,-0,0.5]]`), ""},
		{"valid 4 s at 250 Hz", emgJSON("rate", "250", "ch", `["calf_left"]`, "data", "["+ten[:1]+strings.Repeat("1,", 999)+"1]]"), ""},

		{"empty payload", "", ReasonEmpty},
		{"no channels", emgJSON("ch", "[]", "data", "[]"), ReasonEmpty},
		{"no samples", emgJSON("data", "[[],[]]"), ReasonEmpty},

		{"truncated", emgJSON()[:40], ReasonBadJSON},
		{"not an object", `[1,2,3]`, ReasonBadJSON},
		{"garbage first byte", "xyz", ReasonBadJSON},
		{"whitespace only", "   ", ReasonBadJSON},
		{"trailing data", emgJSON() + "{}", ReasonBadJSON},
		{"duplicate field", emgJSON("seq", `1,"seq":2`), ReasonBadJSON},
		{"seq is a string", emgJSON("seq", `"1042"`), ReasonBadJSON},
		{"seq has fraction", emgJSON("seq", "1.5"), ReasonBadJSON},
		{"rate is null", emgJSON("rate", "null"), ReasonBadJSON},
		{"sample is null", emgJSON("data", `[[1,null,2],[1,2,3]]`), ReasonBadJSON},
		{"sample is NaN literal", emgJSON("data", `[[1,NaN,2],[1,2,3]]`), ReasonBadJSON},
		{"sample is Infinity literal", emgJSON("data", `[[1,Infinity,2],[1,2,3]]`), ReasonBadJSON},
		{"sample is a string", emgJSON("data", `[[1,"2",2],[1,2,3]]`), ReasonBadJSON},
		{"leading plus", emgJSON("data", `[[+1,2,2],[1,2,3]]`), ReasonBadJSON},
		{"leading zero", emgJSON("data", `[[01,2,2],[1,2,3]]`), ReasonBadJSON},
		{"hex number", emgJSON("data", `[[0x10,2,2],[1,2,3]]`), ReasonBadJSON},
		{"bare dot", emgJSON("data", `[[1.,2,2],[1,2,3]]`), ReasonBadJSON},
		{"trailing comma", emgJSON("data", `[[1,2,2,],[1,2,3]]`), ReasonBadJSON},
		{"unit is a number", emgJSON("unit", "1"), ReasonBadJSON},
		{"raw control char in string", emgJSON("unit", "\"u\x01V\""), ReasonBadJSON},
		{"bad escape", emgJSON("unit", `"\x"`), ReasonBadJSON},
		{"deeply nested unknown field", emgJSON("seq", "1,\"x\":"+strings.Repeat("[", 100)+strings.Repeat("]", 100)), ReasonBadJSON},
		{"key without colon", `{"seq" 1}`, ReasonBadJSON},
		{"single quotes", `{'seq':1}`, ReasonBadJSON},

		{"missing seq", emgJSON("seq", ""), ReasonMissingField},
		{"missing t0", emgJSON("t0", ""), ReasonMissingField},
		{"missing rate", emgJSON("rate", ""), ReasonMissingField},
		{"missing unit", emgJSON("unit", ""), ReasonMissingField},
		{"missing ch", emgJSON("ch", ""), ReasonMissingField},
		{"missing data", emgJSON("data", ""), ReasonMissingField},

		{"negative seq", emgJSON("seq", "-1"), ReasonOutOfRange},
		{"seq beyond uint32", emgJSON("seq", "4294967296"), ReasonOutOfRange},
		{"seq beyond int64", emgJSON("seq", "99999999999999999999"), ReasonOutOfRange},
		{"nine channels", emgJSON("ch", nineCh, "data", "["+strings.Repeat("[1],", 8)+"[1]]"), ReasonOutOfRange},
		{"longer than 4 s", emgJSON("rate", "250", "ch", `["calf_left"]`, "data", "[["+strings.Repeat("1,", 1000)+"1]]"), ReasonOutOfRange},
		{"sample over 100 mV", emgJSON("data", `[[100001,0,0],[0,0,0]]`), ReasonOutOfRange},
		{"mV sample over 100 mV", emgJSON("unit", `"mV"`, "data", `[[-100.5,0,0],[0,0,0]]`), ReasonOutOfRange},

		{"t0 zero", emgJSON("t0", "0"), ReasonBadTime},
		{"t0 negative", emgJSON("t0", "-1763946000123456"), ReasonBadTime},
		{"t0 after 2200", emgJSON("t0", "7258118400000001"), ReasonBadTime},
		{"t0 beyond int64", emgJSON("t0", "99999999999999999999"), ReasonBadTime},
		{"t0 in seconds is fine but milliseconds in 2200+ is not", emgJSON("t0", "1763946000123456000"), ReasonBadTime},

		{"rate too low", emgJSON("rate", "249.9"), ReasonBadRate},
		{"rate too high", emgJSON("rate", "4000.5"), ReasonBadRate},
		{"rate zero", emgJSON("rate", "0"), ReasonBadRate},
		{"rate negative", emgJSON("rate", "-1000"), ReasonBadRate},

		{"unit V", emgJSON("unit", `"V"`), ReasonBadUnit},
		{"unit micro sign", emgJSON("unit", `"µV"`), ReasonBadUnit},
		{"unit lower case", emgJSON("unit", `"uv"`), ReasonBadUnit},

		{"unknown muscle", emgJSON("ch", `["biceps_left","hamstring_left"]`), ReasonUnknownChannel},
		{"unknown side", emgJSON("ch", `["calf_middle","hamstring_left"]`), ReasonUnknownChannel},
		{"no separator", emgJSON("ch", `["calf","hamstring_left"]`), ReasonUnknownChannel},
		{"empty label", emgJSON("ch", `["","hamstring_left"]`), ReasonUnknownChannel},
		{"upper case label", emgJSON("ch", `["Calf_Left","hamstring_left"]`), ReasonUnknownChannel},

		{"duplicate channel", emgJSON("ch", `["calf_left","calf_left"]`), ReasonDuplicateLabel},

		{"rows of different length", emgJSON("data", `[[1,2,3],[1,2]]`), ReasonRagged},
		{"fewer rows than channels", emgJSON("data", `[[1,2,3]]`), ReasonRagged},
		{"more rows than channels", emgJSON("data", `[[1],[2],[3]]`), ReasonRagged},

		{"sample overflows float64", emgJSON("data", `[[1e400,0,0],[0,0,0]]`), ReasonNonFinite},
	}
	return cases
}

func runDecodeCases(t *testing.T, cases []decodeCase, decode func(*Decoder, []byte) (func(), error)) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			check, err := decode(NewDecoder(0), []byte(tc.payload))
			if tc.want == "" {
				if err != nil {
					t.Fatalf("rejected valid payload: %v\n%s", err, clip(tc.payload))
				}
				check()
				return
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("got error %v (%T), want *Error with reason %s", err, err, tc.want)
			}
			if e.Reason != tc.want {
				t.Fatalf("reason %s (%v), want %s\n%s", e.Reason, e, tc.want, clip(tc.payload))
			}
			if e.Detail == "" {
				t.Fatalf("error without detail")
			}
		})
	}
}

func TestDecodeEMGJSONValues(t *testing.T) {
	d := NewDecoder(0)
	var f EMGFrame
	if err := d.DecodeEMG([]byte(emgJSON("unit", `"mV"`, "data", `[[0.0125,-4,8.1],[3,4.2,-1.7]]`)), &f); err != nil {
		t.Fatal(err)
	}
	want := EMGFrame{
		Seq: 1042, T0: 1763946000123456, Rate: 1000, Unit: Millivolt,
		Channels: []Channel{{Calf, Left}, {Hamstring, Left}},
		Data:     [][]float64{{12.5, -4000, 8100}, {3000, 4200, -1700}},
	}
	if f.Seq != want.Seq || f.T0 != want.T0 || f.Rate != want.Rate || f.Unit != want.Unit {
		t.Fatalf("header %+v, want %+v", f, want)
	}
	for i := range want.Data {
		if f.Channels[i] != want.Channels[i] {
			t.Fatalf("channel %d: %v, want %v", i, f.Channels[i], want.Channels[i])
		}
		for j, w := range want.Data[i] {
			if math.Abs(f.Data[i][j]-w) > 1e-9*math.Abs(w) {
				t.Fatalf("data[%d][%d] = %g µV, want %g", i, j, f.Data[i][j], w)
			}
		}
	}
}

func TestDecodeIMUJSON(t *testing.T) {
	runDecodeCases(t, imuJSONCases(), decodeIMUCase(t))
}

func imuJSONCases() []decodeCase {
	return []decodeCase{
		{"valid", imuJSON(), ""},
		{"valid thigh right", imuJSON("site", `"thigh_right"`), ""},
		{"valid unknown field", imuJSON("seq", `7,"temp_c":31.5`), ""},
		{"valid limits", imuJSON("acc", `[[64,-64,0],[0,0,0]]`, "gyr", `[[5000,-5000,0],[0,0,0]]`), ""},

		{"empty payload", "", ReasonEmpty},
		{"no samples", imuJSON("acc", "[]", "gyr", "[]"), ReasonEmpty},
		{"bad json", imuJSON()[:30], ReasonBadJSON},
		{"acc sample is object", imuJSON("acc", `[{"x":1},[0,0,0]]`), ReasonBadJSON},
		{"site is number", imuJSON("site", "1"), ReasonBadJSON},
		{"duplicate acc", imuJSON("acc", `[[0,0,1],[0,0,1]],"acc":[[0,0,1],[0,0,1]]`), ReasonBadJSON},
		{"missing gyr", imuJSON("gyr", ""), ReasonMissingField},
		{"missing site", imuJSON("site", ""), ReasonMissingField},
		{"seq beyond uint32", imuJSON("seq", "4294967296"), ReasonOutOfRange},
		{"t0 zero", imuJSON("t0", "0"), ReasonBadTime},
		{"rate too low", imuJSON("rate", "9"), ReasonBadRate},
		{"rate too high", imuJSON("rate", "1001"), ReasonBadRate},
		{"unknown site", imuJSON("site", `"foot_left"`), ReasonUnknownSite},
		{"site without side", imuJSON("site", `"shank"`), ReasonUnknownSite},
		{"acc and gyr lengths differ", imuJSON("gyr", `[[1,2,3]]`), ReasonRagged},
		{"two-component sample", imuJSON("acc", `[[0,0],[0,0,0]]`), ReasonRagged},
		{"four-component sample", imuJSON("gyr", `[[0,0,0,0],[0,0,0]]`), ReasonRagged},
		{"acc beyond 64 g", imuJSON("acc", `[[64.5,0,0],[0,0,0]]`), ReasonOutOfRange},
		{"gyr beyond 5000 dps", imuJSON("gyr", `[[0,-5001,0],[0,0,0]]`), ReasonOutOfRange},
		{"longer than 4 s", imuJSON("rate", "10", "acc", "["+strings.Repeat("[0,0,1],", 40)+"[0,0,1]]", "gyr", "["+strings.Repeat("[0,0,1],", 40)+"[0,0,1]]"), ReasonOutOfRange},
		{"acc overflows float64", imuJSON("acc", `[[1e999,0,0],[0,0,0]]`), ReasonNonFinite},
	}
}

func TestDecodeStatus(t *testing.T) {
	runDecodeCases(t, statusCases(), func(d *Decoder, p []byte) (func(), error) {
		var s StatusFrame
		err := d.DecodeStatus(p, &s)
		return func() { checkStatusInvariants(t, &s) }, err
	})
}

func statusCases() []decodeCase {
	return []decodeCase{
		{"valid full", `{"t":1763946000123456,"battery_pct":87,"firmware":"1.4.2","lead_off":["calf_left"],"rssi_dbm":-61}`, ""},
		{"valid t only", `{"t":1763946000123456}`, ""},
		{"valid nulls", `{"t":1763946000123456,"battery_pct":null,"firmware":null,"lead_off":null,"rssi_dbm":null}`, ""},
		{"valid unknown field", `{"t":1763946000123456,"uptime_s":3600}`, ""},
		{"valid unicode firmware", `{"t":1,"firmware":"v2 \u00e9t\u00e9"}`, ""},

		{"empty payload", "", ReasonEmpty},
		{"binary", "\xc7\x01\x03", ReasonBadJSON},
		{"battery is string", `{"t":1,"battery_pct":"87"}`, ReasonBadJSON},
		{"lead_off is string", `{"t":1,"lead_off":"calf_left"}`, ReasonBadJSON},
		{"t is null", `{"t":null}`, ReasonBadJSON},
		{"duplicate t", `{"t":1,"t":2}`, ReasonBadJSON},
		{"missing t", `{"battery_pct":87}`, ReasonMissingField},
		{"t zero", `{"t":0}`, ReasonBadTime},
		{"t after 2200", `{"t":9999999999999999}`, ReasonBadTime},
		{"battery above 100", `{"t":1,"battery_pct":100.5}`, ReasonOutOfRange},
		{"battery negative", `{"t":1,"battery_pct":-1}`, ReasonOutOfRange},
		{"battery overflows", `{"t":1,"battery_pct":1e999}`, ReasonNonFinite},
		{"firmware too long", `{"t":1,"firmware":"` + strings.Repeat("x", 65) + `"}`, ReasonOutOfRange},
		{"firmware control char", `{"t":1,"firmware":"1.4\n2"}`, ReasonOutOfRange},
		{"firmware invalid utf8", "{\"t\":1,\"firmware\":\"1.4\xff\"}", ReasonOutOfRange},
		{"rssi positive dBm", `{"t":1,"rssi_dbm":31}`, ReasonOutOfRange},
		{"unknown lead_off channel", `{"t":1,"lead_off":["calf_up"]}`, ReasonUnknownChannel},
		{"duplicate lead_off channel", `{"t":1,"lead_off":["calf_left","calf_left"]}`, ReasonDuplicateLabel},
	}
}

func checkStatusInvariants(t testing.TB, s *StatusFrame) {
	t.Helper()
	if s.T <= 0 || s.T > maxTime {
		t.Fatalf("accepted t %d", s.T)
	}
	if s.BatteryPct != -1 && !(s.BatteryPct >= 0 && s.BatteryPct <= 100) {
		t.Fatalf("accepted battery %g", s.BatteryPct)
	}
	if len(s.Firmware) > MaxFirmwareLen || !printable(s.Firmware) {
		t.Fatalf("accepted firmware %q", s.Firmware)
	}
	if !(s.RSSI >= MinRSSI && s.RSSI <= MaxRSSI) {
		t.Fatalf("accepted rssi %g", s.RSSI)
	}
	if err := checkChannels(s.LeadOff, nil); err != nil {
		t.Fatalf("accepted lead_off %v: %v", s.LeadOff, err)
	}
}

func TestDecodeStatusValues(t *testing.T) {
	d := NewDecoder(0)
	var s StatusFrame
	if err := d.DecodeStatus([]byte(`{"t":1763946000123456,"battery_pct":87,"firmware":"1.4.2","lead_off":["calf_left","tibialis_right"],"rssi_dbm":-61}`), &s); err != nil {
		t.Fatal(err)
	}
	if s.T != 1763946000123456 || s.BatteryPct != 87 || s.Firmware != "1.4.2" || s.RSSI != -61 ||
		len(s.LeadOff) != 2 || s.LeadOff[0] != (Channel{Calf, Left}) || s.LeadOff[1] != (Channel{Tibialis, Right}) {
		t.Fatalf("decoded %+v", s)
	}
	// A second frame without the optional fields must not inherit them.
	if err := d.DecodeStatus([]byte(`{"t":1763946000123457}`), &s); err != nil {
		t.Fatal(err)
	}
	if s.BatteryPct != -1 || s.Firmware != "" || len(s.LeadOff) != 0 || s.RSSI != 0 {
		t.Fatalf("optional fields leaked from the previous frame: %+v", s)
	}
}

func TestOversize(t *testing.T) {
	p := []byte(emgJSON())
	d := NewDecoder(len(p) - 1)
	var f EMGFrame
	if r := reasonOf(d.DecodeEMG(p, &f)); r != ReasonOversize {
		t.Fatalf("EMG: reason %q, want oversize", r)
	}
	var g IMUFrame
	if r := reasonOf(d.DecodeIMU([]byte(imuJSON()+strings.Repeat(" ", len(p))), &g)); r != ReasonOversize {
		t.Fatalf("IMU: reason %q, want oversize", r)
	}
	var s StatusFrame
	if r := reasonOf(d.DecodeStatus([]byte(`{"t":1}`+strings.Repeat(" ", len(p))), &s)); r != ReasonOversize {
		t.Fatalf("status: reason %q, want oversize", r)
	}
	if err := NewDecoder(len(p)).DecodeEMG(p, &f); err != nil {
		t.Fatalf("payload of exactly the limit rejected: %v", err)
	}
	var zero Decoder
	if err := zero.DecodeEMG(p, &f); err != nil {
		t.Fatalf("zero Decoder: %v", err)
	}
	if r := reasonOf(zero.DecodeEMG(make([]byte, DefaultMaxPayload+1), &f)); r != ReasonOversize {
		t.Fatalf("zero Decoder: reason %q for a payload over DefaultMaxPayload", r)
	}
}

// TestDecoderReuse checks that a Decoder and frame reused across frames of
// different shapes give the same result as fresh ones.
func TestDecoderReuse(t *testing.T) {
	d := NewDecoder(0)
	var f EMGFrame
	payloads := []string{
		emgJSON("ch", `["calf_left","calf_right","tibialis_left"]`, "data", `[[1,2,3,4],[5,6,7,8],[9,10,11,12]]`),
		emgJSON("ch", `["biceps_left"]`), // rejected in the middle
		emgJSON(),
		string(mustEMGBinary(t, testEMG(5))),
		emgJSON("ch", `["quadriceps_right"]`, "data", `[[1]]`),
	}
	for i, p := range payloads {
		var fresh EMGFrame
		errFresh := NewDecoder(0).DecodeEMG([]byte(p), &fresh)
		err := d.DecodeEMG([]byte(p), &f)
		if reasonOf(err) != reasonOf(errFresh) {
			t.Fatalf("payload %d: reused decoder says %v, fresh says %v", i, err, errFresh)
		}
		if err != nil {
			continue
		}
		if len(f.Channels) != len(fresh.Channels) || len(f.Data) != len(fresh.Data) || f.Len() != fresh.Len() {
			t.Fatalf("payload %d: reused frame has shape %dx%d, fresh %dx%d", i, len(f.Data), f.Len(), len(fresh.Data), fresh.Len())
		}
		for r := range f.Data {
			for j := range f.Data[r] {
				if f.Data[r][j] != fresh.Data[r][j] || f.Channels[r] != fresh.Channels[r] {
					t.Fatalf("payload %d: reused frame differs at %d,%d", i, r, j)
				}
			}
		}
	}
}

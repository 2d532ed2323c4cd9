package store

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/influxdata/influxdb-client-go/v2/api/write"

	"github.com/crampwatch/crampwatch/detect"
	"github.com/crampwatch/crampwatch/ingest"
	"github.com/crampwatch/crampwatch/wire"
)

var (
	onset    = time.UnixMicro(1763946000123456).UTC()
	calfLeft = wire.Channel{Muscle: wire.Calf, Side: wire.Left}
)

func endedCramp() detect.Event {
	return detect.Event{
		Device: "dev-01", Kind: detect.KindCramp, State: detect.StateEnded, Channel: calfLeft,
		Onset: onset, End: onset.Add(42*time.Second + 250*time.Microsecond), ConfirmedAt: onset.Add(2100 * time.Millisecond),
		DurationS: 42.00025, PeakUV: 312.5, MeanUV: 180.25, MedianFreqHz: 71.5, Confidence: 0.93,
	}
}

func TestAppendEvent(t *testing.T) {
	ongoing := endedCramp()
	ongoing.State = detect.StateOngoing
	ongoing.End = ongoing.ConfirmedAt
	ongoing.DurationS = 2.1
	artifact := detect.Event{
		Device: "dev-02", Kind: detect.KindArtifact, State: detect.StateEnded,
		Channel: wire.Channel{Muscle: wire.Tibialis, Side: wire.Right},
		Onset:   onset, End: onset.Add(3 * time.Second), DurationS: 3, Cause: `lead_off "x"`,
	}
	nan := endedCramp()
	nan.PeakUV = math.NaN()
	for _, tc := range []struct {
		name string
		e    detect.Event
		want string
	}{
		{"ended cramp", endedCramp(),
			`events,device=dev-01,kind=cramp,muscle=calf,side=left state="ended",duration_s=42.00025,peak_uv=312.5,` +
				`confidence=0.93,mean_uv=180.25,median_freq_hz=71.5,latency_s=2.1,end=1763946042123i,` +
				`event_id="dev-01-cramp-calf_left-1763946000123456" 1763946000123456` + "\n"},
		{"ongoing cramp has the same fields", ongoing,
			`events,device=dev-01,kind=cramp,muscle=calf,side=left state="ongoing",duration_s=2.1,peak_uv=312.5,` +
				`confidence=0.93,mean_uv=180.25,median_freq_hz=71.5,latency_s=2.1,end=1763946002223i,` +
				`event_id="dev-01-cramp-calf_left-1763946000123456" 1763946000123456` + "\n"},
		{"artifact with cause, no confirmation", artifact,
			`events,device=dev-02,kind=artifact,muscle=tibialis,side=right state="ended",duration_s=3,peak_uv=0,` +
				`confidence=0,mean_uv=0,median_freq_hz=0,end=1763946003123i,` +
				`event_id="dev-02-artifact-tibialis_right-1763946000123456",cause="lead_off \"x\"" 1763946000123456` + "\n"},
		{"NaN field left out", nan,
			`events,device=dev-01,kind=cramp,muscle=calf,side=left state="ended",duration_s=42.00025,` +
				`confidence=0.93,mean_uv=180.25,median_freq_hz=71.5,latency_s=2.1,end=1763946042123i,` +
				`event_id="dev-01-cramp-calf_left-1763946000123456" 1763946000123456` + "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := appendEvent(nil, &tc.e)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("\n got %s\nwant %s", got, tc.want)
			}
		})
	}
	// The event_id field is detect.Event.ID().
	e := endedCramp()
	if got, _ := appendEvent(nil, &e); !strings.Contains(string(got), `event_id="`+e.ID()+`"`) {
		t.Errorf("event_id differs from ID() %q: %s", e.ID(), got)
	}
}

func TestAppendEnvelopeMotionHealth(t *testing.T) {
	for _, tc := range []struct {
		name string
		enc  func([]byte) ([]byte, error)
		want string
	}{
		{"envelope", func(b []byte) ([]byte, error) {
			return appendEnvelope(b, &detect.Envelope{Device: "d1", Channel: calfLeft, Time: onset, RMSUV: 12.25, BaselineUV: 3.5})
		}, "envelope,channel=calf_left,device=d1,muscle=calf,side=left rms_uv=12.25,baseline_uv=3.5 1763946000123456\n"},
		{"envelope without baseline", func(b []byte) ([]byte, error) {
			return appendEnvelope(b, &detect.Envelope{Device: "d1", Channel: calfLeft, Time: onset, RMSUV: 12.25, BaselineUV: math.Inf(1)})
		}, "envelope,channel=calf_left,device=d1,muscle=calf,side=left rms_uv=12.25 1763946000123456\n"},
		{"motion", func(b []byte) ([]byte, error) {
			return appendMotion(b, &detect.Motion{Device: "d1", Site: wire.Site{Segment: wire.Shank, Side: wire.Right}, Time: onset, Activity: 0.02, TiltDeg: 35})
		}, "motion,device=d1,side=right,site=shank_right activity_g=0.02,tilt_deg=35 1763946000123456\n"},
		{"health", func(b []byte) ([]byte, error) {
			return appendHealth(b, &ingest.Health{
				Device: "d1", Time: onset, BatteryPct: 87.5, Firmware: "1.2.3 \"beta\"\nx",
				LeadOff:  []wire.Channel{calfLeft, {Muscle: wire.Hamstring, Side: wire.Right}},
				FramesIn: 1000, FramesLost: 3, FramesDup: 2, Rejected: 1, LagSeconds: 0.25,
			})
		}, `device_health,device=d1 battery_pct=87.5,frames_in=1000i,frames_lost=3i,frames_dup=2i,rejected=1i,` +
			`lead_off=2i,lead_off_channels="calf_left,hamstring_right",lag_s=0.25,firmware="1.2.3 \"beta\" x" 1763946000123456` + "\n"},
		{"health before any data: no battery, last-seen time", func(b []byte) ([]byte, error) {
			return appendHealth(b, &ingest.Health{Device: "d1", BatteryPct: -1, LastSeen: onset})
		}, `device_health,device=d1 frames_in=0i,frames_lost=0i,frames_dup=0i,rejected=0i,lead_off=0i,lead_off_channels="",lag_s=0 1763946000123456` + "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.enc([]byte("prefix\n"))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != "prefix\n"+tc.want {
				t.Errorf("\n got %s\nwant %s", got, "prefix\n"+tc.want)
			}
		})
	}
}

func TestAppendRejectsInvalid(t *testing.T) {
	for _, tc := range []struct {
		name string
		enc  func([]byte) ([]byte, error)
	}{
		{"event without device", func(b []byte) ([]byte, error) { e := endedCramp(); e.Device = ""; return appendEvent(b, &e) }},
		{"event without onset", func(b []byte) ([]byte, error) { e := endedCramp(); e.Onset = time.Time{}; return appendEvent(b, &e) }},
		{"event device ending in backslash", func(b []byte) ([]byte, error) { e := endedCramp(); e.Device = `x\`; return appendEvent(b, &e) }},
		{"envelope without time", func(b []byte) ([]byte, error) {
			return appendEnvelope(b, &detect.Envelope{Device: "d", RMSUV: 1})
		}},
		{"envelope all NaN", func(b []byte) ([]byte, error) {
			return appendEnvelope(b, &detect.Envelope{Device: "d", Time: onset, RMSUV: math.NaN(), BaselineUV: math.NaN()})
		}},
		{"motion all NaN", func(b []byte) ([]byte, error) {
			return appendMotion(b, &detect.Motion{Device: "d", Time: onset, Activity: math.NaN(), TiltDeg: math.Inf(-1)})
		}},
		{"health without any time", func(b []byte) ([]byte, error) { return appendHealth(b, &ingest.Health{Device: "d"}) }},
		{"point nil", func(b []byte) ([]byte, error) { return appendPoint(b, nil, onset) }},
		{"point without fields", func(b []byte) ([]byte, error) {
			return appendPoint(b, write.NewPointWithMeasurement("alerts").AddTag("device", "d"), onset)
		}},
		{"point with empty tag value", func(b []byte) ([]byte, error) {
			return appendPoint(b, write.NewPointWithMeasurement("alerts").AddTag("device", "").AddField("x", 1), onset)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.enc([]byte("keep"))
			if !errors.Is(err, errInvalidPoint) {
				t.Errorf("err = %v, want errInvalidPoint", err)
			}
			if string(got) != "keep" {
				t.Errorf("buffer changed to %q", got)
			}
		})
	}
}

func TestAppendPoint(t *testing.T) {
	p := write.NewPoint("alerts",
		map[string]string{"device": "d 1", "muscle": "calf", "a,b": "x=y"},
		map[string]any{"level": 2, "msg": `stretch "now"`, "acked": true, "latency_s": 1.5, "n": uint32(7)},
		onset)
	got, err := appendPoint(nil, p, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	want := `alerts,a\,b=x\=y,device=d\ 1,muscle=calf acked=t,latency_s=1.5,level=2i,msg="stretch \"now\"",n=7i 1763946000123456` + "\n"
	if string(got) != want {
		t.Errorf("\n got %s\nwant %s", got, want)
	}
	// No time: stamped with the enqueue time.
	p = write.NewPointWithMeasurement("diary").AddTag("device", "d").AddField("pain", 3)
	got, err = appendPoint(nil, p, onset)
	if err != nil {
		t.Fatal(err)
	}
	if want := "diary,device=d pain=3i 1763946000123456\n"; string(got) != want {
		t.Errorf("\n got %s\nwant %s", got, want)
	}
}

func BenchmarkAppendEnvelope(b *testing.B) {
	e := detect.Envelope{Device: "dev-0001", Channel: calfLeft, Time: onset, RMSUV: 12.345678, BaselineUV: 3.25}
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = appendEnvelope(buf[:0], &e)
	}
}

func BenchmarkAppendEvent(b *testing.B) {
	e := endedCramp()
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = appendEvent(buf[:0], &e)
	}
}

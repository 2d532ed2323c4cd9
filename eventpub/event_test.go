package eventpub

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/crampwatch/crampwatch/detect"
	"github.com/crampwatch/crampwatch/wire"
)

func sampleCramp() detect.Event {
	onset := time.UnixMicro(1763946000123456).UTC()
	return detect.Event{
		Device:       "dev-01",
		Kind:         detect.KindCramp,
		State:        detect.StateEnded,
		Channel:      wire.Channel{Muscle: wire.Calf, Side: wire.Left},
		Onset:        onset,
		End:          onset.Add(42*time.Second + 250*time.Microsecond),
		ConfirmedAt:  onset.Add(2100 * time.Millisecond),
		DurationS:    42.00025,
		PeakUV:       312.5,
		MeanUV:       180.25,
		MedianFreqHz: 71.5,
		Confidence:   0.93,
	}
}

func TestEventJSONFormat(t *testing.T) {
	e := sampleCramp()
	got, err := json.Marshal(FromDetect(&e))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":"dev-01-cramp-calf_left-1763946000123456","device":"dev-01","kind":"cramp","state":"ended",` +
		`"muscle":"calf","side":"left","onset":"2025-11-24T01:00:00.123Z","end":"2025-11-24T01:00:42.123Z",` +
		`"confirmed_at":"2025-11-24T01:00:02.223Z","onset_us":1763946000123456,"end_us":1763946042123706,` +
		`"confirmed_at_us":1763946002223456,"duration_s":42.00025,"peak_uv":312.5,"mean_uv":180.25,` +
		`"median_freq_hz":71.5,"confidence":0.93}`
	if string(got) != want {
		t.Errorf("JSON\n got %s\nwant %s", got, want)
	}
}

func TestEventRoundTrip(t *testing.T) {
	cramp := sampleCramp()
	ongoing := cramp
	ongoing.State = detect.StateOngoing
	ongoing.End = ongoing.ConfirmedAt
	artifact := detect.Event{
		Device: "b", Kind: detect.KindArtifact, State: detect.StateEnded,
		Channel: wire.Channel{Muscle: wire.Tibialis, Side: wire.Right},
		Onset:   time.UnixMicro(1700000000000001).UTC(), End: time.UnixMicro(1700000003000001).UTC(),
		DurationS: 3, Cause: "lead_off",
	}
	for _, tc := range []struct {
		name string
		e    detect.Event
	}{{"ended cramp", cramp}, {"ongoing cramp", ongoing}, {"artifact without confirmation", artifact}} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := json.Marshal(FromDetect(&tc.e))
			if err != nil {
				t.Fatal(err)
			}
			var j Event
			if err := json.Unmarshal(b, &j); err != nil {
				t.Fatal(err)
			}
			got, err := j.Detect()
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.e {
				t.Errorf("round trip\n got %+v\nwant %+v", got, tc.e)
			}
			if got.ID() != j.ID {
				t.Errorf("ID %q, JSON id %q", got.ID(), j.ID)
			}
		})
	}
}

func TestEventFromStringsOnly(t *testing.T) {
	// A producer that only writes the RFC 3339 strings (e.g. a hand-written
	// test message) still decodes, at the strings' precision.
	in := `{"device":"d","kind":"plm","state":"ended","muscle":"tibialis","side":"right",` +
		`"onset":"2025-11-24T01:00:00.123Z","end":"2025-11-24T01:00:01.623Z","duration_s":1.5}`
	var j Event
	if err := json.Unmarshal([]byte(in), &j); err != nil {
		t.Fatal(err)
	}
	e, err := j.Detect()
	if err != nil {
		t.Fatal(err)
	}
	if e.Onset.UnixMicro() != 1763946000123000 || e.End.Sub(e.Onset) != 1500*time.Millisecond {
		t.Errorf("times %v .. %v", e.Onset, e.End)
	}
	if !e.ConfirmedAt.IsZero() {
		t.Errorf("ConfirmedAt = %v, want zero", e.ConfirmedAt)
	}
}

func TestEventDetectRejects(t *testing.T) {
	base := FromDetect(new(sampleCramp()))
	for _, tc := range []struct {
		name   string
		mutate func(*Event)
		want   string
	}{
		{"no device", func(j *Event) { j.Device = "" }, "missing device"},
		{"bad kind", func(j *Event) { j.Kind = "yawn" }, "unknown kind"},
		{"bad state", func(j *Event) { j.State = "paused" }, "unknown state"},
		{"bad muscle", func(j *Event) { j.Muscle = "biceps" }, "unknown muscle"},
		{"bad side", func(j *Event) { j.Side = "middle" }, "unknown muscle or side"},
		{"no onset", func(j *Event) { j.Onset, j.OnsetUS = "", 0 }, "missing onset"},
		{"bad onset", func(j *Event) { j.Onset, j.OnsetUS = "yesterday", 0 }, "onset"},
		{"bad end", func(j *Event) { j.End, j.EndUS = "2025-13-01T00:00:00Z", 0 }, "end"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j := base
			tc.mutate(&j)
			_, err := j.Detect()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestFromDetectNonFinite(t *testing.T) {
	e := sampleCramp()
	e.PeakUV = math.NaN()
	e.MedianFreqHz = math.Inf(1)
	j := FromDetect(&e)
	if j.PeakUV != 0 || j.MedianFreqHz != 0 {
		t.Errorf("peak %v, median %v: want 0", j.PeakUV, j.MedianFreqHz)
	}
	if _, err := json.Marshal(j); err != nil {
		t.Errorf("marshal: %v", err)
	}
}

func FuzzEventDetect(f *testing.F) {
	e := sampleCramp()
	b, _ := json.Marshal(FromDetect(&e))
	f.Add(b)
	f.Add([]byte(`{"device":"d","kind":"plm","state":"ended","muscle":"calf","side":"left","onset":"x"}`))
	f.Add([]byte(`{"onset_us":-9223372036854775808}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var j Event
		if json.Unmarshal(data, &j) != nil {
			return
		}
		e, err := j.Detect()
		if err != nil {
			return
		}
		// Whatever decodes must encode again and decode to the same event.
		again := FromDetect(&e)
		e2, err := again.Detect()
		if err != nil {
			t.Fatalf("re-decode of %+v: %v", again, err)
		}
		if !e2.Onset.Equal(e.Onset) || e2.Device != e.Device || e2.Channel != e.Channel {
			t.Fatalf("round trip changed the event: %+v -> %+v", e, e2)
		}
	})
}

package firmwaresim

import (
	"bytes"
	"os"
	"testing"
)

// FuzzReadTruth: any input either fails with an error or reads truth that
// survives a write and a second read unchanged.
func FuzzReadTruth(f *testing.F) {
	f.Add([]byte(`{"device":"a","kind":"cramp","muscle":"calf","side":"left","onset":"2025-01-01T00:00:00Z","end":"2025-01-01T00:01:00Z"}`))
	f.Add([]byte("\n\n{\"device\":\"b\",\"kind\":\"artifact\",\"onset\":\"2025-01-01T00:00:00.123456789+02:00\",\"end\":\"2025-01-01T00:00:01Z\",\"cause\":\"gap\"}\n"))
	f.Add([]byte(`{"device":"a","kind":"cramp","onset":"2025-01-01T00:02:00Z","end":"2025-01-01T00:01:00Z"}`))
	f.Add([]byte("{nope"))
	f.Fuzz(func(t *testing.T, in []byte) {
		ts, err := ReadTruth(bytes.NewReader(in))
		if err != nil {
			return
		}
		var buf bytes.Buffer
		if err := WriteTruth(&buf, ts); err != nil {
			t.Fatalf("write what was read: %v", err)
		}
		back, err := ReadTruth(&buf)
		if err != nil || len(back) != len(ts) {
			t.Fatalf("re-read: %d records, %v; had %d", len(back), err, len(ts))
		}
		for i := range ts {
			a, b := ts[i], back[i]
			if !a.Onset.Equal(b.Onset) || !a.End.Equal(b.End) || a.Device != b.Device || a.Kind != b.Kind ||
				a.Muscle != b.Muscle || a.Side != b.Side || a.Cause != b.Cause {
				t.Fatalf("record %d changed: %+v -> %+v", i, a, b)
			}
		}
	})
}

// FuzzParseScenario: any input is a valid scenario or an error, never a
// panic, and a valid one makes a device without error.
func FuzzParseScenario(f *testing.F) {
	for _, name := range []string{"typical", "cramp-heavy", "four-channel", "hum60", "imu-simultaneous"} {
		b, err := os.ReadFile("scenarios/" + name + ".yaml")
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"rate": 250, "hours": 0.01, "channels": ["tibialis_right"]}`))
	f.Add([]byte("cramps:\n  peak_uv: [1, 2, 3]\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		sc, err := ParseScenario(in)
		if err != nil {
			return
		}
		// Keep nights short so the fuzzer explores inputs, not long nights.
		sc = sc.WithHours(0.001)
		d := NewDevice("fuzz", sc, 1, testStart)
		if d.Err() != nil {
			t.Fatalf("a valid scenario made a broken device: %v", d.Err())
		}
		for range 50 {
			if _, ok := d.Next(nil); !ok {
				break
			}
		}
		if d.Err() != nil {
			t.Fatalf("device failed: %v", d.Err())
		}
	})
}

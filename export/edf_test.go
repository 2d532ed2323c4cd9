package export

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// edfTemp opens a temporary file to write an EDF into: the writer patches
// the record count, so it wants an io.WriteSeeker. contents reads it back.
func edfTemp(tb testing.TB) (*os.File, func() []byte) {
	tb.Helper()
	f, err := os.CreateTemp(tb.TempDir(), "*.edf")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { f.Close() })
	return f, func() []byte {
		b, err := os.ReadFile(f.Name())
		if err != nil {
			tb.Fatal(err)
		}
		return b
	}
}

func TestEDFRoundTrip(t *testing.T) {
	start := time.Date(2025, 1, 14, 22, 59, 58, 0, time.UTC)
	sig := edfSignal{Label: "calf_left", Transducer: "t", Dimension: "uV", PhysMin: 0, PhysMax: edfEnvMaxUV, DigMin: -32768, DigMax: 32767, Samples: 10}
	tests := []struct {
		name    string
		h       edfHeader
		records []time.Duration
	}{
		{"annotations only", edfHeader{Start: start, Continuous: true, AnnSamples: 64}, []time.Duration{0, 0, 0}},
		{"discontinuous signals", edfHeader{Start: start, RecordDur: time.Second, Signals: []edfSignal{sig, sig}, AnnSamples: 64},
			[]time.Duration{0, time.Second, 10 * time.Second, 11 * time.Second}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.h.Patient, tc.h.Recording = "sub-abc X X X", "Startdate 14-JAN-2025 X X crampwatch"
			buf, contents := edfTemp(t)
			w, err := newEDFWriter(buf, tc.h)
			if err != nil {
				t.Fatal(err)
			}
			var wantAnn []EDFAnnotation
			var wantVals []float64
			for i, at := range tc.records {
				a := edfAnnotation{Onset: at + time.Duration(i)*1234567*time.Microsecond, Duration: 42000125 * time.Microsecond, Text: "cramp calf_left"}
				samples := make([][]float64, len(tc.h.Signals))
				for s := range samples {
					samples[s] = make([]float64, sig.Samples)
					for j := range samples[s] {
						samples[s][j] = float64(i*100+j) * 1.05
					}
				}
				if len(samples) > 0 {
					wantVals = append(wantVals, samples[0]...)
				}
				if err := w.writeRecord(at, samples, []edfAnnotation{a}); err != nil {
					t.Fatal(err)
				}
				wantAnn = append(wantAnn, EDFAnnotation{Onset: a.Onset, Duration: a.Duration, HasDuration: true, Text: a.Text})
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			f, err := ReadEDF(bytes.NewReader(contents()))
			if err != nil {
				t.Fatal(err)
			}
			if !f.Start.Equal(start) || f.Patient != tc.h.Patient || f.Continuous != tc.h.Continuous || len(f.Records) != len(tc.records) {
				t.Fatalf("read %+v", f)
			}
			if len(f.Annotations) != len(wantAnn) {
				t.Fatalf("annotations %v, want %v", f.Annotations, wantAnn)
			}
			for i := range wantAnn {
				if f.Annotations[i] != wantAnn[i] {
					t.Errorf("annotation %d = %+v, want %+v", i, f.Annotations[i], wantAnn[i])
				}
			}
			if len(tc.h.Signals) > 0 {
				got := f.Signals[0].Values
				if len(got) != len(wantVals) {
					t.Fatalf("%d values, want %d", len(got), len(wantVals))
				}
				q := edfEnvMaxUV / 65535
				for i := range got {
					if math.Abs(got[i]-wantVals[i]) > q/2+1e-9 {
						t.Fatalf("value %d = %v, want %v ± %v", i, got[i], wantVals[i], q/2)
					}
				}
			}
		})
	}
}

func TestEDFRejectsOverfullRecord(t *testing.T) {
	buf, _ := edfTemp(t)
	w, err := newEDFWriter(buf, edfHeader{Start: time.Unix(0, 0), Continuous: true, AnnSamples: 16})
	if err != nil {
		t.Fatal(err)
	}
	err = w.writeRecord(0, nil, []edfAnnotation{{Onset: time.Hour, Duration: time.Second, Text: "a rather long annotation text"}})
	if err == nil {
		t.Fatal("an annotation longer than the record was written")
	}
}

func TestParseEDFSeconds(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		bad  bool
	}{
		{in: "+0", want: 0},
		{in: "+12.5", want: 12500 * time.Millisecond},
		{in: "-3", want: -3 * time.Second},
		{in: "42.000125", want: 42000125 * time.Microsecond},
		{in: "+", bad: true},
		{in: "+1.2.3", bad: true},
		{in: "+1e3", bad: true},
		{in: "+99999999999999", bad: true},
	}
	for _, tc := range tests {
		got, err := parseEDFSeconds([]byte(tc.in))
		if (err != nil) != tc.bad || (!tc.bad && got != tc.want) {
			t.Errorf("parseEDFSeconds(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.bad)
		}
	}
}

// FuzzReadEDF: the reader must never panic, whatever it is given, and a
// file it accepts must satisfy what it checks.
func FuzzReadEDF(f *testing.F) {
	buf, contents := edfTemp(f)
	sig := edfSignal{Label: "calf_left", Dimension: "uV", PhysMin: 0, PhysMax: 100, DigMin: -32768, DigMax: 32767, Samples: 2}
	w, _ := newEDFWriter(buf, edfHeader{Start: time.Unix(1e9, 0), RecordDur: time.Second, Signals: []edfSignal{sig}, AnnSamples: 32})
	w.writeRecord(0, [][]float64{{1, 2}}, []edfAnnotation{{Onset: time.Second, Duration: -1, Text: "x"}})
	w.writeRecord(5*time.Second, [][]float64{{3, 4}}, nil)
	w.Close()
	f.Add(contents())
	if seeds, err := filepath.Glob("testdata/*.edf"); err == nil {
		for _, s := range seeds {
			if b, err := os.ReadFile(s); err == nil {
				f.Add(b)
			}
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := ReadEDF(bytes.NewReader(b))
		if err != nil {
			return
		}
		for _, s := range e.Signals {
			if len(s.Values) != s.Samples*len(e.Records) {
				t.Fatalf("signal %q: %d values for %d records of %d", s.Label, len(s.Values), len(e.Records), s.Samples)
			}
		}
	})
}

// TestEDFAnnotationDuration: a negative duration means none; 0 is written.
func TestEDFAnnotationDuration(t *testing.T) {
	buf, contents := edfTemp(t)
	w, err := newEDFWriter(buf, edfHeader{Start: time.Unix(0, 0), Continuous: true, AnnSamples: 64})
	if err != nil {
		t.Fatal(err)
	}
	in := []edfAnnotation{{Onset: time.Second, Duration: -1, Text: "none"}, {Onset: 2 * time.Second, Text: "zero"},
		{Onset: 3 * time.Second, Duration: 2500 * time.Millisecond, Text: "some"}}
	n := 0
	for _, a := range in {
		n += talLen(a)
	}
	if !w.fits(0, n) || w.fits(0, 128) {
		t.Fatalf("fits: %d bytes of TALs in a record of 128", n)
	}
	if err := w.writeRecord(0, nil, in); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := ReadEDF(bytes.NewReader(contents()))
	if err != nil {
		t.Fatal(err)
	}
	want := []EDFAnnotation{{Onset: time.Second, Text: "none"}, {Onset: 2 * time.Second, HasDuration: true, Text: "zero"},
		{Onset: 3 * time.Second, Duration: 2500 * time.Millisecond, HasDuration: true, Text: "some"}}
	if len(f.Annotations) != len(want) || len(f.Records) != 1 {
		t.Fatalf("read %+v", f)
	}
	for i := range want {
		if f.Annotations[i] != want[i] {
			t.Errorf("annotation %d = %+v, want %+v", i, f.Annotations[i], want[i])
		}
	}
}

package edf

import (
	"bytes"
	"errors"
	"io"
	"math"
	"strings"
	"testing"
	"time"
)

var testStart = time.Date(2026, 11, 27, 23, 0, 0, 0, time.UTC)

// testHeader is a two-signal EDF+ header with an annotation signal.
func testHeader(format Format, records int) Header {
	h := Header{
		Format: format, Patient: "X X X X", Recording: "Startdate 27-NOV-2026 X X X",
		Start: testStart, Records: records, RecordDuration: time.Second,
		Signals: []Signal{
			{Label: "EMG calf_left", Dimension: "uV", PhysMin: -3276.8, PhysMax: 3276.7, DigMin: -32768, DigMax: 32767, Samples: 1000},
			{Label: "EMG calf_right", Dimension: "mV", PhysMin: -5, PhysMax: 5, DigMin: -2048, DigMax: 2047, Samples: 500},
		},
	}
	if format != EDF {
		h.Signals = append(h.Signals, Signal{Annotation: true, Samples: 30})
	}
	return h
}

// sample is the test signal: a different value for every sample.
func sample(sig, rec, j int) float64 {
	return 3000 * math.Sin(float64(rec*1000+j)*0.01+float64(sig)) / float64(1+999*sig)
}

// writeFile writes records with the given starts (nil: contiguous).
func writeFile(t testing.TB, h Header, n int, starts []time.Duration) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := NewWriter(&b, h)
	if err != nil {
		t.Fatal(err)
	}
	rec := make([][]float64, len(h.Signals))
	for r := range n {
		for i, s := range h.Signals {
			if s.Annotation {
				continue
			}
			rec[i] = rec[i][:0]
			for j := range s.Samples {
				rec[i] = append(rec[i], sample(i, r, j))
			}
		}
		at := time.Duration(r) * h.RecordDuration
		if starts != nil {
			at = starts[r]
		}
		if err := w.WriteRecord(at, rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestReadRoundTrip(t *testing.T) {
	gapped := []time.Duration{250 * time.Millisecond, 1250 * time.Millisecond, 5 * time.Second, 6 * time.Second}
	for _, tc := range []struct {
		name    string
		format  Format
		records int // in the header
		starts  []time.Duration
		want    []time.Duration
	}{
		{"EDF", EDF, 4, nil, []time.Duration{0, time.Second, 2 * time.Second, 3 * time.Second}},
		{"EDF+C", EDFPlusC, 4, nil, []time.Duration{0, time.Second, 2 * time.Second, 3 * time.Second}},
		{"EDF+C sub-second start", EDFPlusC, 4, gapped[:1], nil},
		{"EDF+D", EDFPlusD, 4, gapped, gapped},
		{"unknown number of records", EDFPlusD, -1, gapped, gapped},
	} {
		t.Run(tc.name, func(t *testing.T) {
			starts, want := tc.starts, tc.want
			if tc.name == "EDF+C sub-second start" {
				// The writer is given sloppy onsets after the first; the
				// reader trusts EDF+C arithmetic.
				starts = []time.Duration{250 * time.Millisecond, 1249 * time.Millisecond, 2251 * time.Millisecond, 3 * time.Second}
				want = []time.Duration{250 * time.Millisecond, 1250 * time.Millisecond, 2250 * time.Millisecond, 3250 * time.Millisecond}
			}
			r, err := NewReader(bytes.NewReader(writeFile(t, testHeader(tc.format, tc.records), 4, starts)))
			if err != nil {
				t.Fatal(err)
			}
			if r.Format != tc.format || !r.Start.Equal(testStart) || r.Records != tc.records || r.RecordDuration != time.Second {
				t.Fatalf("header %v %v %d %v", r.Format, r.Start, r.Records, r.RecordDuration)
			}
			if got := r.SampleRate(0); got != 1000 {
				t.Errorf("rate of signal 0 = %v, want 1000", got)
			}
			if got := r.SampleRate(1); got != 500 {
				t.Errorf("rate of signal 1 = %v, want 500", got)
			}
			if r.Signals[1].Label != "EMG calf_right" || r.Signals[1].Dimension != "mV" {
				t.Errorf("signal 1 = %+v", r.Signals[1])
			}
			dst := r.NewRecord()
			for rec := 0; ; rec++ {
				at, err := r.ReadRecord(dst)
				if errors.Is(err, io.EOF) {
					if rec != 4 {
						t.Fatalf("EOF after %d records, want 4", rec)
					}
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				if at != want[rec] {
					t.Errorf("record %d starts at %v, want %v", rec, at, want[rec])
				}
				for i := range 2 {
					s := r.Signals[i]
					step := (s.PhysMax - s.PhysMin) / float64(s.DigMax-s.DigMin)
					for j, v := range dst[i] {
						if w := sample(i, rec, j); math.Abs(v-w) > step/2+1e-9 {
							t.Fatalf("record %d signal %d sample %d = %v, want %v ± %v", rec, i, j, v, w, step/2)
						}
					}
				}
			}
		})
	}
}

// TestReadErrors damages a good header or data and checks the error.
func TestReadErrors(t *testing.T) {
	good := writeFile(t, testHeader(EDFPlusD, 2), 2, []time.Duration{0, 3 * time.Second})
	nsig := 3
	sigField := func(off, width, sig int) int { return 256 + off*nsig + width*sig }
	for _, tc := range []struct {
		name   string
		damage func(b []byte) []byte
		want   string
	}{
		{"empty", func([]byte) []byte { return nil }, "header"},
		{"BDF", func(b []byte) []byte { b[0] = 0xff; return b }, "version"},
		{"bad date", func(b []byte) []byte { copy(b[168:], "32.13.26"); return b }, "start date"},
		{"header size", func(b []byte) []byte { copy(b[184:], "1280    "); return b }, "header size"},
		{"records", func(b []byte) []byte { copy(b[236:], "-5      "); return b }, "number of data records"},
		{"duration", func(b []byte) []byte { copy(b[244:], "abc     "); return b }, "record duration"},
		{"no signals", func(b []byte) []byte { copy(b[252:], "0   "); return b }, "0 signals"},
		{"cut signal headers", func(b []byte) []byte { return b[:600] }, "signal headers"},
		{"digital range", func(b []byte) []byte {
			copy(b[sigField(16+80+8+8+8, 8, 0):], "40000   ")
			return b
		}, "digital range"},
		{"physical range", func(b []byte) []byte {
			copy(b[sigField(16+80+8, 8, 0):], "3276.7  ")
			return b
		}, "physical minimum equals maximum"},
		{"samples", func(b []byte) []byte {
			copy(b[sigField(16+80+8+8+8+8+8+80, 8, 1):], "0       ")
			return b
		}, "samples per record"},
		{"huge record", func(b []byte) []byte {
			copy(b[sigField(16+80+8+8+8+8+8+80, 8, 1):], "99999999")
			return b
		}, "samples per record"},
		{"cut record", func(b []byte) []byte { return b[:len(b)-10] }, "unexpected EOF"},
		{"no time-keeping TAL", func(b []byte) []byte {
			ann := 256*(nsig+1) + 2*1000 + 2*500
			copy(b[ann:], "x\x14\x14")
			return b
		}, "time-keeping"},
		{"EDF+D overlap", func(b []byte) []byte {
			rec := 2*1000 + 2*500 + 2*30
			ann := 256*(nsig+1) + rec + 2*1000 + 2*500
			copy(b[ann:], "+0.5\x14\x14\x00")
			return b
		}, "before the previous record ends"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.damage(bytes.Clone(good))
			r, err := NewReader(bytes.NewReader(b))
			if err == nil {
				dst := r.NewRecord()
				for err == nil {
					_, err = r.ReadRecord(dst)
				}
				if errors.Is(err, io.EOF) {
					err = nil
				}
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestTwoDigitYear(t *testing.T) {
	for _, tc := range []struct {
		yy   string
		want int
	}{{"85", 1985}, {"99", 1999}, {"00", 2000}, {"68", 2068}, {"69", 2069}, {"84", 2084}} {
		got, err := parseStart("01.02."+tc.yy, "03.04.05")
		if err != nil || got.Year() != tc.want {
			t.Errorf("year %s: %v, %v; want %d", tc.yy, got, err, tc.want)
		}
	}
}

func TestParseSeconds(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"+0", 0, true},
		{"+12.5", 12500 * time.Millisecond, true},
		{"-3", -3 * time.Second, true},
		{"+42.000125", 42*time.Second + 125*time.Microsecond, true},
		{"12", 0, false},
		{"+", 0, false},
		{"+1.2.3", 0, false},
		{"+123456789012", 0, false},
	} {
		got, ok := parseSeconds([]byte(tc.in))
		if ok != tc.ok || ok && got != tc.want {
			t.Errorf("parseSeconds(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

// TestReadRecordAllocs checks that reading a record allocates nothing,
// so memory does not grow with the length of a recording.
func TestReadRecordAllocs(t *testing.T) {
	data := writeFile(t, testHeader(EDFPlusC, -1), 200, nil)
	r, err := NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	dst := r.NewRecord()
	allocs := testing.AllocsPerRun(150, func() {
		if _, err := r.ReadRecord(dst); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per record, want 0", allocs)
	}
}

func BenchmarkReadRecord(b *testing.B) {
	h := testHeader(EDFPlusC, -1)
	data := writeFile(b, h, 100, nil)
	b.SetBytes(int64(len(data) - 256*(len(h.Signals)+1)))
	b.ReportAllocs()
	var r *Reader
	var dst [][]float64
	for b.Loop() {
		r, _ = NewReader(bytes.NewReader(data))
		if dst == nil {
			dst = r.NewRecord()
		}
		for {
			if _, err := r.ReadRecord(dst); err != nil {
				break
			}
		}
	}
}

// FuzzReader feeds damaged files to the reader: it must return errors,
// never panic, and never hand out more samples than the header declares.
func FuzzReader(f *testing.F) {
	h := testHeader(EDFPlusD, 2)
	h.Signals[0].Samples, h.Signals[1].Samples = 10, 5
	f.Add(writeFile(f, h, 2, []time.Duration{0, 2 * time.Second}))
	h.Format = EDF
	h.Signals = h.Signals[:2]
	h.Records = -1
	f.Add(writeFile(f, h, 3, nil))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := NewReader(bytes.NewReader(data))
		if err != nil {
			return
		}
		dst := r.NewRecord()
		for range 100 {
			if _, err := r.ReadRecord(dst); err != nil {
				return
			}
			for i, s := range r.Signals {
				if dst[i] != nil && len(dst[i]) != s.Samples {
					t.Fatalf("signal %d: %d samples, header says %d", i, len(dst[i]), s.Samples)
				}
			}
		}
	})
}

func TestAnnotation(t *testing.T) {
	r, err := NewReader(bytes.NewReader(writeFile(t, testHeader(EDFPlusD, 2), 2, []time.Duration{0, 1500 * time.Millisecond})))
	if err != nil {
		t.Fatal(err)
	}
	if b := r.Annotation(2); b != nil {
		t.Errorf("before the first record: %q", b)
	}
	dst := r.NewRecord()
	for _, want := range []string{"+0\x14\x14\x00", "+1.5\x14\x14\x00"} {
		if _, err := r.ReadRecord(dst); err != nil {
			t.Fatal(err)
		}
		b := r.Annotation(2)
		if len(b) != 60 || !bytes.HasPrefix(b, []byte(want)) || len(bytes.Trim(b[len(want):], "\x00")) != 0 {
			t.Errorf("annotation bytes %q, want %q then zeros", b, want)
		}
		if r.Annotation(0) != nil {
			t.Error("Annotation of an ordinary signal is not nil")
		}
	}
}

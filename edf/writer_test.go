package edf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestAnnotationTAL(t *testing.T) {
	for _, tc := range []struct {
		name string
		a    Annotation
		want string
	}{
		{"time-keeping", Annotation{}, "+0\x14\x14\x00"},
		{"onset only", Annotation{Onset: 1500 * time.Millisecond, Text: "cramp"}, "+1.5\x14cramp\x14\x00"},
		{"negative onset", Annotation{Onset: -2000125 * time.Microsecond, Text: "x"}, "-2.000125\x14x\x14\x00"},
		{"duration", Annotation{Onset: 42 * time.Second, Duration: 42000125 * time.Microsecond, HasDuration: true, Text: "cramp calf_left"},
			"+42\x1542.000125\x14cramp calf_left\x14\x00"},
		{"zero duration", Annotation{Onset: time.Second, HasDuration: true, Text: "plm"}, "+1\x150\x14plm\x14\x00"},
		{"sub-microsecond dropped", Annotation{Onset: time.Second + 999*time.Nanosecond, Text: "a"}, "+1\x14a\x14\x00"},
		{"separators in text", Annotation{Text: "a\x14b\x15c\x00d\ne é"}, "+0\x14a b c d e é\x14\x00"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(appendTAL(nil, &tc.a)); got != tc.want {
				t.Errorf("TAL %q, want %q", got, tc.want)
			}
			if got := tc.a.Size(); got != len(tc.want) {
				t.Errorf("Size() = %d, want %d", got, len(tc.want))
			}
		})
	}
}

// seekBuffer is an in-memory io.WriteSeeker.
type seekBuffer struct {
	b   []byte
	off int
}

func (s *seekBuffer) Write(p []byte) (int, error) {
	if need := s.off + len(p); need > len(s.b) {
		s.b = append(s.b, make([]byte, need-len(s.b))...)
	}
	copy(s.b[s.off:], p)
	s.off += len(p)
	return len(p), nil
}

func (s *seekBuffer) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
		s.off = int(off)
	case io.SeekCurrent:
		s.off += int(off)
	case io.SeekEnd:
		s.off = len(s.b) + int(off)
	}
	return int64(s.off), nil
}

// unseekable is a WriteSeeker that cannot seek, like a pipe.
type unseekable struct{ bytes.Buffer }

func (*unseekable) Seek(int64, int) (int64, error) { return 0, errors.New("illegal seek") }

// readAll reads every record of b: their starts and the TALs after the
// time-keeping one in annotation signal ann, without the final 0 byte.
func readAll(t *testing.T, b []byte, ann int) (*Reader, []time.Duration, []string) {
	t.Helper()
	r, err := NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	var starts []time.Duration
	var tals []string
	dst := r.NewRecord()
	for {
		at, err := r.ReadRecord(dst)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		starts = append(starts, at)
		// The zeros after the last TAL are padding: trimmed, with the
		// last TAL's own terminator.
		raw := string(bytes.TrimRight(r.Annotation(ann), "\x00"))
		keeping, rest, _ := strings.Cut(raw, "\x00")
		if keeping != string(appendSeconds(nil, at, true))+"\x14\x14" {
			t.Errorf("record at %v: time-keeping TAL %q", at, keeping)
		}
		tals = append(tals, rest)
	}
	return r, starts, tals
}

func TestWriterAnnotationsAndClose(t *testing.T) {
	h := testHeader(EDFPlusD, -1)
	h.Signals[2].Samples = 40 // 80 bytes of TALs
	starts := []time.Duration{0, 1500 * time.Millisecond, 7 * time.Second}
	anns := [][]Annotation{
		{{Onset: 100 * time.Millisecond, Duration: 2 * time.Second, HasDuration: true, Text: "cramp calf_left"}},
		nil,
		{{Onset: 7 * time.Second, Text: "plm"}, {Onset: 7500 * time.Millisecond, Text: "artifact"}},
	}
	want := []string{"+0.1\x152\x14cramp calf_left\x14", "", "+7\x14plm\x14\x00+7.5\x14artifact\x14"}
	for _, tc := range []struct {
		name    string
		dst     func() (io.Writer, func() []byte)
		records int // in the header after Close
	}{
		{"seeker", func() (io.Writer, func() []byte) { var s seekBuffer; return &s, func() []byte { return s.b } }, 3},
		{"seeker after other bytes", func() (io.Writer, func() []byte) {
			s := &seekBuffer{b: []byte("prefix"), off: 6}
			return s, func() []byte { return s.b[6:] }
		}, 3},
		{"file", func() (io.Writer, func() []byte) {
			f, err := os.Create(filepath.Join(t.TempDir(), "x.edf"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { f.Close() })
			return f, func() []byte { b, _ := os.ReadFile(f.Name()); return b }
		}, 3},
		{"unseekable", func() (io.Writer, func() []byte) { var u unseekable; return &u, u.Bytes }, -1},
		{"writer", func() (io.Writer, func() []byte) { var b bytes.Buffer; return &b, b.Bytes }, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst, result := tc.dst()
			w, err := NewWriter(dst, h)
			if err != nil {
				t.Fatal(err)
			}
			rec := make([][]float64, len(h.Signals))
			for r, at := range starts {
				for i, s := range h.Signals {
					if !s.Annotation {
						rec[i] = make([]float64, s.Samples)
					}
				}
				if err := w.WriteRecord(at, rec, anns[r]...); err != nil {
					t.Fatal(err)
				}
			}
			if w.Records() != len(starts) {
				t.Errorf("Records() = %d, want %d", w.Records(), len(starts))
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			b := result()
			if got := strings.TrimSpace(string(b[recordsOffset : recordsOffset+8])); got != strconv.Itoa(tc.records) {
				t.Errorf("header says %q records, want %d", got, tc.records)
			}
			r, gotStarts, tals := readAll(t, b, 2)
			if r.Records != tc.records {
				t.Errorf("reader: %d records in the header, want %d", r.Records, tc.records)
			}
			if len(gotStarts) != len(starts) {
				t.Fatalf("read %d records, want %d", len(gotStarts), len(starts))
			}
			for i := range starts {
				if gotStarts[i] != starts[i] || tals[i] != want[i] {
					t.Errorf("record %d: at %v with TALs %q, want %v with %q", i, gotStarts[i], tals[i], starts[i], want[i])
				}
			}
		})
	}
}

func TestWriterAnnotationRoom(t *testing.T) {
	h := Header{Format: EDFPlusC, Start: testStart, Records: -1, Signals: []Signal{{Annotation: true, Samples: 16}}}
	var b seekBuffer
	w, err := NewWriter(&b, h) // annotation-only: a record duration of 0
	if err != nil {
		t.Fatal(err)
	}
	a := Annotation{Onset: time.Hour, Duration: time.Second, HasDuration: true, Text: "ab"} // "+3600\x151\x14ab\x14\x00": 12
	room := w.AnnotationRoom(5 * time.Second)                                               // 32 - len("+5\x14\x14\x00")
	if room != 27 || a.Size() != 12 {
		t.Fatalf("room %d for TALs of %d bytes, want 27 and 12", room, a.Size())
	}
	if err := w.WriteRecord(5*time.Second, [][]float64{nil}, a, a); err != nil {
		t.Fatalf("24 bytes in a room of 27: %v", err)
	}
	if err := w.WriteRecord(5*time.Second, [][]float64{nil}, a, a, a); err == nil {
		t.Fatal("36 bytes in a room of 27 were written")
	}
	if got := w.AnnotationRoom(123456789123456 * time.Microsecond); got != 32-len("+123456789.123456\x14\x14\x00") {
		t.Errorf("room %d after a long time-keeping TAL", got)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	_, starts, tals := readAll(t, b.b, 0)
	if len(starts) != 1 || tals[0]+"\x00" != string(appendTAL(appendTAL(nil, &a), &a)) {
		t.Errorf("read %v %q: the failed record must write nothing", starts, tals)
	}

	tiny, err := NewWriter(io.Discard, Header{Format: EDFPlusC, Signals: []Signal{{Annotation: true, Samples: 4}}})
	if err != nil {
		t.Fatal(err)
	}
	if got := tiny.AnnotationRoom(123456 * time.Second); got != 0 {
		t.Errorf("room %d when the time-keeping TAL alone overflows, want 0", got)
	}
	if err := tiny.WriteRecord(123456*time.Second, [][]float64{nil}); err == nil {
		t.Error("a time-keeping TAL larger than the record was written")
	}

	plain := testHeader(EDF, 1)
	w, err = NewWriter(io.Discard, plain)
	if err != nil {
		t.Fatal(err)
	}
	if w.AnnotationRoom(0) != 0 {
		t.Error("room for annotations in plain EDF")
	}
	rec := [][]float64{make([]float64, 1000), make([]float64, 500)}
	if err := w.WriteRecord(0, rec, Annotation{Text: "x"}); err == nil {
		t.Error("an annotation was written to plain EDF")
	}
}

func TestWriterErrors(t *testing.T) {
	ok := testHeader(EDFPlusD, -1)
	for _, tc := range []struct {
		name string
		edit func(h *Header)
	}{
		{"no signals", func(h *Header) { h.Signals = nil }},
		{"zero duration with samples", func(h *Header) { h.RecordDuration = 0 }},
		{"negative duration", func(h *Header) { h.RecordDuration = -time.Second }},
		{"EDF+ without annotations", func(h *Header) { h.Signals = h.Signals[:2] }},
		{"EDF with annotations", func(h *Header) { h.Format = EDF }},
		{"equal physical range", func(h *Header) { h.Signals[0].PhysMax = h.Signals[0].PhysMin }},
		{"digital range", func(h *Header) { h.Signals[1].DigMax = 40000 }},
		{"no samples", func(h *Header) { h.Signals[2].Samples = 0 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := ok
			h.Signals = append([]Signal(nil), ok.Signals...)
			tc.edit(&h)
			if _, err := NewWriter(io.Discard, h); err == nil {
				t.Error("no error")
			}
		})
	}
	w, err := NewWriter(io.Discard, ok)
	if err != nil {
		t.Fatal(err)
	}
	rec := [][]float64{make([]float64, 1000), make([]float64, 500), nil}
	for _, tc := range []struct {
		name string
		rec  [][]float64
		anns []Annotation
	}{
		{"signals", rec[:2], nil},
		{"samples", [][]float64{rec[0], rec[0], nil}, nil},
		{"negative annotation duration", rec, []Annotation{{Duration: -time.Second, HasDuration: true}}},
		{"overfull", rec, []Annotation{{Text: strings.Repeat("x", 60)}}},
	} {
		if err := w.WriteRecord(0, tc.rec, tc.anns...); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
	if w.Records() != 0 {
		t.Errorf("%d records written by failed calls", w.Records())
	}
}

// TestWriterSecondAnnotationSignal: only the first annotation signal
// keeps time; a second one is left empty.
func TestWriterSecondAnnotationSignal(t *testing.T) {
	h := testHeader(EDFPlusC, -1)
	h.Signals = append(h.Signals, Signal{Annotation: true, Samples: 8})
	var b bytes.Buffer
	w, err := NewWriter(&b, h)
	if err != nil {
		t.Fatal(err)
	}
	rec := [][]float64{make([]float64, 1000), make([]float64, 500), nil, nil}
	if err := w.WriteRecord(time.Second, rec, Annotation{Onset: time.Second, Text: "x"}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r, _, tals := readAll(t, b.Bytes(), 2)
	if tals[0] != "+1\x14x\x14" || len(bytes.Trim(r.Annotation(3), "\x00")) != 0 {
		t.Errorf("first signal's TALs %q, second signal %q", tals[0], r.Annotation(3))
	}
}

func TestWriteRecordAllocs(t *testing.T) {
	h := testHeader(EDFPlusD, -1)
	w, err := NewWriter(io.Discard, h)
	if err != nil {
		t.Fatal(err)
	}
	rec := [][]float64{make([]float64, 1000), make([]float64, 500), nil}
	anns := []Annotation{{Onset: time.Second, Duration: time.Second, HasDuration: true, Text: "cramp é"}}
	if n := testing.AllocsPerRun(100, func() {
		if err := w.WriteRecord(time.Second, rec, anns...); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("%v allocations per record", n)
	}
}

func TestWriterDigital(t *testing.T) {
	h := Header{Format: EDF, Start: testStart, Records: 1, RecordDuration: time.Second,
		Signals: []Signal{{Label: "x", PhysMin: -1, PhysMax: 1, DigMin: -100, DigMax: 100, Samples: 8}}}
	in := []float64{-5, 5, math.NaN(), math.Inf(1), math.Inf(-1), 0.5, 0, 0.0149}
	want := []int16{-100, 100, -100, 100, -100, 50, 0, 1}
	var b bytes.Buffer
	w, err := NewWriter(&b, h)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteRecord(0, [][]float64{in}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	data := b.Bytes()[512:]
	for i, v := range want {
		if got := int16(binary.LittleEndian.Uint16(data[2*i:])); got != v {
			t.Errorf("%v written as %d, want %d", in[i], got, v)
		}
	}
}

func BenchmarkWriteRecord(b *testing.B) {
	h := testHeader(EDFPlusD, -1)
	w, err := NewWriter(io.Discard, h)
	if err != nil {
		b.Fatal(err)
	}
	rec := [][]float64{make([]float64, 1000), make([]float64, 500), nil}
	for i, s := range rec[:2] {
		for j := range s {
			s[j] = sample(i, 0, j)
		}
	}
	anns := []Annotation{{Onset: time.Second, Duration: time.Second, HasDuration: true, Text: "cramp calf_left"}}
	b.SetBytes(int64(2 * (1000 + 500 + 30)))
	for b.Loop() {
		if err := w.WriteRecord(time.Second, rec, anns...); err != nil {
			b.Fatal(err)
		}
	}
}

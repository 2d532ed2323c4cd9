package edf

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Annotation is one EDF+ annotation, written as a TAL (time-stamped
// annotation list) in a data record's annotation signal.
type Annotation struct {
	Onset time.Duration // from the start of the file; may be negative
	// Duration is written only when HasDuration is true; it must not be
	// negative.
	Duration    time.Duration
	HasDuration bool
	// Text is the annotation. Control characters, which would end the
	// TAL, are written as spaces.
	Text string
}

// Size returns the number of bytes a's TAL takes in a record, to decide
// with Writer.AnnotationRoom which record it goes in.
func (a Annotation) Size() int {
	var b [128]byte
	return len(appendTAL(b[:0], &a))
}

// Writer writes an EDF or EDF+ file record by record, to export or
// convert a recording or to build test files. The header's Records may
// be -1 (unknown, as the specification allows for a recording in
// progress); Close then patches the number written when the destination
// can seek.
type Writer struct {
	h    Header
	bw   *bufio.Writer
	ws   io.WriteSeeker // nil when the destination cannot seek
	base int64          // offset of the header in ws
	rec  []byte
	offs []int
	ann  int // the signal that holds the time-keeping TAL, -1 for EDF
	tal  []byte
	n    int // records written
}

// NewWriter writes h's header to w. For EDF+ (Format EDFPlusC or
// EDFPlusD) h.Signals must include an annotation signal (Annotation
// true) with room for the time-keeping annotation; its label and ranges
// are set by the writer. The record duration may be 0 only when all
// signals are annotation signals (an annotation-only EDF+ file).
//
// When w is an io.WriteSeeker whose position can be read, the header is
// written there and Close patches the number of records into it.
func NewWriter(w io.Writer, h Header) (*Writer, error) {
	ew := &Writer{h: h, bw: bufio.NewWriterSize(w, 64<<10), ann: -1}
	ew.h.Signals = append([]Signal(nil), h.Signals...)
	if len(ew.h.Signals) == 0 || len(ew.h.Signals) > maxSignals {
		return nil, fmt.Errorf("edf: %d signals", len(ew.h.Signals))
	}
	anns, size := 0, 0
	for i := range ew.h.Signals {
		s := &ew.h.Signals[i]
		if s.Samples < 1 {
			return nil, fmt.Errorf("edf: signal %q: %d samples per record", s.Label, s.Samples)
		}
		ew.offs = append(ew.offs, size)
		size += 2 * s.Samples
		if s.Annotation {
			if anns == 0 {
				ew.ann = i
			}
			anns++
			s.Label, s.PhysMin, s.PhysMax, s.DigMin, s.DigMax = AnnotationLabel, -1, 1, -32768, 32767
			continue
		}
		if s.PhysMax == s.PhysMin || s.DigMax <= s.DigMin || s.DigMin < -32768 || s.DigMax > 32767 {
			return nil, fmt.Errorf("edf: signal %q: bad ranges", s.Label)
		}
	}
	if h.RecordDuration < 0 || (h.RecordDuration == 0 && anns < len(ew.h.Signals)) {
		return nil, errors.New("edf: record duration must be positive (0 only for annotation-only files)")
	}
	if plus := h.Format == EDFPlusC || h.Format == EDFPlusD; plus != (anns > 0) {
		return nil, fmt.Errorf("edf: %v with %d annotation signals", h.Format, anns)
	}
	if size > maxRecordBytes {
		return nil, fmt.Errorf("edf: data records of more than %d bytes", maxRecordBytes)
	}
	if ws, ok := w.(io.WriteSeeker); ok {
		// A pipe or terminal is a WriteSeeker that cannot seek: it keeps
		// the header's record count.
		if off, err := ws.Seek(0, io.SeekCurrent); err == nil {
			ew.ws, ew.base = ws, off
		}
	}
	ew.rec = make([]byte, size)
	if _, err := ew.bw.Write(ew.encodeHeader()); err != nil {
		return nil, fmt.Errorf("edf: %w", err)
	}
	return ew, nil
}

// field appends s left-aligned in n bytes, padded with spaces; bytes
// outside printable ASCII become '_'.
func field(b *bytes.Buffer, s string, n int) {
	for i := range n {
		c := byte(' ')
		if i < len(s) {
			c = s[i]
			if c < 32 || c > 126 {
				c = '_'
			}
		}
		b.WriteByte(c)
	}
}

// headerNumber formats v to fit an 8-byte field.
func headerNumber(v float64) string {
	for prec := 6; prec >= 0; prec-- {
		s := strconv.FormatFloat(v, 'f', prec, 64)
		if strings.Contains(s, ".") {
			s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
		}
		if len(s) <= 8 {
			return s
		}
	}
	return strconv.FormatFloat(v, 'f', 0, 64)
}

// recordsOffset is where the header's number of data records starts.
const recordsOffset = 236

func (ew *Writer) encodeHeader() []byte {
	h := &ew.h
	var b bytes.Buffer
	start := h.Start.UTC()
	field(&b, "0", 8)
	field(&b, h.Patient, 80)
	field(&b, h.Recording, 80)
	field(&b, start.Format("02.01.06"), 8)
	field(&b, start.Format("15.04.05"), 8)
	field(&b, strconv.Itoa(256*(len(h.Signals)+1)), 8)
	reserved := ""
	if h.Format == EDFPlusC || h.Format == EDFPlusD {
		reserved = h.Format.String()
	}
	field(&b, reserved, 44)
	field(&b, strconv.Itoa(h.Records), 8)
	field(&b, headerNumber(h.RecordDuration.Seconds()), 8)
	field(&b, strconv.Itoa(len(h.Signals)), 4)
	for _, col := range []struct {
		n int
		f func(s *Signal) string
	}{
		{16, func(s *Signal) string { return s.Label }},
		{80, func(s *Signal) string { return s.Transducer }},
		{8, func(s *Signal) string { return s.Dimension }},
		{8, func(s *Signal) string { return headerNumber(s.PhysMin) }},
		{8, func(s *Signal) string { return headerNumber(s.PhysMax) }},
		{8, func(s *Signal) string { return strconv.Itoa(s.DigMin) }},
		{8, func(s *Signal) string { return strconv.Itoa(s.DigMax) }},
		{80, func(s *Signal) string { return s.Prefilter }},
		{8, func(s *Signal) string { return strconv.Itoa(s.Samples) }},
		{32, func(*Signal) string { return "" }},
	} {
		for i := range h.Signals {
			field(&b, col.f(&h.Signals[i]), col.n)
		}
	}
	return b.Bytes()
}

// AnnotationRoom returns how many bytes of TALs (see Annotation.Size) fit
// in a record starting at start, after its time-keeping TAL; 0 for a
// plain EDF file.
func (ew *Writer) AnnotationRoom(start time.Duration) int {
	if ew.ann < 0 {
		return 0
	}
	keeping := Annotation{Onset: start}
	return max(2*ew.h.Signals[ew.ann].Samples-keeping.Size(), 0)
}

// WriteRecord writes one data record: samples has one entry per signal
// (physical values, Samples of them; nil for annotation signals), start
// is the record's onset from Start, written as the time-keeping
// annotation of an EDF+ file, followed by anns in the same (first)
// annotation signal. Values outside the physical range are clipped, NaN
// is written as the digital minimum. It fails, writing nothing, if the
// annotations do not fit (see AnnotationRoom).
func (ew *Writer) WriteRecord(start time.Duration, samples [][]float64, anns ...Annotation) error {
	if len(samples) != len(ew.h.Signals) {
		return fmt.Errorf("edf: %d signals in a record, want %d", len(samples), len(ew.h.Signals))
	}
	if ew.ann < 0 && len(anns) > 0 {
		return fmt.Errorf("edf: %d annotations in a plain EDF file", len(anns))
	}
	for i := range ew.h.Signals {
		s := &ew.h.Signals[i]
		out := ew.rec[ew.offs[i] : ew.offs[i]+2*s.Samples]
		if s.Annotation {
			clear(out)
			if i != ew.ann {
				continue // only the first annotation signal keeps time
			}
			ew.tal = appendTAL(ew.tal[:0], &Annotation{Onset: start})
			for j := range anns {
				if anns[j].HasDuration && anns[j].Duration < 0 {
					return fmt.Errorf("edf: annotation %q: negative duration %v", anns[j].Text, anns[j].Duration)
				}
				ew.tal = appendTAL(ew.tal, &anns[j])
			}
			if len(ew.tal) > len(out) {
				return fmt.Errorf("edf: %d bytes of annotations do not fit in a record's %d", len(ew.tal), len(out))
			}
			copy(out, ew.tal)
			continue
		}
		if len(samples[i]) != s.Samples {
			return fmt.Errorf("edf: signal %q: %d samples in a record, want %d", s.Label, len(samples[i]), s.Samples)
		}
		// (v-PhysMin)*digital span/physical span, in that order, rounds
		// once less than scaling by a precomputed ratio.
		dspan, pspan := float64(s.DigMax-s.DigMin), s.PhysMax-s.PhysMin
		lo, hi := float64(s.DigMin), float64(s.DigMax)
		for j, v := range samples[i] {
			d := math.Round(lo + (v-s.PhysMin)*dspan/pspan)
			d = min(max(d, lo), hi) // NaN stays NaN: caught below
			if d != d {
				d = lo
			}
			binary.LittleEndian.PutUint16(out[2*j:], uint16(int16(d)))
		}
	}
	if _, err := ew.bw.Write(ew.rec); err != nil {
		return fmt.Errorf("edf: %w", err)
	}
	ew.n++
	return nil
}

// appendTAL appends a's TAL: "+onset[\x15duration]\x14text\x14\x00". The
// time-keeping TAL is the one with no duration and no text.
func appendTAL(b []byte, a *Annotation) []byte {
	b = appendSeconds(b, a.Onset, true)
	if a.HasDuration {
		b = append(b, 0x15)
		b = appendSeconds(b, a.Duration, false)
	}
	b = append(b, 0x14)
	for _, r := range a.Text {
		if r < 32 {
			r = ' ' // 0x14, 0x15 and 0 would end the TAL
		}
		b = utf8.AppendRune(b, r)
	}
	return append(b, 0x14, 0)
}

// appendSeconds appends d in seconds with up to microsecond precision and
// no trailing zeros; sign asks for a '+' before a non-negative value, as
// onsets have.
func appendSeconds(b []byte, d time.Duration, sign bool) []byte {
	us := d.Microseconds()
	if us < 0 {
		b = append(b, '-')
		us = -us
	} else if sign {
		b = append(b, '+')
	}
	b = strconv.AppendInt(b, us/1e6, 10)
	if frac := us % 1e6; frac != 0 {
		var digits [7]byte
		s := strconv.AppendInt(digits[:0], 1e6+frac, 10)[1:]
		b = append(b, '.')
		b = append(b, bytes.TrimRight(s, "0")...)
	}
	return b
}

// Records returns the number of data records written so far.
func (ew *Writer) Records() int { return ew.n }

// Flush writes buffered records to the underlying writer.
func (ew *Writer) Flush() error {
	if err := ew.bw.Flush(); err != nil {
		return fmt.Errorf("edf: %w", err)
	}
	return nil
}

// Close flushes the records and, when the destination can seek, patches
// the number of records written into the header and returns to the end
// of the file. It does not close the destination.
func (ew *Writer) Close() error {
	if err := ew.Flush(); err != nil {
		return err
	}
	if ew.ws == nil {
		return nil
	}
	var f bytes.Buffer
	field(&f, strconv.Itoa(ew.n), 8)
	if _, err := ew.ws.Seek(ew.base+recordsOffset, io.SeekStart); err != nil {
		return fmt.Errorf("edf: %w", err)
	}
	if _, err := ew.ws.Write(f.Bytes()); err != nil {
		return fmt.Errorf("edf: %w", err)
	}
	if _, err := ew.ws.Seek(0, io.SeekEnd); err != nil {
		return fmt.Errorf("edf: %w", err)
	}
	return nil
}

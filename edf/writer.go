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
)

// Writer writes an EDF or EDF+ file record by record, to convert a
// recording or to build test files. It does not seek: the number of
// records is the header's Records, -1 when unknown, as the specification
// allows for a recording in progress.
type Writer struct {
	h    Header
	bw   *bufio.Writer
	rec  []byte
	offs []int
	tal  []byte
}

// NewWriter writes h's header to w. For EDF+ (Format EDFPlusC or
// EDFPlusD) h.Signals must include one annotation signal (Annotation
// true, label AnnotationLabel) with room for the time-keeping annotation;
// its ranges are set by the writer.
func NewWriter(w io.Writer, h Header) (*Writer, error) {
	ew := &Writer{h: h, bw: bufio.NewWriterSize(w, 64<<10)}
	ew.h.Signals = append([]Signal(nil), h.Signals...)
	if len(ew.h.Signals) == 0 || len(ew.h.Signals) > maxSignals {
		return nil, fmt.Errorf("edf: %d signals", len(ew.h.Signals))
	}
	if h.RecordDuration <= 0 {
		return nil, errors.New("edf: record duration must be positive")
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
			anns++
			s.Label, s.PhysMin, s.PhysMax, s.DigMin, s.DigMax = AnnotationLabel, -1, 1, -32768, 32767
			continue
		}
		if s.PhysMax == s.PhysMin || s.DigMax <= s.DigMin || s.DigMin < -32768 || s.DigMax > 32767 {
			return nil, fmt.Errorf("edf: signal %q: bad ranges", s.Label)
		}
	}
	if plus := h.Format == EDFPlusC || h.Format == EDFPlusD; plus != (anns > 0) {
		return nil, fmt.Errorf("edf: %v with %d annotation signals", h.Format, anns)
	}
	if size > maxRecordBytes {
		return nil, fmt.Errorf("edf: data records of more than %d bytes", maxRecordBytes)
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

// WriteRecord writes one data record: samples has one entry per signal
// (physical values, Samples of them; nil for annotation signals), start
// is the record's onset from Start, written as the time-keeping
// annotation of an EDF+ file. Values outside the physical range are
// clipped.
func (ew *Writer) WriteRecord(start time.Duration, samples [][]float64) error {
	if len(samples) != len(ew.h.Signals) {
		return fmt.Errorf("edf: %d signals in a record, want %d", len(samples), len(ew.h.Signals))
	}
	for i := range ew.h.Signals {
		s := &ew.h.Signals[i]
		out := ew.rec[ew.offs[i] : ew.offs[i]+2*s.Samples]
		if s.Annotation {
			clear(out)
			ew.tal = appendOnset(ew.tal[:0], start)
			ew.tal = append(ew.tal, 0x14, 0x14, 0)
			if len(ew.tal) > len(out) {
				return fmt.Errorf("edf: time-keeping annotation of %d bytes does not fit in %d", len(ew.tal), len(out))
			}
			copy(out, ew.tal)
			continue
		}
		if len(samples[i]) != s.Samples {
			return fmt.Errorf("edf: signal %q: %d samples in a record, want %d", s.Label, len(samples[i]), s.Samples)
		}
		k := float64(s.DigMax-s.DigMin) / (s.PhysMax - s.PhysMin)
		lo, hi := float64(s.DigMin), float64(s.DigMax)
		for j, v := range samples[i] {
			d := math.Round(lo + (v-s.PhysMin)*k)
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
	return nil
}

// appendOnset appends "+seconds" with up to microsecond precision.
func appendOnset(b []byte, d time.Duration) []byte {
	us := d.Microseconds()
	if us < 0 {
		b = append(b, '-')
		us = -us
	} else {
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

// Flush writes buffered records to the underlying writer.
func (ew *Writer) Flush() error {
	if err := ew.bw.Flush(); err != nil {
		return fmt.Errorf("edf: %w", err)
	}
	return nil
}

package export

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

	"github.com/crampwatch/crampwatch/edf"
)

// EDF+ (European Data Format, https://www.edfplus.info/specs/edfplus.html)
// is what sleep-research tools (EDFbrowser, MNE, Polyman) open. An EDF+
// file is a 256-byte header, 256 bytes per signal, then data records; each
// record holds a fixed number of 16-bit samples per signal. Annotations
// live in a signal labelled "EDF Annotations" as TALs (time-stamped
// annotation lists): "+onset\x15duration\x14text\x14\x00", onset in seconds
// from the start of the file. The first TAL of every record is its
// time-keeping TAL, "+start\x14\x14\x00".

// edfAnnotationLabel labels the annotation signal.
const edfAnnotationLabel = "EDF Annotations"

// edfSignal describes one ordinary signal.
type edfSignal struct {
	Label      string // up to 16 characters
	Transducer string
	Dimension  string // physical unit, up to 8 characters, e.g. "uV"
	PhysMin    float64
	PhysMax    float64
	DigMin     int
	DigMax     int
	Samples    int // samples per data record
}

// digital converts a physical value to the signal's digital value,
// clipping to the digital range.
func (s *edfSignal) digital(v float64) int16 {
	d := math.Round(float64(s.DigMin) + (v-s.PhysMin)*float64(s.DigMax-s.DigMin)/(s.PhysMax-s.PhysMin))
	return int16(min(max(d, float64(s.DigMin)), float64(s.DigMax)))
}

// edfHeader is what an EDF+ file says about itself.
type edfHeader struct {
	Patient   string // EDF+ patient field: "code sex birthdate name"
	Recording string // EDF+ recording field: "Startdate dd-MMM-yyyy admin technician equipment"
	Start     time.Time
	// Continuous is true for EDF+C (records follow each other without
	// gaps), false for EDF+D (each record says when it starts).
	Continuous bool
	Records    int           // number of data records
	RecordDur  time.Duration // duration of one record
	Signals    []edfSignal   // ordinary signals
	AnnSamples int           // samples (2 bytes each) of the annotation signal per record
}

// edfAnnotation is one annotation: an onset from the start of the file,
// a duration (negative: none) and a text.
type edfAnnotation struct {
	Onset    time.Duration
	Duration time.Duration
	Text     string
}

// edfWriter writes an EDF+ file record by record. The number of records is
// unknown until the end, so the header says -1 ("still being recorded", as
// the specification allows) until Close seeks back and patches it.
type edfWriter struct {
	w    io.WriteSeeker
	bw   *bufio.Writer
	h    edfHeader
	rec  []byte // one data record
	nrec int
}

// newEDFWriter writes the header of h (with an unknown number of records).
func newEDFWriter(w io.WriteSeeker, h edfHeader) (*edfWriter, error) {
	if h.AnnSamples <= 0 {
		return nil, errors.New("edf: no room for annotations")
	}
	for _, s := range h.Signals {
		if s.PhysMax <= s.PhysMin || s.DigMax <= s.DigMin || s.Samples <= 0 {
			return nil, fmt.Errorf("edf: signal %q: bad ranges", s.Label)
		}
	}
	ew := &edfWriter{w: w, bw: bufio.NewWriterSize(w, 64<<10), h: h}
	size := 2 * h.AnnSamples
	for _, s := range h.Signals {
		size += 2 * s.Samples
	}
	ew.rec = make([]byte, size)
	if _, err := ew.bw.Write(encodeEDFHeader(&h, -1)); err != nil {
		return nil, fmt.Errorf("edf: %w", err)
	}
	return ew, nil
}

// edfField writes s left-aligned in a field of n bytes, padded with spaces.
// EDF headers are printable US-ASCII: anything else becomes '_'.
func edfField(b *bytes.Buffer, s string, n int) {
	out := make([]byte, n)
	for i := range out {
		out[i] = ' '
	}
	j := 0
	for i := 0; i < len(s) && j < n; i++ {
		c := s[i]
		if c < 32 || c > 126 {
			c = '_'
		}
		out[j] = c
		j++
	}
	b.Write(out)
}

// edfNumber formats a number for an 8-byte header field: as many decimals
// as fit.
func edfNumber(v float64) string {
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

func encodeEDFHeader(h *edfHeader, records int) []byte {
	ns := len(h.Signals) + 1
	var b bytes.Buffer
	start := h.Start.UTC()
	edfField(&b, "0", 8)
	edfField(&b, h.Patient, 80)
	edfField(&b, h.Recording, 80)
	edfField(&b, start.Format("02.01.06"), 8)
	edfField(&b, start.Format("15.04.05"), 8)
	edfField(&b, strconv.Itoa(256*(ns+1)), 8)
	if h.Continuous {
		edfField(&b, "EDF+C", 44)
	} else {
		edfField(&b, "EDF+D", 44)
	}
	edfField(&b, strconv.Itoa(records), 8)
	edfField(&b, edfNumber(h.RecordDur.Seconds()), 8)
	edfField(&b, strconv.Itoa(ns), 4)
	sig := func(f func(s *edfSignal, ann bool) string, n int) {
		for i := range h.Signals {
			edfField(&b, f(&h.Signals[i], false), n)
		}
		edfField(&b, f(nil, true), n)
	}
	sig(func(s *edfSignal, ann bool) string {
		if ann {
			return edfAnnotationLabel
		}
		return s.Label
	}, 16)
	sig(func(s *edfSignal, ann bool) string {
		if ann {
			return ""
		}
		return s.Transducer
	}, 80)
	sig(func(s *edfSignal, ann bool) string {
		if ann {
			return ""
		}
		return s.Dimension
	}, 8)
	sig(func(s *edfSignal, ann bool) string {
		if ann {
			return "-1"
		}
		return edfNumber(s.PhysMin)
	}, 8)
	sig(func(s *edfSignal, ann bool) string {
		if ann {
			return "1"
		}
		return edfNumber(s.PhysMax)
	}, 8)
	sig(func(s *edfSignal, ann bool) string {
		if ann {
			return "-32768"
		}
		return strconv.Itoa(s.DigMin)
	}, 8)
	sig(func(s *edfSignal, ann bool) string {
		if ann {
			return "32767"
		}
		return strconv.Itoa(s.DigMax)
	}, 8)
	sig(func(*edfSignal, bool) string { return "" }, 80)
	sig(func(s *edfSignal, ann bool) string {
		if ann {
			return strconv.Itoa(h.AnnSamples)
		}
		return strconv.Itoa(s.Samples)
	}, 8)
	sig(func(*edfSignal, bool) string { return "" }, 32)
	return b.Bytes()
}

// appendEDFSeconds appends d in seconds with up to microsecond precision,
// without trailing zeros, as TAL onsets and durations are written.
func appendEDFSeconds(b []byte, d time.Duration) []byte {
	us := d.Microseconds()
	if us < 0 {
		b = append(b, '-')
		us = -us
	}
	b = strconv.AppendInt(b, us/1e6, 10)
	if frac := us % 1e6; frac != 0 {
		s := strconv.AppendInt(nil, 1e6+frac, 10)[1:] // six digits
		b = append(b, '.')
		b = append(b, bytes.TrimRight(s, "0")...)
	}
	return b
}

// appendTAL appends one TAL.
func appendTAL(b []byte, a edfAnnotation) []byte {
	if a.Onset >= 0 {
		b = append(b, '+')
	}
	b = appendEDFSeconds(b, a.Onset)
	if a.Duration >= 0 {
		b = append(b, 0x15)
		b = appendEDFSeconds(b, a.Duration)
	}
	b = append(b, 0x14)
	b = append(b, edfText(a.Text)...)
	return append(b, 0x14, 0)
}

// edfText keeps annotation texts free of the TAL separators.
func edfText(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 32 {
			return ' '
		}
		return r
	}, s)
}

// writeRecord writes one data record: the record's start (for its
// time-keeping TAL), samples per ordinary signal (physical values,
// len(samples[i]) == Signals[i].Samples), and the TALs that go in it.
// It fails if the TALs do not fit in the annotation signal.
func (ew *edfWriter) writeRecord(start time.Duration, samples [][]float64, tals []edfAnnotation) error {
	if len(samples) != len(ew.h.Signals) {
		return fmt.Errorf("edf: %d signals in a record, want %d", len(samples), len(ew.h.Signals))
	}
	off := 0
	for i := range ew.h.Signals {
		s := &ew.h.Signals[i]
		if len(samples[i]) != s.Samples {
			return fmt.Errorf("edf: signal %q: %d samples in a record, want %d", s.Label, len(samples[i]), s.Samples)
		}
		for _, v := range samples[i] {
			binary.LittleEndian.PutUint16(ew.rec[off:], uint16(s.digital(v)))
			off += 2
		}
	}
	ann := ew.rec[off:off]
	ann = appendTAL(ann, edfAnnotation{Onset: start, Duration: -1})
	for _, a := range tals {
		ann = appendTAL(ann, a)
	}
	if len(ann) > 2*ew.h.AnnSamples {
		return fmt.Errorf("edf: %d bytes of annotations do not fit in a record (%d)", len(ann), 2*ew.h.AnnSamples)
	}
	clear(ew.rec[off+len(ann):])
	if _, err := ew.bw.Write(ew.rec); err != nil {
		return fmt.Errorf("edf: %w", err)
	}
	ew.nrec++
	return nil
}

// talLen returns the length of a's TAL.
func talLen(a edfAnnotation) int {
	var b [256]byte
	return len(appendTAL(b[:0], a))
}

// fits reports whether TALs of n bytes fit in a record starting at start,
// after its time-keeping TAL.
func (ew *edfWriter) fits(start time.Duration, n int) bool {
	return talLen(edfAnnotation{Onset: start, Duration: -1})+n <= 2*ew.h.AnnSamples
}

// Close flushes the records and patches the number of records into the
// header. It does not close the underlying file.
func (ew *edfWriter) Close() error {
	if err := ew.bw.Flush(); err != nil {
		return fmt.Errorf("edf: %w", err)
	}
	// The field "number of data records" starts at byte 236.
	var f bytes.Buffer
	edfField(&f, strconv.Itoa(ew.nrec), 8)
	if _, err := ew.w.Seek(236, io.SeekStart); err != nil {
		return fmt.Errorf("edf: %w", err)
	}
	if _, err := ew.w.Write(f.Bytes()); err != nil {
		return fmt.Errorf("edf: %w", err)
	}
	_, err := ew.w.Seek(0, io.SeekEnd)
	return err
}

// EDFFile is an EDF+ file read by ReadEDF.
type EDFFile struct {
	Patient    string
	Recording  string
	Start      time.Time // UTC, to the second, as the header holds it
	Continuous bool
	RecordDur  time.Duration
	Signals    []EDFSignal
	// Records holds the start of every data record, from the time-keeping
	// TALs, relative to Start.
	Records     []time.Duration
	Annotations []EDFAnnotation
}

// EDFSignal is one ordinary signal: its header and its samples in physical
// units, record after record.
type EDFSignal struct {
	Label     string
	Dimension string
	PhysMin   float64
	PhysMax   float64
	DigMin    int
	DigMax    int
	Samples   int // per record
	Values    []float64
}

// EDFAnnotation is one annotation (not a time-keeping TAL). HasDuration is
// false when the TAL gave none.
type EDFAnnotation struct {
	Onset       time.Duration
	Duration    time.Duration
	HasDuration bool
	Text        string
}

// ReadEDF reads an EDF+ file: header, signals and annotations. It checks
// the structure as strictly as the specification asks of writers, so that
// the round-trip tests catch a malformed file, and never panics on bad
// input. The header and records are parsed by package edf; ReadEDF adds
// the annotations and the checks.
func ReadEDF(r io.Reader) (*EDFFile, error) {
	cr := &countingReader{r: r}
	er, err := edf.NewReader(cr)
	if err != nil {
		return nil, err
	}
	if er.Format != edf.EDFPlusC && er.Format != edf.EDFPlusD {
		return nil, errors.New("edf: reserved field: not EDF+C or EDF+D")
	}
	if er.Records < 0 || er.Records > 1<<24 {
		return nil, fmt.Errorf("edf: %d data records", er.Records)
	}
	f := &EDFFile{Patient: er.Patient, Recording: er.Recording, Start: er.Start,
		Continuous: er.Format == edf.EDFPlusC, RecordDur: er.RecordDuration}
	annIdx, recBytes := -1, 0
	for i, s := range er.Signals {
		recBytes += 2 * s.Samples
		if s.Annotation {
			if annIdx < 0 {
				annIdx = i
			}
			continue
		}
		f.Signals = append(f.Signals, EDFSignal{Label: s.Label, Dimension: s.Dimension, PhysMin: s.PhysMin, PhysMax: s.PhysMax,
			DigMin: s.DigMin, DigMax: s.DigMax, Samples: s.Samples,
			// Preallocate what the header announces, within reason: a
			// hostile header must not make us allocate gigabytes.
			Values: make([]float64, 0, min(er.Records*s.Samples, 1<<20))})
	}
	if annIdx < 0 {
		return nil, errors.New("edf: no EDF Annotations signal: not EDF+")
	}
	dst := er.NewRecord()
	for rec := 0; ; rec++ {
		if _, err := er.ReadRecord(dst); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, err
		}
		k := 0
		for i, s := range er.Signals {
			if !s.Annotation {
				f.Signals[k].Values = append(f.Signals[k].Values, dst[i]...)
				k++
				continue
			}
			tals, err := parseTALs(er.Annotation(i))
			if err != nil {
				return nil, fmt.Errorf("edf: record %d: %w", rec, err)
			}
			if i == annIdx {
				if len(tals) == 0 || tals[0].Text != "" || tals[0].HasDuration {
					return nil, fmt.Errorf("edf: record %d: no time-keeping TAL first", rec)
				}
				f.Records = append(f.Records, tals[0].Onset)
				tals = tals[1:]
			}
			f.Annotations = append(f.Annotations, tals...)
		}
	}
	// The reader stops at the records the header announces: anything
	// after them is a malformed file.
	if _, err := io.Copy(io.Discard, cr); err != nil {
		return nil, fmt.Errorf("edf: %w", err)
	}
	if want := int64(256*(len(er.Signals)+1)) + int64(er.Records)*int64(recBytes); cr.n != want {
		return nil, errors.New("edf: data after the last record")
	}
	if f.Continuous {
		for i, at := range f.Records {
			if want := time.Duration(i) * f.RecordDur; at-f.Records[0] != want {
				return nil, fmt.Errorf("edf: EDF+C record %d starts at %v, want %v", i, at-f.Records[0], want)
			}
		}
	}
	return f, nil
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// parseTALs parses the TALs of one record's annotation signal; the unused
// rest of the signal is zero bytes.
func parseTALs(b []byte) ([]EDFAnnotation, error) {
	var out []EDFAnnotation
	for len(b) > 0 && b[0] != 0 {
		end := bytes.IndexByte(b, 0)
		if end < 0 {
			return nil, errors.New("TAL not terminated")
		}
		tal := b[:end]
		b = b[end+1:]
		if len(tal) == 0 || tal[len(tal)-1] != 0x14 {
			return nil, fmt.Errorf("TAL %q does not end with 0x14", tal)
		}
		parts := bytes.Split(tal[:len(tal)-1], []byte{0x14})
		timing := parts[0]
		var a EDFAnnotation
		onset, durS, hasDur := bytes.Cut(timing, []byte{0x15})
		if len(onset) < 2 || (onset[0] != '+' && onset[0] != '-') {
			return nil, fmt.Errorf("TAL onset %q", onset)
		}
		o, err := parseEDFSeconds(onset)
		if err != nil {
			return nil, err
		}
		a.Onset = o
		if hasDur {
			d, err := parseEDFSeconds(durS)
			if err != nil {
				return nil, err
			}
			a.Duration, a.HasDuration = d, true
		}
		texts := parts[1:]
		if len(texts) == 0 {
			return nil, fmt.Errorf("TAL %q has no annotation field", tal)
		}
		if len(texts) == 1 && len(texts[0]) == 0 {
			out = append(out, a) // time-keeping TAL (or an empty annotation)
			continue
		}
		for _, t := range texts {
			if len(t) == 0 {
				continue
			}
			a.Text = string(t)
			out = append(out, a)
		}
	}
	for _, c := range b {
		if c != 0 {
			return nil, errors.New("bytes after the TALs are not zero")
		}
	}
	return out, nil
}

// parseEDFSeconds parses "+12.5", "-3" or "42.000125" into a duration,
// exactly to the microsecond.
func parseEDFSeconds(s []byte) (time.Duration, error) {
	str := string(s)
	neg := false
	switch {
	case strings.HasPrefix(str, "+"):
		str = str[1:]
	case strings.HasPrefix(str, "-"):
		neg, str = true, str[1:]
	}
	whole, frac, _ := strings.Cut(str, ".")
	if whole == "" || len(frac) > 9 || strings.Trim(whole+frac, "0123456789") != "" || len(whole) > 12 {
		return 0, fmt.Errorf("TAL time %q", s)
	}
	sec, _ := strconv.ParseInt(whole, 10, 64)
	var ns int64
	if frac != "" {
		ns, _ = strconv.ParseInt((frac + "000000000")[:9], 10, 64)
	}
	d := time.Duration(sec)*time.Second + time.Duration(ns)
	if neg {
		d = -d
	}
	return d, nil
}

// Package edf reads and writes EDF and EDF+ files, the European Data
// Format that sleep labs and polysomnography tools use for overnight
// recordings (https://www.edfplus.info). The writer serves the research
// export, conversions and tests.
//
// The reader streams: it parses the header, then hands out one data record
// at a time into memory the caller owns, so an 8-hour recording is read
// with memory that does not depend on its length. It supports plain EDF,
// EDF+C (continuous) and EDF+D (discontinuous: each record's start comes
// from its time-keeping annotation), and a header that says -1 records
// (still being recorded: read to the end of the file).
package edf

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
)

// AnnotationLabel is the label of an EDF+ annotation signal.
const AnnotationLabel = "EDF Annotations"

// Limits a header must keep, so a hostile or corrupt header cannot make
// the reader allocate gigabytes.
const (
	maxSignals     = 4096
	maxRecordBytes = 64 << 20
)

// Format is the kind of EDF file.
type Format uint8

// The formats the reader knows.
const (
	// EDF is the original format: no annotations, records follow each
	// other without gaps.
	EDF Format = iota + 1
	// EDFPlusC is EDF+ with continuous records.
	EDFPlusC
	// EDFPlusD is EDF+ with discontinuous records: each one's start is in
	// its time-keeping annotation.
	EDFPlusD
)

// String returns "EDF", "EDF+C" or "EDF+D".
func (f Format) String() string {
	switch f {
	case EDF:
		return "EDF"
	case EDFPlusC:
		return "EDF+C"
	case EDFPlusD:
		return "EDF+D"
	}
	return "unknown"
}

// Signal is one signal's header.
type Signal struct {
	Label      string // up to 16 characters, e.g. "EMG calf_left"
	Transducer string
	Dimension  string // physical unit, e.g. "uV"
	PhysMin    float64
	PhysMax    float64
	DigMin     int
	DigMax     int
	Prefilter  string
	Samples    int // samples per data record
	// Annotation is true for an EDF+ annotation signal, whose bytes are
	// text, not samples.
	Annotation bool
}

// Header is what an EDF file says about itself.
type Header struct {
	Format    Format
	Patient   string
	Recording string
	// Start is the start of the recording, UTC, to the second as the
	// header holds it. An EDF+ file's sub-second start is the onset of its
	// first record (see Reader.ReadRecord).
	Start time.Time
	// Records is the number of data records, -1 when the header does not
	// know it (the file is read to its end).
	Records        int
	RecordDuration time.Duration
	Signals        []Signal
}

// SampleRate returns signal i's sample rate in Hz: samples per record over
// the record duration. It is 0 for a record duration of 0.
func (h *Header) SampleRate(i int) float64 {
	us := h.RecordDuration.Microseconds()
	if us <= 0 || i < 0 || i >= len(h.Signals) {
		return 0
	}
	return float64(h.Signals[i].Samples) * 1e6 / float64(us)
}

// Reader reads the data records of an EDF file one at a time.
type Reader struct {
	Header
	src      *bufio.Reader
	rec      []byte    // one data record, reused
	offs     []int     // byte offset of each signal in a record
	scale    []float64 // physical units per digital step, per signal
	annIdx   int       // the time-keeping annotation signal, -1 without
	n        int       // records read
	first    time.Duration
	prevEnd  time.Duration
	finished bool
}

// NewReader reads the header from r. Data records are read by ReadRecord.
func NewReader(r io.Reader) (*Reader, error) {
	er := &Reader{src: bufio.NewReaderSize(r, 64<<10), annIdx: -1}
	head := make([]byte, 256)
	if _, err := io.ReadFull(er.src, head); err != nil {
		return nil, fmt.Errorf("edf: header: %w", noEOF(err))
	}
	field := func(off, n int) string { return strings.TrimSpace(string(head[off : off+n])) }
	if v := field(0, 8); v != "0" {
		return nil, fmt.Errorf("edf: version %q: want 0 (BDF and other variants are not supported)", v)
	}
	h := &er.Header
	h.Patient, h.Recording = field(8, 80), field(88, 80)
	start, err := parseStart(field(168, 8), field(176, 8))
	if err != nil {
		return nil, err
	}
	h.Start = start
	hdrBytes, err := integer(field(184, 8), "header size")
	if err != nil {
		return nil, fmt.Errorf("edf: %w", err)
	}
	switch reserved := field(192, 44); {
	case strings.HasPrefix(reserved, "EDF+C"):
		h.Format = EDFPlusC
	case strings.HasPrefix(reserved, "EDF+D"):
		h.Format = EDFPlusD
	default:
		h.Format = EDF
	}
	if h.Records, err = integer(field(236, 8), "number of data records"); err != nil {
		return nil, fmt.Errorf("edf: %w", err)
	}
	if h.Records < -1 {
		return nil, fmt.Errorf("edf: number of data records %d", h.Records)
	}
	dur, err := number(field(244, 8), "record duration")
	if err != nil {
		return nil, fmt.Errorf("edf: %w", err)
	}
	if dur < 0 || dur > 1e6 {
		return nil, fmt.Errorf("edf: record duration %v s", dur)
	}
	h.RecordDuration = time.Duration(math.Round(dur*1e6)) * time.Microsecond
	ns, err := integer(field(252, 4), "number of signals")
	if err != nil {
		return nil, fmt.Errorf("edf: %w", err)
	}
	if ns < 1 || ns > maxSignals {
		return nil, fmt.Errorf("edf: %d signals", ns)
	}
	if hdrBytes != 256*(ns+1) {
		return nil, fmt.Errorf("edf: header size %d bytes, want %d for %d signals", hdrBytes, 256*(ns+1), ns)
	}
	if err := er.readSignals(ns); err != nil {
		return nil, err
	}
	return er, nil
}

// readSignals reads and checks the ns signal headers.
func (er *Reader) readSignals(ns int) error {
	h := &er.Header
	sh := make([]byte, 256*ns)
	if _, err := io.ReadFull(er.src, sh); err != nil {
		return fmt.Errorf("edf: signal headers: %w", noEOF(err))
	}
	off := 0
	col := func(n int) []string {
		out := make([]string, ns)
		for i := range out {
			out[i] = strings.TrimSpace(string(sh[off+i*n : off+(i+1)*n]))
		}
		off += ns * n
		return out
	}
	labels, trans, dims, pmins, pmaxs, dmins, dmaxs, prefs, nsamps := col(16), col(80), col(8), col(8), col(8), col(8), col(8), col(80), col(8)
	h.Signals = make([]Signal, ns)
	er.offs = make([]int, ns)
	er.scale = make([]float64, ns)
	plus := h.Format != EDF
	recBytes, ordinary := 0, 0
	for i := range h.Signals {
		s := &h.Signals[i]
		s.Label, s.Transducer, s.Dimension, s.Prefilter = labels[i], trans[i], dims[i], prefs[i]
		s.Annotation = plus && s.Label == AnnotationLabel
		var err error
		if s.Samples, err = integer(nsamps[i], "samples per record"); err != nil {
			return fmt.Errorf("edf: signal %d %q: %w", i+1, s.Label, err)
		}
		if s.Samples < 1 || s.Samples > maxRecordBytes/2 {
			return fmt.Errorf("edf: signal %d %q: %d samples per record", i+1, s.Label, s.Samples)
		}
		er.offs[i] = recBytes
		recBytes += 2 * s.Samples
		if recBytes > maxRecordBytes {
			return fmt.Errorf("edf: data records of more than %d bytes", maxRecordBytes)
		}
		if s.Annotation {
			if er.annIdx < 0 {
				er.annIdx = i
			}
			continue
		}
		ordinary++
		if s.PhysMin, err = number(pmins[i], "physical minimum"); err != nil {
			return fmt.Errorf("edf: signal %d %q: %w", i+1, s.Label, err)
		}
		if s.PhysMax, err = number(pmaxs[i], "physical maximum"); err != nil {
			return fmt.Errorf("edf: signal %d %q: %w", i+1, s.Label, err)
		}
		if s.DigMin, err = integer(dmins[i], "digital minimum"); err != nil {
			return fmt.Errorf("edf: signal %d %q: %w", i+1, s.Label, err)
		}
		if s.DigMax, err = integer(dmaxs[i], "digital maximum"); err != nil {
			return fmt.Errorf("edf: signal %d %q: %w", i+1, s.Label, err)
		}
		if s.DigMin < -32768 || s.DigMax > 32767 || s.DigMax <= s.DigMin {
			return fmt.Errorf("edf: signal %d %q: digital range %d..%d", i+1, s.Label, s.DigMin, s.DigMax)
		}
		if s.PhysMax == s.PhysMin {
			return fmt.Errorf("edf: signal %d %q: physical minimum equals maximum", i+1, s.Label)
		}
		er.scale[i] = (s.PhysMax - s.PhysMin) / float64(s.DigMax-s.DigMin)
	}
	if h.Format == EDFPlusD && er.annIdx < 0 {
		return errors.New("edf: EDF+D file without an EDF Annotations signal: record times unknown")
	}
	if ordinary > 0 && h.RecordDuration <= 0 {
		return errors.New("edf: record duration 0 with ordinary signals")
	}
	er.rec = make([]byte, recBytes)
	return nil
}

// NewRecord returns a record buffer for ReadRecord: room for every
// ordinary signal's samples, nil for annotation signals.
func (er *Reader) NewRecord() [][]float64 {
	dst := make([][]float64, len(er.Signals))
	for i, s := range er.Signals {
		if !s.Annotation {
			dst[i] = make([]float64, s.Samples)
		}
	}
	return dst
}

// ReadRecord reads the next data record. dst has one entry per signal
// (len(dst) == len(Signals)); each non-nil entry of an ordinary signal is
// resized to the signal's samples per record (grown only if too small)
// and filled with physical values; nil entries and annotation signals are
// skipped. It returns the record's start relative to Start: for EDF+ the
// onset of its time-keeping annotation, for plain EDF its index times the
// record duration. At the end of the file it returns io.EOF; a record cut
// short returns io.ErrUnexpectedEOF.
func (er *Reader) ReadRecord(dst [][]float64) (time.Duration, error) {
	if len(dst) != len(er.Signals) {
		return 0, fmt.Errorf("edf: ReadRecord with %d signal buffers, file has %d signals", len(dst), len(er.Signals))
	}
	if er.finished || er.Records >= 0 && er.n >= er.Records {
		er.finished = true
		return 0, io.EOF
	}
	if _, err := io.ReadFull(er.src, er.rec); err != nil {
		er.finished = true
		if errors.Is(err, io.EOF) {
			if er.Records < 0 {
				return 0, io.EOF
			}
			return 0, fmt.Errorf("edf: record %d of %d: %w", er.n+1, er.Records, io.ErrUnexpectedEOF)
		}
		return 0, fmt.Errorf("edf: record %d: %w", er.n+1, err)
	}
	start, err := er.recordStart()
	if err != nil {
		er.finished = true
		return 0, err
	}
	for i := range er.Signals {
		s := &er.Signals[i]
		if s.Annotation || dst[i] == nil {
			continue
		}
		if cap(dst[i]) < s.Samples {
			dst[i] = make([]float64, s.Samples)
		}
		out := dst[i][:s.Samples]
		dst[i] = out
		data := er.rec[er.offs[i] : er.offs[i]+2*s.Samples]
		pmin, dmin, scale := s.PhysMin, float64(s.DigMin), er.scale[i]
		for j := range out {
			d := float64(int16(binary.LittleEndian.Uint16(data[2*j:])))
			out[j] = pmin + (d-dmin)*scale
		}
	}
	er.n++
	return start, nil
}

// Annotation returns the raw bytes of annotation signal i (its TALs,
// then zero bytes) in the record last read, for callers that read the
// annotations themselves. The slice is valid until the next ReadRecord;
// it is nil for an ordinary signal or before the first record.
func (er *Reader) Annotation(i int) []byte {
	if er.n == 0 || i < 0 || i >= len(er.Signals) || !er.Signals[i].Annotation {
		return nil
	}
	return er.rec[er.offs[i] : er.offs[i]+2*er.Signals[i].Samples]
}

// recordStart returns the start of the record just read.
func (er *Reader) recordStart() (time.Duration, error) {
	if er.annIdx < 0 {
		return time.Duration(er.n) * er.RecordDuration, nil
	}
	s := &er.Signals[er.annIdx]
	onset, err := timeKeeping(er.rec[er.offs[er.annIdx] : er.offs[er.annIdx]+2*s.Samples])
	if err != nil {
		return 0, fmt.Errorf("edf: record %d: %w", er.n+1, err)
	}
	if er.n == 0 {
		er.first = onset
	}
	if er.Format != EDFPlusD {
		// EDF+C records follow each other: the first record's onset
		// carries the sub-second start, the rest is arithmetic, so a
		// sloppy writer's rounding does not open gaps.
		return er.first + time.Duration(er.n)*er.RecordDuration, nil
	}
	if er.n > 0 && onset < er.prevEnd {
		return 0, fmt.Errorf("edf: EDF+D record %d starts at %v, before the previous record ends (%v)", er.n+1, onset, er.prevEnd)
	}
	er.prevEnd = onset + er.RecordDuration
	return onset, nil
}

// timeKeeping parses the onset of the time-keeping TAL that starts an
// annotation signal: "+onset\x14\x14...". It does not allocate.
func timeKeeping(b []byte) (time.Duration, error) {
	end := -1
	for i, c := range b {
		if c == 0x14 || c == 0x15 || c == 0 {
			end = i
			break
		}
	}
	if end < 0 || b[end] != 0x14 || end+1 >= len(b) || b[end+1] != 0x14 {
		return 0, errors.New("no time-keeping annotation (\"+onset\\x14\\x14\") at the start of the annotation signal")
	}
	d, ok := parseSeconds(b[:end])
	if !ok {
		return 0, fmt.Errorf("time-keeping annotation onset %q: not +seconds", b[:end])
	}
	return d, nil
}

// parseSeconds parses a TAL onset ("+12.5", "-3", "+42.000125") to the
// nanosecond, without allocating.
func parseSeconds(b []byte) (time.Duration, bool) {
	if len(b) < 2 || b[0] != '+' && b[0] != '-' {
		return 0, false
	}
	neg := b[0] == '-'
	b = b[1:]
	var sec, ns int64
	i, digits := 0, 0
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		if digits++; digits > 11 {
			return 0, false
		}
		sec = sec*10 + int64(b[i]-'0')
	}
	if digits == 0 {
		return 0, false
	}
	if i < len(b) && b[i] == '.' {
		scale := int64(1e8)
		for i++; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
			ns += int64(b[i]-'0') * scale
			scale /= 10
		}
	}
	if i != len(b) {
		return 0, false
	}
	d := time.Duration(sec)*time.Second + time.Duration(ns)
	if neg {
		d = -d
	}
	return d, true
}

// parseStart parses the header's "dd.mm.yy" and "hh.mm.ss". Two-digit
// years 85-99 are 1985-1999 and 00-84 are 2000-2084, as the specification
// says.
func parseStart(date, clock string) (time.Time, error) {
	t, err := time.Parse("02.01.06 15.04.05", date+" "+clock)
	if err != nil {
		return time.Time{}, fmt.Errorf("edf: start date and time %q %q: want dd.mm.yy hh.mm.ss", date, clock)
	}
	if t.Year() < 1985 {
		t = t.AddDate(100, 0, 0) // Go reads 69-99 as 19xx: 69-84 are 20xx in EDF
	}
	return t.UTC(), nil
}

func integer(s, what string) (int, error) {
	v, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("%s %q: not an integer", what, s)
	}
	return v, nil
}

func number(s, what string) (float64, error) {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("%s %q: not a number", what, s)
	}
	return v, nil
}

// noEOF turns io.EOF into io.ErrUnexpectedEOF: a file that ends inside
// its header is truncated, not empty of records.
func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

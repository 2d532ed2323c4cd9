package export

import (
	"bytes"
	"errors"
	"fmt"
	"io"
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
// time-keeping TAL, "+start\x14\x14\x00". Package edf encodes and parses
// the files; this file maps the export's records and events onto it and
// checks what the round-trip tests need.

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

// edfHeader is what an EDF+ file says about itself.
type edfHeader struct {
	Patient   string // EDF+ patient field: "code sex birthdate name"
	Recording string // EDF+ recording field: "Startdate dd-MMM-yyyy admin technician equipment"
	Start     time.Time
	// Continuous is true for EDF+C (records follow each other without
	// gaps), false for EDF+D (each record says when it starts).
	Continuous bool
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

// tal is a as package edf writes it.
func (a edfAnnotation) tal() edf.Annotation {
	return edf.Annotation{Onset: a.Onset, Duration: max(a.Duration, 0), HasDuration: a.Duration >= 0, Text: a.Text}
}

// talLen returns the length of a's TAL.
func talLen(a edfAnnotation) int { return a.tal().Size() }

// edfWriter adapts edf.Writer to the export's EDF+ files: the ordinary
// signals, then one annotation signal last, as EDF+ readers expect. The
// number of records is unknown until the end, so the header says -1
// ("still being recorded", as the specification allows) until Close seeks
// back and patches it.
type edfWriter struct {
	w       *edf.Writer
	samples [][]float64      // one record's signals, the annotation signal's nil
	tals    []edf.Annotation // one record's annotations
}

// newEDFWriter writes the header of h (with an unknown number of records).
func newEDFWriter(w io.WriteSeeker, h edfHeader) (*edfWriter, error) {
	if h.AnnSamples <= 0 {
		return nil, errors.New("edf: no room for annotations")
	}
	eh := edf.Header{Format: edf.EDFPlusD, Patient: h.Patient, Recording: h.Recording, Start: h.Start,
		Records: -1, RecordDuration: h.RecordDur}
	if h.Continuous {
		eh.Format = edf.EDFPlusC
	}
	for _, s := range h.Signals {
		if s.PhysMax <= s.PhysMin {
			return nil, fmt.Errorf("edf: signal %q: bad ranges", s.Label)
		}
		eh.Signals = append(eh.Signals, edf.Signal{Label: s.Label, Transducer: s.Transducer, Dimension: s.Dimension,
			PhysMin: s.PhysMin, PhysMax: s.PhysMax, DigMin: s.DigMin, DigMax: s.DigMax, Samples: s.Samples})
	}
	eh.Signals = append(eh.Signals, edf.Signal{Annotation: true, Samples: h.AnnSamples})
	ew, err := edf.NewWriter(w, eh)
	if err != nil {
		return nil, err
	}
	return &edfWriter{w: ew, samples: make([][]float64, len(eh.Signals))}, nil
}

// writeRecord writes one data record: the record's start (for its
// time-keeping TAL), samples per ordinary signal (physical values,
// len(samples[i]) == Signals[i].Samples), and the TALs that go in it.
// It fails if the TALs do not fit in the annotation signal.
func (ew *edfWriter) writeRecord(start time.Duration, samples [][]float64, tals []edfAnnotation) error {
	if len(samples) != len(ew.samples)-1 {
		return fmt.Errorf("edf: %d signals in a record, want %d", len(samples), len(ew.samples)-1)
	}
	copy(ew.samples, samples)
	ew.tals = ew.tals[:0]
	for _, a := range tals {
		ew.tals = append(ew.tals, a.tal())
	}
	return ew.w.WriteRecord(start, ew.samples, ew.tals...)
}

// fits reports whether TALs of n bytes fit in a record starting at start,
// after its time-keeping TAL.
func (ew *edfWriter) fits(start time.Duration, n int) bool {
	return n <= ew.w.AnnotationRoom(start)
}

// Close flushes the records and patches the number of records into the
// header. It does not close the underlying file.
func (ew *edfWriter) Close() error { return ew.w.Close() }

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

package export

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/crampwatch/crampwatch/wire"
)

// nightHead introduces a device-night to the sinks.
type nightHead struct {
	subject  string
	night    string
	from, to time.Time
	// channels are the EMG channels whose envelope goes into EDF+ signals;
	// empty when there are no windows.
	channels []wire.Channel
}

// sink receives the rows of an export in order: for each device-night,
// beginNight, its events (each followed by its window rows), endNight
// with the summary. finish completes the output after the last night; it
// is not called when the export fails.
type sink interface {
	beginNight(h *nightHead) error
	event(r *EventRow) error
	window(r *WindowRow) error
	endNight(r *NightRow) error
	finish() error
}

// tableSink writes the tables in one tabular format. A nil writer is a
// table that is not wanted.
type tableSink struct {
	events   rowWriter[EventRow]
	nights   rowWriter[NightRow]
	envelope rowWriter[WindowRow]
}

func (t *tableSink) beginNight(*nightHead) error { return nil }

func (t *tableSink) event(r *EventRow) error {
	if t.events == nil {
		return nil
	}
	return t.events.write(r)
}

func (t *tableSink) window(r *WindowRow) error {
	if t.envelope == nil {
		return nil
	}
	return t.envelope.write(r)
}

func (t *tableSink) endNight(r *NightRow) error {
	if t.nights == nil {
		return nil
	}
	return t.nights.write(r)
}

func (t *tableSink) finish() error {
	// A nil writer converts to a nil interface: that table is not wanted.
	for _, w := range []interface{ close() error }{t.events, t.nights, t.envelope} {
		if w == nil {
			continue
		}
		if err := w.close(); err != nil {
			return err
		}
	}
	return nil
}

// EDF+ layout of the files written by edfSink.
const (
	// edfAnnBytes is the room for TALs in one data record: about 20
	// annotations. A record holding the onsets of more events than that
	// spills into the next record.
	edfAnnBytes = 1024
	// Envelope signals: 0 to 6553.5 µV in steps of 0.1 µV; louder
	// envelope (saturated electrodes) is clipped.
	edfEnvMaxUV = 6553.5
)

// edfSink writes one EDF+ file per subject and night into dir, named
// <subject>_<night>.edf. Without envelope channels a file holds only
// annotations (EDF+C, records of zero duration, as the specification
// allows for annotation-only files). With channels it is EDF+D: one-second
// records covering the windows around the events (merged where they
// overlap), one signal per channel at the envelope rate, and each event's
// annotation in the record of its onset.
type edfSink struct {
	dir  string
	win  Window
	rate int // envelope samples per second
	// done is called with each finished file (the HTTP handler streams and
	// removes it); nil keeps the files, synced to disk.
	done func(path string) error

	head  nightHead
	file  *os.File
	w     *edfWriter
	start time.Time // file start, whole second
	files int

	// annotation-only files: TALs waiting for a record
	pending      []edfAnnotation
	pendingBytes int
	// window files: the interval of records being built
	iv *edfInterval
}

// edfInterval is a run of records [first, first+len(recs)) seconds after
// the file start.
type edfInterval struct {
	first int64
	recs  []edfRecord
}

type edfRecord struct {
	samples  [][]float64 // per signal
	filled   [][]bool
	tals     []edfAnnotation
	talBytes int
}

func newEDFSink(dir string, window Window, rate float64, done func(string) error) (*edfSink, error) {
	r := int(math.Round(rate))
	if r < 1 || math.Abs(rate-float64(r)) > 1e-9 {
		return nil, fmt.Errorf("export: EDF+ needs a whole number of envelope samples per second, not %v", rate)
	}
	return &edfSink{dir: dir, win: window, rate: r, done: done}, nil
}

// Files returns how many EDF+ files were written.
func (s *edfSink) Files() int { return s.files }

func (s *edfSink) beginNight(h *nightHead) error {
	s.head = *h
	s.pending, s.pendingBytes = s.pending[:0], 0
	s.iv = nil
	s.w, s.file = nil, nil
	return nil
}

// edfName is the file name of a subject-night.
func edfName(subject, night string) string { return subject + "_" + night + ".edf" }

// open creates the file with its header, starting at start.
func (s *edfSink) open(start time.Time) error {
	s.start = start.Truncate(time.Second)
	f, err := os.OpenFile(filepath.Join(s.dir, edfName(s.head.subject, s.head.night)), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	h := edfHeader{
		Patient:    s.head.subject + " X X X",
		Recording:  "Startdate " + strings.ToUpper(s.start.Format("02-Jan-2006")) + " X X crampwatch_" + s.head.night,
		Start:      s.start,
		AnnSamples: edfAnnBytes / 2,
	}
	if len(s.head.channels) == 0 {
		h.Continuous = true
	} else {
		h.RecordDur = time.Second
		for _, c := range s.head.channels {
			h.Signals = append(h.Signals, edfSignal{
				Label: c.String(), Transducer: "surface EMG, RMS envelope", Dimension: "uV",
				PhysMin: 0, PhysMax: edfEnvMaxUV, DigMin: -32768, DigMax: 32767, Samples: s.rate,
			})
		}
	}
	w, err := newEDFWriter(f, h)
	if err != nil {
		f.Close()
		return err
	}
	s.file, s.w = f, w
	return nil
}

// annotation is the EDF+ annotation of an event: "kind muscle_side", then
// "ongoing" for a cramp not yet ended and the cause of an artifact.
func annotation(r *EventRow) string {
	var b strings.Builder
	b.WriteString(r.Kind)
	b.WriteByte(' ')
	b.WriteString(r.Muscle + "_" + r.Side)
	if r.State != "" && r.State != "ended" {
		b.WriteByte(' ')
		b.WriteString(r.State)
	}
	if r.Cause.OK && r.Cause.V != "" {
		b.WriteByte(' ')
		b.WriteString(r.Cause.V)
	}
	return b.String()
}

func (s *edfSink) event(r *EventRow) error {
	if len(s.head.channels) == 0 {
		if s.w == nil {
			if err := s.open(s.head.from); err != nil {
				return err
			}
		}
		a := edfAnnotation{Onset: r.Onset.Sub(s.start), Duration: r.End.Sub(r.Onset), Text: annotation(r)}
		n := talLen(a)
		if !s.w.fits(0, s.pendingBytes+n) && len(s.pending) > 0 {
			if err := s.w.writeRecord(0, nil, s.pending); err != nil {
				return err
			}
			s.pending, s.pendingBytes = s.pending[:0], 0
		}
		s.pending = append(s.pending, a)
		s.pendingBytes += n
		return nil
	}
	from := r.Onset.Add(-s.win.Before).Truncate(time.Second)
	to := r.End.Add(s.win.After)
	if s.w == nil {
		if err := s.open(from); err != nil {
			return err
		}
	}
	first := int64(from.Sub(s.start) / time.Second)
	last := int64((to.Sub(s.start) + time.Second - 1) / time.Second) // exclusive, rounded up
	if last <= first {
		last = first + 1
	}
	if s.iv != nil && first > s.iv.first+int64(len(s.iv.recs)) {
		if err := s.flushInterval(); err != nil {
			return err
		}
	}
	if s.iv == nil {
		s.iv = &edfInterval{first: first}
	}
	for s.iv.first+int64(len(s.iv.recs)) < last {
		rec := edfRecord{samples: make([][]float64, len(s.head.channels)), filled: make([][]bool, len(s.head.channels))}
		for i := range rec.samples {
			rec.samples[i] = make([]float64, s.rate)
			rec.filled[i] = make([]bool, s.rate)
		}
		s.iv.recs = append(s.iv.recs, rec)
	}
	a := edfAnnotation{Onset: r.Onset.Sub(s.start), Duration: r.End.Sub(r.Onset), Text: annotation(r)}
	k := int(int64(a.Onset/time.Second) - s.iv.first)
	for ; k < len(s.iv.recs); k++ {
		rec := &s.iv.recs[k]
		start := time.Duration(s.iv.first+int64(k)) * time.Second
		if n := talLen(a); s.w.fits(start, rec.talBytes+n) {
			rec.tals = append(rec.tals, a)
			rec.talBytes += n
			return nil
		}
	}
	return fmt.Errorf("export: EDF+: too many events start within %v of %v", s.win.After, r.Onset)
}

func (s *edfSink) window(r *WindowRow) error {
	if s.iv == nil {
		return nil
	}
	sig := -1
	for i, c := range s.head.channels {
		if c.String() == r.Channel {
			sig = i
			break
		}
	}
	if sig < 0 {
		return nil
	}
	period := time.Second / time.Duration(s.rate)
	slot := int64(math.Round(float64(r.Time.Sub(s.start)) / float64(period)))
	k := slot/int64(s.rate) - s.iv.first
	if slot < 0 || k < 0 || k >= int64(len(s.iv.recs)) {
		return nil // outside the records (rounding at a window's edge)
	}
	rec := &s.iv.recs[k]
	i := slot % int64(s.rate)
	rec.samples[sig][i] = r.RMSUV
	rec.filled[sig][i] = true
	return nil
}

// flushInterval writes the records of the interval. A slot without an
// envelope point (a sensor gap, or the edge of the data) repeats the
// nearest earlier point of the interval, or the first later one.
func (s *edfSink) flushInterval() error {
	iv := s.iv
	s.iv = nil
	if iv == nil {
		return nil
	}
	for sig := range s.head.channels {
		var last float64
		have := false
		for k := range iv.recs {
			for i := range iv.recs[k].samples[sig] {
				if iv.recs[k].filled[sig][i] {
					if !have { // back-fill the leading gap
						for k2 := 0; k2 <= k; k2++ {
							for i2 := range iv.recs[k2].samples[sig] {
								if k2 == k && i2 >= i {
									break
								}
								iv.recs[k2].samples[sig][i2] = iv.recs[k].samples[sig][i]
							}
						}
					}
					last, have = iv.recs[k].samples[sig][i], true
				} else if have {
					iv.recs[k].samples[sig][i] = last
				}
			}
		}
	}
	for k := range iv.recs {
		start := time.Duration(iv.first+int64(k)) * time.Second
		if err := s.w.writeRecord(start, iv.recs[k].samples, iv.recs[k].tals); err != nil {
			return err
		}
	}
	return nil
}

func (s *edfSink) endNight(*NightRow) error {
	if s.w == nil {
		return nil // no events that night: no file
	}
	var err error
	if len(s.head.channels) == 0 {
		if len(s.pending) > 0 {
			err = s.w.writeRecord(0, nil, s.pending)
		}
	} else {
		err = s.flushInterval()
	}
	if err == nil {
		err = s.w.Close()
	}
	if err == nil && s.done == nil {
		err = s.file.Sync()
	}
	if cerr := s.file.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("export: %w", cerr)
	}
	path := s.file.Name()
	s.w, s.file = nil, nil
	if err != nil {
		return err
	}
	s.files++
	if s.done != nil {
		return s.done(path)
	}
	return nil
}

func (s *edfSink) finish() error { return nil }

// abort closes a file left open by a failed export (the caller removes
// the directory).
func (s *edfSink) abort() {
	if s.file != nil {
		s.file.Close()
		s.file, s.w = nil, nil
	}
}

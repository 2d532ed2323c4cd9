package replay

import (
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"github.com/crampwatch/crampwatch/edf"
	"github.com/crampwatch/crampwatch/wire"
)

// EDFOptions says how to read an EDF or EDF+ recording.
type EDFOptions struct {
	// Labels maps EDF signal labels (as in the header, surrounding spaces
	// trimmed) to contract channels, for labs whose labels are not
	// contract labels. Signals not in Labels are mapped by ChannelForLabel.
	Labels map[string]wire.Channel
	// Scale, when non-zero, multiplies every mapped signal's physical
	// values into microvolts, whatever the header's dimension says. When
	// zero the dimension decides: uV/µV as is, mV ×1000, V ×1e6; any other
	// dimension is an error.
	Scale float64
	// Start, when non-zero, replaces the header's start time (anonymised
	// files often say 01.01.85).
	Start time.Time
	// FrameSamples is the number of samples per frame; default rate/10 (100 ms).
	FrameSamples int
}

// ChannelForLabel maps an EDF signal label to a contract channel: lower
// case, spaces and dashes turned into underscores, a leading "emg_"
// dropped, then it must be a contract label ("EMG calf-left" is
// calf_left).
func ChannelForLabel(label string) (wire.Channel, bool) {
	s := strings.ToLower(strings.TrimSpace(label))
	s = strings.NewReplacer(" ", "_", "-", "_").Replace(s)
	s = strings.TrimPrefix(s, "emg_")
	ch, err := wire.ParseChannel(s)
	return ch, err == nil
}

// DimensionScale returns the factor from an EDF physical dimension to
// microvolts.
func DimensionScale(dim string) (float64, bool) {
	switch strings.TrimSpace(dim) {
	case "uV", "µV", "μV", "\xb5V": // \xb5 is µ in Latin-1, which some writers use
		return 1, true
	case "mV":
		return 1000, true
	case "V":
		return 1e6, true
	}
	return 0, false
}

// EDFReader turns the data records of an EDF or EDF+ file into EMG frames
// of the mapped signals. Frames run across record boundaries while the
// records are contiguous; at a gap between EDF+D records the frame ends,
// and the next one starts at the next record's time.
type EDFReader struct {
	r        *edf.Reader
	channels []wire.Channel
	sigIdx   []int       // EDF signal index of each channel
	scale    []float64   // to microvolts, per channel
	rec      [][]float64 // the current record, per EDF signal (nil: not read)
	ignored  []string
	rate     float64
	frameN   int
	recLen   int   // samples per record of the mapped signals
	pos      int   // next sample of rec to hand out; recLen: none left
	recT0    int64 // Unix µs of the current record's first sample
	start    int64 // Unix µs of the file's start
	seq      uint32
	eof      bool
}

// NewEDFReader reads the EDF header and maps its signals to channels.
// Every mapped signal must have the same sample rate, 250-4000 Hz.
func NewEDFReader(src io.Reader, opt EDFOptions) (*EDFReader, error) {
	r, err := edf.NewReader(src)
	if err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	e := &EDFReader{r: r, rec: make([][]float64, len(r.Signals))}
	for i, s := range r.Signals {
		if s.Annotation {
			continue
		}
		ch, ok := opt.Labels[s.Label]
		if !ok {
			ch, ok = ChannelForLabel(s.Label)
		}
		if !ok {
			e.ignored = append(e.ignored, s.Label)
			continue
		}
		for j, have := range e.channels {
			if have == ch {
				return nil, fmt.Errorf("replay: EDF signals %q and %q are both channel %s", r.Signals[e.sigIdx[j]].Label, s.Label, ch)
			}
		}
		scale := opt.Scale
		if scale == 0 {
			if scale, ok = DimensionScale(s.Dimension); !ok {
				return nil, fmt.Errorf("replay: EDF signal %q: unit %q: want uV, mV or V, or give the unit", s.Label, s.Dimension)
			}
		}
		rate := r.SampleRate(i)
		if len(e.channels) > 0 && rate != e.rate {
			return nil, fmt.Errorf("replay: EDF signal %q at %g Hz, %q at %g Hz: mapped signals must share one rate",
				r.Signals[e.sigIdx[0]].Label, e.rate, s.Label, rate)
		}
		e.rate, e.recLen = rate, s.Samples
		e.channels = append(e.channels, ch)
		e.sigIdx = append(e.sigIdx, i)
		e.scale = append(e.scale, scale)
		e.rec[i] = make([]float64, s.Samples)
	}
	if len(e.channels) == 0 {
		return nil, fmt.Errorf("replay: no EDF signal maps to a channel (labels %q); name them like calf_left or map them", e.ignored)
	}
	if e.rate < 250 || e.rate > 4000 {
		return nil, fmt.Errorf("replay: sample rate %g Hz outside 250-4000", e.rate)
	}
	e.frameN = opt.FrameSamples
	if e.frameN <= 0 {
		e.frameN = max(1, int(e.rate/10))
	}
	e.start = r.Start.UnixMicro()
	if !opt.Start.IsZero() {
		e.start = opt.Start.UnixMicro()
	}
	e.pos = e.recLen
	return e, nil
}

// Channels returns the mapped channels, in EDF signal order.
func (e *EDFReader) Channels() []wire.Channel { return e.channels }

// Rate returns the sample rate of the mapped signals in Hz.
func (e *EDFReader) Rate() float64 { return e.rate }

// Ignored returns the labels of the ordinary signals that map to no
// channel.
func (e *EDFReader) Ignored() []string { return e.ignored }

// Header returns the EDF header.
func (e *EDFReader) Header() *edf.Header { return &e.r.Header }

// Next fills f with the next frame, reusing its memory. It returns io.EOF
// after the last frame.
func (e *EDFReader) Next(f *wire.EMGFrame) error {
	startFrame(f, e.channels, e.rate, e.seq)
	n := 0
	for n < e.frameN {
		if e.pos == e.recLen {
			if e.eof {
				break
			}
			prevEnd := e.recT0 + wire.SpanMicros(e.recLen, e.rate)
			at, err := e.r.ReadRecord(e.rec)
			if errors.Is(err, io.EOF) {
				e.eof = true
				break
			}
			if err != nil {
				return fmt.Errorf("replay: %w", err)
			}
			e.recT0, e.pos = e.start+at.Microseconds(), 0
			// A record that does not follow on (EDF+D) starts a frame.
			if n > 0 && math.Abs(float64(e.recT0-prevEnd)) > 0.5e6/e.rate {
				break
			}
		}
		if n == 0 {
			f.T0 = e.recT0 + wire.SpanMicros(e.pos, e.rate)
		}
		k := min(e.frameN-n, e.recLen-e.pos)
		for c, si := range e.sigIdx {
			scale := e.scale[c]
			for _, v := range e.rec[si][e.pos : e.pos+k] {
				f.Data[c] = append(f.Data[c], v*scale)
			}
		}
		e.pos += k
		n += k
	}
	if n == 0 {
		return io.EOF
	}
	e.seq++
	return nil
}

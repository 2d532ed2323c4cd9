// Package replay reads recorded EMG from CSV files into wire contract
// frames, so researchers can run the production detection pipeline over
// their own recordings. It streams: memory does not grow with the length
// of the recording.
package replay

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/crampwatch/crampwatch/wire"
)

// Options says how to read a CSV recording.
type Options struct {
	// Rate is the sample rate in Hz. Required when the file has no time
	// column; with one, 0 means "from the first two rows".
	Rate float64
	// Start is the time of the first sample when the file has no time
	// column, and the origin of relative times (below 1e9 s) when it has.
	// Zero means the Unix epoch.
	Start time.Time
	// Unit of the samples: wire.Microvolt (default) or wire.Millivolt.
	Unit wire.Unit
	// FrameSamples is the number of samples per frame; default rate/10 (100 ms).
	FrameSamples int
}

// isTimeColumn reports whether a header names the time column: seconds,
// Unix or relative, fractional allowed.
func isTimeColumn(name string) bool {
	switch name {
	case "time", "t", "timestamp", "time_s":
		return true
	}
	return false
}

// CSVReader turns CSV rows into EMG frames. The header names the columns:
// an optional time column and one column per channel labelled like the wire
// contract ("calf_left"). Rows whose time jumps by more than 1.5 sample
// periods start a new frame, so gaps in a recording stay gaps.
type CSVReader struct {
	r        *bufio.Reader
	opt      Options
	timeCol  int // -1 without a time column
	channels []wire.Channel
	chanCol  []int // column index of each channel
	ncols    int
	line     int
	seq      uint32
	rate     float64
	start    int64 // Unix µs origin of relative or absent times
	n        int64 // rows read, for files without a time column
	ahead    []row // rows read but not yet framed (at most 2)
	fields   [][]byte
	scale    float64
}

type row struct {
	t    int64 // Unix µs
	vals []float64
}

// NewCSVReader reads the header (and, to find the rate, the first rows).
func NewCSVReader(r io.Reader, opt Options) (*CSVReader, error) {
	c := &CSVReader{r: bufio.NewReaderSize(r, 1<<20), opt: opt, timeCol: -1, scale: 1}
	switch opt.Unit {
	case 0, wire.Microvolt:
	case wire.Millivolt:
		c.scale = 1000
	default:
		return nil, fmt.Errorf("replay: unit %v: want uV or mV", opt.Unit)
	}
	header, err := c.readLine()
	if err != nil {
		return nil, fmt.Errorf("replay: header: %w", err)
	}
	c.fields = splitFields(header, c.fields)
	c.ncols = len(c.fields)
	for i, f := range c.fields {
		name := strings.ToLower(strings.TrimSpace(string(f)))
		if isTimeColumn(name) {
			if c.timeCol >= 0 {
				return nil, errors.New("replay: header: two time columns")
			}
			c.timeCol = i
			continue
		}
		ch, err := wire.ParseChannel(name)
		if err != nil {
			return nil, fmt.Errorf("replay: header column %d: %w (want time or <muscle>_<side>)", i+1, err)
		}
		for _, have := range c.channels {
			if have == ch {
				return nil, fmt.Errorf("replay: header: channel %s twice", ch)
			}
		}
		c.channels = append(c.channels, ch)
		c.chanCol = append(c.chanCol, i)
	}
	if len(c.channels) == 0 {
		return nil, errors.New("replay: header names no channel")
	}
	if c.timeCol < 0 && opt.Rate <= 0 {
		return nil, errors.New("replay: no time column, so the sample rate must be given")
	}
	if !opt.Start.IsZero() {
		c.start = opt.Start.UnixMicro()
	}
	c.rate = opt.Rate
	if c.rate <= 0 {
		for range 2 {
			r, err := c.readRow(nil)
			if err != nil {
				return nil, fmt.Errorf("replay: need two rows to find the rate: %w", err)
			}
			c.ahead = append(c.ahead, r)
		}
		dt := c.ahead[1].t - c.ahead[0].t
		if dt <= 0 {
			return nil, fmt.Errorf("replay: line %d: time does not increase", c.line)
		}
		c.rate = math.Round(1e9/float64(dt)) / 1000
	}
	if c.rate < 250 || c.rate > 4000 {
		return nil, fmt.Errorf("replay: sample rate %g Hz outside 250-4000", c.rate)
	}
	if c.opt.FrameSamples <= 0 {
		c.opt.FrameSamples = max(1, int(c.rate/10))
	}
	return c, nil
}

// Channels returns the recording's channels in column order.
func (c *CSVReader) Channels() []wire.Channel { return c.channels }

// Rate returns the sample rate in Hz.
func (c *CSVReader) Rate() float64 { return c.rate }

// Next fills f with the next frame, reusing its memory. It returns io.EOF
// after the last frame.
func (c *CSVReader) Next(f *wire.EMGFrame) error {
	nch := len(c.channels)
	f.Rate, f.Unit, f.Seq = c.rate, wire.Microvolt, c.seq
	f.Channels = append(f.Channels[:0], c.channels...)
	if cap(f.Data) < nch {
		f.Data = make([][]float64, nch)
	}
	f.Data = f.Data[:nch]
	for i := range f.Data {
		f.Data[i] = f.Data[i][:0]
	}
	period := 1e6 / c.rate
	var r row
	for n := 0; n < c.opt.FrameSamples; n++ {
		if len(c.ahead) > 0 {
			r = c.ahead[0]
			c.ahead = c.ahead[1:]
		} else {
			var err error
			if r, err = c.readRow(r.vals); err != nil {
				if errors.Is(err, io.EOF) && n > 0 {
					break
				}
				return err
			}
		}
		if n == 0 {
			f.T0 = r.t
		} else if want := f.T0 + int64(float64(n)*period); math.Abs(float64(r.t-want)) > 1.5*period {
			// A jump in time: this row starts the next frame.
			c.ahead = append(c.ahead, row{t: r.t, vals: append([]float64(nil), r.vals...)})
			break
		}
		for i := range f.Data {
			f.Data[i] = append(f.Data[i], r.vals[i])
		}
	}
	c.seq++
	return nil
}

// readRow parses one data row into vals (reused).
func (c *CSVReader) readRow(vals []float64) (row, error) {
	line, err := c.readLine()
	for err == nil && len(bytes.TrimSpace(line)) == 0 {
		line, err = c.readLine()
	}
	if err != nil {
		return row{}, err
	}
	c.fields = splitFields(line, c.fields)
	if len(c.fields) != c.ncols {
		return row{}, fmt.Errorf("replay: line %d: %d columns, header has %d", c.line, len(c.fields), c.ncols)
	}
	vals = vals[:0]
	for _, col := range c.chanCol {
		v, err := parseFloat(c.fields[col])
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return row{}, fmt.Errorf("replay: line %d column %d: not a finite number: %q", c.line, col+1, c.fields[col])
		}
		vals = append(vals, v*c.scale)
	}
	r := row{vals: vals}
	if c.timeCol < 0 {
		r.t = c.start + int64(math.Round(float64(c.n)*1e6/c.rate))
	} else {
		us, err := parseMicros(c.fields[c.timeCol])
		if err != nil {
			return row{}, fmt.Errorf("replay: line %d: bad time %q", c.line, c.fields[c.timeCol])
		}
		r.t = us
		if us < 1e15 { // below 1e9 s: relative seconds
			r.t += c.start
		}
	}
	c.n++
	return r, nil
}

// readLine returns the next line without its line ending; the slice is
// valid until the next call.
func (c *CSVReader) readLine() ([]byte, error) {
	line, err := c.r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		return nil, fmt.Errorf("replay: line %d longer than 1 MiB", c.line+1)
	}
	if err != nil && !(errors.Is(err, io.EOF) && len(line) > 0) {
		return nil, err
	}
	c.line++
	if n := len(line); n > 0 && line[n-1] == '\n' {
		line = line[:n-1]
	}
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

// splitFields splits a line at commas into dst (reused).
func splitFields(line []byte, dst [][]byte) [][]byte {
	dst = dst[:0]
	for {
		i := bytes.IndexByte(line, ',')
		if i < 0 {
			return append(dst, line)
		}
		dst = append(dst, line[:i])
		line = line[i+1:]
	}
}

// parseMicros parses non-negative seconds ("1795820400.039492") into
// microseconds exactly, rounding beyond the sixth decimal. Unix times in
// seconds have 16-17 significant digits, past float64's exact fast path,
// so they get their own integer parser.
func parseMicros(b []byte) (int64, error) {
	b = trim(b)
	whole, frac, _ := bytes.Cut(b, []byte("."))
	if len(whole) == 0 && len(frac) == 0 || len(whole) > 12 {
		return parseMicrosSlow(b)
	}
	var us int64
	for _, c := range whole {
		if c < '0' || c > '9' {
			return parseMicrosSlow(b)
		}
		us = us*10 + int64(c-'0')
	}
	us *= 1e6
	scale := int64(1e5)
	for i, c := range frac {
		if c < '0' || c > '9' {
			return parseMicrosSlow(b)
		}
		switch {
		case i < 6:
			us += int64(c-'0') * scale
			scale /= 10
		case i == 6 && c >= '5':
			us++ // round half up at the seventh decimal
		}
	}
	return us, nil
}

// parseMicrosSlow handles exponents and other forms strconv accepts.
func parseMicrosSlow(b []byte) (int64, error) {
	s, err := strconv.ParseFloat(string(b), 64)
	if err != nil || math.IsNaN(s) || math.IsInf(s, 0) || s < 0 || s > 1e11 {
		return 0, fmt.Errorf("not a time in seconds: %q", b)
	}
	return int64(math.Round(s * 1e6)), nil
}

// trim removes surrounding spaces and tabs; most fields have none, so it
// checks the two ends before doing any work.
func trim(b []byte) []byte {
	if len(b) > 0 && (b[0] <= ' ' || b[len(b)-1] <= ' ') {
		return bytes.TrimSpace(b)
	}
	return b
}

// pow10 holds the powers of ten that float64 represents exactly.
var pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// parseFloat parses a decimal number. Plain decimals ("-12.375") with at
// most 15 significant digits take a fast path that is exact: an integer
// mantissa below 2^53 divided by an exactly representable power of ten is
// correctly rounded (Clinger's fast path). Anything else goes to strconv.
func parseFloat(b []byte) (float64, error) {
	b = trim(b)
	s, neg := b, false
	if len(s) > 0 && (s[0] == '-' || s[0] == '+') {
		neg, s = s[0] == '-', s[1:]
	}
	var mant uint64
	digits, frac, dot := 0, 0, false
	for _, c := range s {
		switch {
		case c >= '0' && c <= '9':
			mant = mant*10 + uint64(c-'0')
			digits++
			if dot {
				frac++
			}
		case c == '.' && !dot:
			dot = true
		default:
			digits = 99 // not a plain decimal
		}
	}
	if digits == 0 || digits > 15 {
		return strconv.ParseFloat(string(b), 64)
	}
	v := float64(mant) / pow10[frac]
	if neg {
		v = -v
	}
	return v, nil
}

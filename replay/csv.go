// Package replay reads recorded EMG from CSV and EDF/EDF+ files into wire
// contract frames, so researchers can run the production detection
// pipeline over their own recordings. It streams: memory does not grow
// with the length of the recording.
package replay

import (
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
	// BadRow, when set, is called with each row that cannot be read (a
	// *RowError) and the row is skipped: the frame in progress ends there,
	// so the rows after it keep their own times. When nil, Next returns
	// the first bad row's error.
	BadRow func(err error)
}

// RowError is a data row that cannot be read: wrong number of columns, a
// sample that is not a finite number, or a time that is not a time.
type RowError struct {
	Line int    // 1-based line number in the file
	Msg  string // what is wrong
}

func (e *RowError) Error() string { return fmt.Sprintf("replay: line %d: %s", e.Line, e.Msg) }

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
	src      io.Reader
	buf      []byte // the reader's own buffer: rows are parsed in place
	pos, end int    // unread bytes are buf[pos:end]
	eof      bool
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
	vals     []float64 // the current row's samples, reused
	scale    float64
}

type row struct {
	t    int64 // Unix µs
	vals []float64
}

// NewCSVReader reads the header (and, to find the rate, the first rows).
func NewCSVReader(r io.Reader, opt Options) (*CSVReader, error) {
	// One byte more than bufSize, for the newline fill adds to a last line
	// that lacks one.
	c := &CSVReader{src: r, buf: make([]byte, bufSize+1), opt: opt, timeCol: -1, scale: 1}
	switch opt.Unit {
	case 0, wire.Microvolt:
	case wire.Millivolt:
		c.scale = 1000
	default:
		return nil, fmt.Errorf("replay: unit %v: want uV or mV", opt.Unit)
	}
	header, err := c.nextLine()
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
	startFrame(f, c.channels, c.rate, c.seq)
	period := 1e6 / c.rate
	if c.vals == nil {
		c.vals = make([]float64, len(c.channels))
	}
	r := row{vals: c.vals}
rows:
	for n := 0; n < c.opt.FrameSamples; n++ {
		if len(c.ahead) > 0 {
			r = c.ahead[0]
			c.ahead = c.ahead[1:]
		} else {
			var err error
			if r, err = c.readRow(c.vals); err != nil {
				var bad *RowError
				switch {
				case errors.Is(err, io.EOF) && n > 0:
					break rows
				case errors.As(err, &bad) && c.opt.BadRow != nil:
					c.opt.BadRow(err)
					if n > 0 {
						break rows
					}
					n-- // nothing in this frame yet: read on
					continue
				}
				return err
			}
		}
		switch {
		case n == 0 && c.timeCol < 0:
			// Without a time column only a frame's first row needs its
			// time, from its row number.
			f.T0 = c.start + int64(math.Round(float64(c.n-1)*1e6/c.rate))
		case n == 0:
			f.T0 = r.t
		case c.timeCol < 0:
			// Times come from the rate alone, so there are no jumps.
		case math.Abs(float64(r.t-f.T0-int64(float64(n)*period))) > 1.5*period:
			// A jump in time: this row starts the next frame.
			c.ahead = append(c.ahead, row{t: r.t, vals: append([]float64(nil), r.vals...)})
			break rows
		}
		for i := range f.Data {
			f.Data[i] = append(f.Data[i], r.vals[i])
		}
	}
	c.seq++
	return nil
}

// startFrame readies f, reusing its memory, for the samples of the next
// frame: header fields set, one empty row per channel.
func startFrame(f *wire.EMGFrame, channels []wire.Channel, rate float64, seq uint32) {
	f.Rate, f.Unit, f.Seq = rate, wire.Microvolt, seq
	f.Channels = append(f.Channels[:0], channels...)
	if cap(f.Data) < len(channels) {
		f.Data = make([][]float64, len(channels))
	}
	f.Data = f.Data[:len(channels)]
	for i := range f.Data {
		f.Data[i] = f.Data[i][:0]
	}
}

// readRow parses one data row into vals (reused).
func (c *CSVReader) readRow(vals []float64) (row, error) {
	if cap(vals) < len(c.channels) {
		vals = make([]float64, len(c.channels))
	}
	vals = vals[:len(c.channels)]
	r := row{vals: vals}
	if t, ok := c.scanRow(vals); ok {
		r.t = t
	} else if err := c.readRowSlow(&r); err != nil {
		if _, ok := err.(*RowError); ok {
			c.n++ // the row held a sample: without a time column, later rows keep their times
		}
		return row{}, err
	}
	c.n++
	if c.timeCol >= 0 {
		if r.t < 1e15 { // below 1e9 s: relative seconds
			r.t += c.start
		}
	}
	return r, nil
}

// scanRow parses the row at the read position in a single pass over its
// bytes, the path nearly every row of a recording takes: plain decimals
// separated by commas, ending in a newline. It reports false, consuming
// nothing, for anything else (blank lines, spaces, exponents, errors, a row
// cut by the end of the buffer); readRowSlow then handles the row.
func (c *CSVReader) scanRow(vals []float64) (t int64, ok bool) {
	b := c.buf[c.pos:c.end]
	i, ch := 0, 0
	for col := range c.ncols {
		if col == c.timeCol {
			if t, i, ok = scanMicros(b, i); !ok {
				return 0, false
			}
		} else {
			var v float64
			if v, i, ok = scanFloat(b, i); !ok {
				return 0, false
			}
			vals[ch] = v * c.scale
			ch++
		}
		if i >= len(b) {
			return 0, false
		}
		if col < c.ncols-1 {
			if b[i] != ',' {
				return 0, false
			}
			i++
			continue
		}
		if b[i] == '\r' {
			if i++; i >= len(b) {
				return 0, false
			}
		}
		if b[i] != '\n' {
			return 0, false
		}
		i++
	}
	c.pos += i
	c.line++
	return t, true
}

// readRowSlow parses one row field by field, skipping blank lines and
// accepting surrounding spaces and every number form strconv knows. It
// also gives the errors.
func (c *CSVReader) readRowSlow(r *row) error {
	line, err := c.nextLine()
	for err == nil && len(bytes.TrimSpace(line)) == 0 {
		line, err = c.nextLine()
	}
	if err != nil {
		return err
	}
	c.fields = splitFields(line, c.fields)
	if len(c.fields) != c.ncols {
		return &RowError{Line: c.line, Msg: fmt.Sprintf("%d columns, header has %d", len(c.fields), c.ncols)}
	}
	for i, col := range c.chanCol {
		v, err := parseFloat(c.fields[col])
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return &RowError{Line: c.line, Msg: fmt.Sprintf("column %d: not a finite number: %q", col+1, c.fields[col])}
		}
		r.vals[i] = v * c.scale
	}
	if c.timeCol >= 0 {
		us, err := parseMicros(c.fields[c.timeCol])
		if err != nil {
			return &RowError{Line: c.line, Msg: fmt.Sprintf("bad time %q", c.fields[c.timeCol])}
		}
		r.t = us
	}
	return nil
}

// bufSize is the size of the read buffer and so the longest line accepted.
const bufSize = 1 << 20

// nextLine returns the next line without its line ending; the slice is
// valid until the next call.
func (c *CSVReader) nextLine() ([]byte, error) {
	for {
		if i := bytes.IndexByte(c.buf[c.pos:c.end], '\n'); i >= 0 {
			line := c.buf[c.pos : c.pos+i]
			c.pos += i + 1
			c.line++
			if n := len(line); n > 0 && line[n-1] == '\r' {
				line = line[:n-1]
			}
			return line, nil
		}
		if err := c.fill(); err != nil {
			return nil, err
		}
	}
}

// fill moves the unread bytes to the front of the buffer and reads more.
// At the end of the input it ends an unterminated last line with a
// newline, so every line the parsers see has one.
func (c *CSVReader) fill() error {
	if c.eof {
		return io.EOF
	}
	c.end = copy(c.buf, c.buf[c.pos:c.end])
	c.pos = 0
	if c.end >= bufSize {
		return fmt.Errorf("replay: line %d longer than %d bytes", c.line+1, bufSize)
	}
	for range 100 { // as bufio: a reader that keeps returning nothing is broken
		n, err := c.src.Read(c.buf[c.end:bufSize])
		c.end += n
		if errors.Is(err, io.EOF) {
			c.eof = true
			if c.end > 0 && c.buf[c.end-1] != '\n' {
				c.buf[c.end] = '\n'
				c.end++
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("replay: read: %w", err)
		}
		if n > 0 {
			return nil
		}
	}
	return fmt.Errorf("replay: read: %w", io.ErrNoProgress)
}

// scanFloat parses a plain decimal ("-12.375", at most 15 digits) starting
// at b[i], stopping at the first byte that cannot continue it. The result
// equals parseFloat's fast path; ok is false for any other form.
func scanFloat(b []byte, i int) (v float64, next int, ok bool) {
	neg := false
	if i < len(b) && (b[i] == '-' || b[i] == '+') {
		neg = b[i] == '-'
		i++
	}
	var mant uint64
	digits, frac := 0, 0
	for ; i < len(b) && b[i]-'0' < 10; i++ {
		mant = mant*10 + uint64(b[i]-'0')
		digits++
	}
	if i < len(b) && b[i] == '.' {
		for i++; i < len(b) && b[i]-'0' < 10; i++ {
			mant = mant*10 + uint64(b[i]-'0')
			digits++
			frac++
		}
	}
	if digits == 0 || digits > 15 {
		return 0, i, false
	}
	v = float64(mant) / pow10[frac]
	if neg {
		v = -v
	}
	return v, i, true
}

// scanMicros parses plain non-negative seconds starting at b[i] into
// microseconds, as parseMicros does; ok is false for any other form.
func scanMicros(b []byte, i int) (us int64, next int, ok bool) {
	start, digits := i, 0
	for ; i < len(b) && b[i]-'0' < 10; i++ {
		us = us*10 + int64(b[i]-'0')
		digits++
	}
	if i-start > 12 {
		return 0, i, false
	}
	us *= 1e6
	if i < len(b) && b[i] == '.' {
		scale := int64(1e5)
		for k := 0; ; k++ {
			if i++; i >= len(b) || b[i]-'0' >= 10 {
				break
			}
			digits++
			switch d := int64(b[i] - '0'); {
			case k < 6:
				us += d * scale
				scale /= 10
			case k == 6 && d >= 5:
				us++ // round half up at the seventh decimal
			}
		}
	}
	return us, i, digits > 0
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

// asciiSpace is the white space allowed around a field.
const asciiSpace = " \t\r\n\v\f"

// trim removes surrounding ASCII white space; most fields have none, so it
// checks the two ends before doing any work.
func trim(b []byte) []byte {
	if len(b) > 0 && (b[0] <= ' ' || b[len(b)-1] <= ' ') {
		return bytes.Trim(b, asciiSpace)
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

package replay

import (
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/crampwatch/crampwatch/wire"
)

func TestCSVReader(t *testing.T) {
	start := time.Date(2026, 11, 27, 23, 0, 0, 0, time.UTC)
	tests := []struct {
		name      string
		csv       string
		opt       Options
		frames    []int // samples per frame
		t0        []int64
		first     float64
		rate      float64
		channels  string
		wantError string
	}{
		{
			name: "rate, no time column", csv: "calf_left\n1\n2\n3\n4\n5\n",
			opt: Options{Rate: 1000, Start: start, FrameSamples: 2}, frames: []int{2, 2, 1},
			t0: []int64{start.UnixMicro(), start.UnixMicro() + 2000, start.UnixMicro() + 4000}, first: 1, rate: 1000, channels: "calf_left",
		},
		{
			name: "relative time column finds the rate", csv: "time,calf_left,calf_right\n0,1,10\n0.002,2,20\n0.004,3,30\n",
			opt: Options{Start: start, FrameSamples: 10}, frames: []int{3}, t0: []int64{start.UnixMicro()}, first: 1, rate: 500, channels: "calf_left,calf_right",
		},
		{
			name: "millivolts", csv: "calf_left\r\n0.5\r\n",
			opt: Options{Rate: 250, Unit: wire.Millivolt}, frames: []int{1}, t0: []int64{0}, first: 500, rate: 250, channels: "calf_left",
		},
		{
			name: "a time jump starts a new frame", csv: "t,calf_left\n1700000000,1\n1700000000.001,2\n1700000005,3\n1700000005.001,4\n",
			opt: Options{FrameSamples: 10}, frames: []int{2, 2}, t0: []int64{1700000000000000, 1700000005000000}, first: 1, rate: 1000, channels: "calf_left",
		},
		{name: "no channel", csv: "time\n0\n", wantError: "no channel"},
		{name: "unknown column", csv: "calf_left,elbow_left\n", opt: Options{Rate: 1000}, wantError: "column 2"},
		{name: "no rate", csv: "calf_left\n1\n", wantError: "sample rate must be given"},
		{name: "rate out of range", csv: "calf_left\n1\n", opt: Options{Rate: 100}, wantError: "outside 250-4000"},
		{name: "ragged row", csv: "calf_left,calf_right\n1,2\n3\n", opt: Options{Rate: 1000}, wantError: "line 3: 1 columns"},
		{name: "NaN", csv: "calf_left\nNaN\n", opt: Options{Rate: 1000}, wantError: "not a finite number"},
		{name: "text", csv: "calf_left\nabc\n", opt: Options{Rate: 1000}, wantError: "not a finite number"},
		{name: "time goes back", csv: "time,calf_left\n1,1\n0.5,2\n", wantError: "does not increase"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := NewCSVReader(strings.NewReader(tc.csv), tc.opt)
			var frames []wire.EMGFrame
			if err == nil {
				frames, err = readAllErr(r)
			}
			if tc.wantError != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantError) {
					t.Fatalf("err = %v, want %q", err, tc.wantError)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.Rate() != tc.rate {
				t.Errorf("rate %v, want %v", r.Rate(), tc.rate)
			}
			var got []int
			var t0 []int64
			for _, f := range frames {
				got = append(got, f.Len())
				t0 = append(t0, f.T0)
				if fmt.Sprint(f.Channels) != fmt.Sprint(r.Channels()) {
					t.Errorf("frame channels %v", f.Channels)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.frames) || fmt.Sprint(t0) != fmt.Sprint(tc.t0) {
				t.Errorf("frames %v at %v, want %v at %v", got, t0, tc.frames, tc.t0)
			}
			if v := frames[0].Data[0][0]; math.Abs(v-tc.first) > 1e-9 {
				t.Errorf("first sample %v, want %v", v, tc.first)
			}
			var names []string
			for _, c := range r.Channels() {
				names = append(names, c.String())
			}
			if strings.Join(names, ",") != tc.channels {
				t.Errorf("channels %v", names)
			}
		})
	}
}

func readAllErr(r *CSVReader) ([]wire.EMGFrame, error) {
	var out []wire.EMGFrame
	for {
		var f wire.EMGFrame
		err := r.Next(&f)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, f)
	}
}

// repeatReader serves a header and then the same block of rows n times.
type repeatReader struct {
	header, block []byte
	n, off        int
	headerDone    bool
}

func (r *repeatReader) Read(p []byte) (int, error) {
	if !r.headerDone {
		r.headerDone = true
		return copy(p, r.header), nil
	}
	if r.n == 0 {
		return 0, io.EOF
	}
	k := copy(p, r.block[r.off:])
	r.off += k
	if r.off == len(r.block) {
		r.off, r.n = 0, r.n-1
	}
	return k, nil
}

// BenchmarkCSVReader reads one channel at 1 kHz; samples/s is the figure
// that decides whether 8 hours replay in under 2 s.
func BenchmarkCSVReader(b *testing.B) {
	var block strings.Builder
	for i := range 1000 {
		fmt.Fprintf(&block, "%.3f\n", 5*math.Sin(float64(i)))
	}
	b.ReportAllocs()
	samples := 0
	for b.Loop() {
		r, err := NewCSVReader(&repeatReader{header: []byte("calf_left\n"), block: []byte(block.String()), n: 60}, Options{Rate: 1000})
		if err != nil {
			b.Fatal(err)
		}
		var f wire.EMGFrame
		for r.Next(&f) == nil {
			samples += f.Len()
		}
	}
	b.ReportMetric(float64(samples)/b.Elapsed().Seconds(), "samples/s")
}

func TestParseFloatMatchesStrconv(t *testing.T) {
	for _, s := range []string{"0", "-0", "1", "-1.5", "12.375", "+3.25", "0.1", "123456789012345", "1234567890.12345", "1e3", "-2.5E-3", ".5", "5.", " 7.25 ", "1234567890123456789", "0.000000000000001"} {
		want, werr := strconv.ParseFloat(strings.Trim(s, asciiSpace), 64)
		got, err := parseFloat([]byte(s))
		if (err != nil) != (werr != nil) || got != want {
			t.Errorf("parseFloat(%q) = %v, %v; strconv says %v, %v", s, got, err, want, werr)
		}
	}
	for _, s := range []string{"", "-", ".", "1..2", "abc", "1-2"} {
		if _, err := parseFloat([]byte(s)); err == nil {
			t.Errorf("parseFloat(%q): no error", s)
		}
	}
}

func FuzzParseFloat(f *testing.F) {
	for _, s := range []string{"1.5", "-0.001", "1e5", "abc", "123456789.123456"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, werr := strconv.ParseFloat(strings.Trim(s, asciiSpace), 64)
		got, err := parseFloat([]byte(s))
		if werr == nil && (err != nil || got != want) {
			t.Fatalf("parseFloat(%q) = %v, %v; strconv %v", s, got, err, want)
		}
		if werr != nil && err == nil && !math.IsNaN(got) {
			// The fast path must not accept what strconv refuses.
			t.Fatalf("parseFloat(%q) = %v, strconv refuses: %v", s, got, werr)
		}
		// The row scanner's in-place parser must agree wherever it accepts.
		if v, n, ok := scanFloat([]byte(s), 0); ok && n == len(s) && (werr != nil || v != want) {
			t.Fatalf("scanFloat(%q) = %v; strconv %v, %v", s, v, want, werr)
		}
	})
}

func FuzzScanMicros(f *testing.F) {
	for _, s := range []string{"1795820400.039492", "0", ".5", "12.", "1.0000005", "1e3", "-1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		us, n, ok := scanMicros([]byte(s), 0)
		if !ok || n != len(s) {
			return
		}
		want, err := parseMicros([]byte(s))
		if err != nil || us != want {
			t.Fatalf("scanMicros(%q) = %d; parseMicros %d, %v", s, us, want, err)
		}
	})
}

// TestCSVReaderByteByByte reads a file one byte per Read, so every row is
// cut by the end of the buffer at every place, and compares the frames
// with those read in one piece.
func TestCSVReaderByteByByte(t *testing.T) {
	var b strings.Builder
	b.WriteString("time,calf_left,calf_right\r\n")
	for i := range 2500 {
		fmt.Fprintf(&b, "%.6f,%.2f,%g\r\n", 1795820400+float64(i)/1000, 100*math.Sin(float64(i)), -float64(i)/7)
	}
	b.WriteString("1795820402.500000,1,2") // no final newline
	opt := Options{FrameSamples: 64}
	read := func(r io.Reader) (string, int) {
		c, err := NewCSVReader(r, opt)
		if err != nil {
			t.Fatal(err)
		}
		frames, err := readAllErr(c)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, f := range frames {
			n += f.Len()
		}
		return fmt.Sprint(frames), n
	}
	whole, n := read(strings.NewReader(b.String()))
	bytewise, _ := read(iotest.OneByteReader(strings.NewReader(b.String())))
	if whole != bytewise {
		t.Error("frames differ when read one byte at a time")
	}
	if n != 2501 {
		t.Errorf("%d samples, want 2501 (the last row has no newline)", n)
	}
}

func FuzzCSVReader(f *testing.F) {
	f.Add("time,calf_left\n0,1\n0.001,2\n0.002,3\n", 0.0)
	f.Add("calf_left,calf_right\n1,2\n3,4\n", 1000.0)
	f.Add("calf_left\n\n\n1\n", 250.0)
	f.Fuzz(func(t *testing.T, csv string, rate float64) {
		r, err := NewCSVReader(strings.NewReader(csv), Options{Rate: rate})
		if err != nil {
			return
		}
		var f wire.EMGFrame
		for range 1000 {
			if err := r.Next(&f); err != nil {
				return
			}
			if f.Len() == 0 || len(f.Data) != len(f.Channels) {
				t.Fatalf("bad frame: %d samples, %d rows, %d channels", f.Len(), len(f.Data), len(f.Channels))
			}
			for _, row := range f.Data {
				if len(row) != f.Len() {
					t.Fatal("ragged frame")
				}
				for _, v := range row {
					if math.IsNaN(v) || math.IsInf(v, 0) {
						t.Fatal("non-finite sample")
					}
				}
			}
		}
	})
}

func TestParseMicros(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"1795820400.039492", 1795820400039492, true},
		{"0", 0, true},
		{"0.001", 1000, true},
		{"12.", 12000000, true},
		{".5", 500000, true},
		{"1.0000005", 1000001, true},
		{"1.0000004", 1000000, true},
		{"1.5e3", 1500000000, true},
		{"-1", 0, false},
		{"abc", 0, false},
		{"", 0, false},
		{"1.2.3", 0, false},
	}
	for _, tc := range tests {
		got, err := parseMicros([]byte(tc.in))
		if (err == nil) != tc.ok || (tc.ok && got != tc.want) {
			t.Errorf("parseMicros(%q) = %d, %v; want %d ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestCSVReaderSkipsBadRows(t *testing.T) {
	start := time.Date(2026, 11, 27, 23, 0, 0, 0, time.UTC).UnixMicro()
	tests := []struct {
		name    string
		csv     string
		opt     Options
		frames  []int
		t0      []int64
		badLine []int
	}{
		{
			name: "rate: a bad row keeps its sample slot", csv: "calf_left\n1\n2\nabc\n4\n5\n",
			opt: Options{Rate: 1000, FrameSamples: 10}, frames: []int{2, 2}, t0: []int64{0, 3000}, badLine: []int{4},
		},
		{
			name: "rate: bad first row of a frame", csv: "calf_left\n1\n2\n1e400\n4\n",
			opt: Options{Rate: 1000, FrameSamples: 2}, frames: []int{2, 1}, t0: []int64{0, 3000}, badLine: []int{4},
		},
		{
			name: "time: bad sample, bad time, ragged row",
			csv:  "time,calf_left\n0,1\n0.001,2\n0.002,x\n0.003,4\n1:00,5\n0.004,6\n0.005,7,8\n0.006,9\n",
			opt:  Options{FrameSamples: 10}, frames: []int{2, 1, 1, 1}, t0: []int64{start, start + 3000, start + 4000, start + 6000}, badLine: []int{4, 6, 8},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var bad []int
			tc.opt.BadRow = func(err error) {
				var re *RowError
				if !errors.As(err, &re) {
					t.Fatalf("BadRow got %T %v", err, err)
				}
				bad = append(bad, re.Line)
			}
			if tc.opt.Rate == 0 {
				tc.opt.Start = time.UnixMicro(start)
			}
			r, err := NewCSVReader(strings.NewReader(tc.csv), tc.opt)
			if err != nil {
				t.Fatal(err)
			}
			frames, err := readAllErr(r)
			if err != nil {
				t.Fatal(err)
			}
			var got []int
			var t0 []int64
			for _, f := range frames {
				got = append(got, f.Len())
				t0 = append(t0, f.T0)
			}
			if fmt.Sprint(got, t0, bad) != fmt.Sprint(tc.frames, tc.t0, tc.badLine) {
				t.Errorf("frames %v at %v, bad lines %v; want %v at %v, %v", got, t0, bad, tc.frames, tc.t0, tc.badLine)
			}
		})
	}
}

// BenchmarkCSVReaderTimeColumn reads one channel at 1 kHz with a Unix time
// column, the form `crampwatch sim --csv` writes.
func BenchmarkCSVReaderTimeColumn(b *testing.B) {
	var block strings.Builder
	for i := range 1000 {
		fmt.Fprintf(&block, "%.6f,%.2f\n", 1795820400+float64(i)/1000, 5*math.Sin(float64(i)))
	}
	b.ReportAllocs()
	samples := 0
	for b.Loop() {
		r, err := NewCSVReader(&repeatReader{header: []byte("time,calf_left\n"), block: []byte(block.String()), n: 60}, Options{})
		if err != nil {
			b.Fatal(err)
		}
		var f wire.EMGFrame
		for r.Next(&f) == nil {
			samples += f.Len()
		}
	}
	b.ReportMetric(float64(samples)/b.Elapsed().Seconds(), "samples/s")
}

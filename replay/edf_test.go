package replay

import (
	"bytes"
	"errors"
	"io"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/crampwatch/crampwatch/edf"
	"github.com/crampwatch/crampwatch/wire"
)

// edfFile writes an EDF+D file whose signals have the given labels,
// dimensions and samples per 0.5 s record; sample j of record r of every
// signal is r*1000+j (in the signal's dimension).
func edfFile(t *testing.T, labels, dims []string, samples []int, starts []time.Duration) []byte {
	t.Helper()
	h := edf.Header{Format: edf.EDFPlusD, Start: time.Date(2026, 11, 27, 23, 0, 0, 0, time.UTC),
		Records: len(starts), RecordDuration: 500 * time.Millisecond}
	for i, l := range labels {
		h.Signals = append(h.Signals, edf.Signal{Label: l, Dimension: dims[i], PhysMin: -32768, PhysMax: 32767,
			DigMin: -32768, DigMax: 32767, Samples: samples[i]})
	}
	h.Signals = append(h.Signals, edf.Signal{Annotation: true, Samples: 20})
	var b bytes.Buffer
	w, err := edf.NewWriter(&b, h)
	if err != nil {
		t.Fatal(err)
	}
	rec := make([][]float64, len(h.Signals))
	for r, at := range starts {
		for i := range labels {
			rec[i] = rec[i][:0]
			for j := range samples[i] {
				rec[i] = append(rec[i], float64(r*1000+j))
			}
		}
		if err := w.WriteRecord(at, rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestChannelForLabel(t *testing.T) {
	for _, tc := range []struct {
		label string
		want  string
	}{
		{"calf_left", "calf_left"},
		{"EMG calf_left", "calf_left"},
		{" Calf-Right ", "calf_right"},
		{"EMG-hamstring left", "hamstring_left"},
		{"EEG C3-A2", ""},
		{"EMG", ""},
	} {
		ch, ok := ChannelForLabel(tc.label)
		if got := ch.String(); !ok && tc.want != "" || ok && got != tc.want {
			t.Errorf("ChannelForLabel(%q) = %v, %v; want %q", tc.label, got, ok, tc.want)
		}
	}
}

func TestEDFReader(t *testing.T) {
	s0 := time.Date(2026, 11, 27, 23, 0, 0, 0, time.UTC).UnixMicro()
	contiguous := []time.Duration{0, 500 * time.Millisecond, time.Second}
	gapped := []time.Duration{0, 500 * time.Millisecond, 3 * time.Second}
	for _, tc := range []struct {
		name      string
		labels    []string
		dims      []string
		samples   []int // per 0.5 s record
		starts    []time.Duration
		opt       EDFOptions
		frames    []int   // samples per frame
		t0        []int64 // from s0, µs
		first     []float64
		channels  string
		ignored   string
		wantError string
	}{
		{
			name: "frames run across records", labels: []string{"EMG calf_left"}, dims: []string{"uV"}, samples: []int{500},
			starts: contiguous, opt: EDFOptions{FrameSamples: 300},
			frames: []int{300, 300, 300, 300, 300}, t0: []int64{0, 300_000, 600_000, 900_000, 1_200_000},
			first: []float64{0, 300, 1100, 1400, 2200}, channels: "calf_left",
		},
		{
			name: "gap between EDF+D records ends the frame", labels: []string{"calf_left"}, dims: []string{"uV"}, samples: []int{500},
			starts: gapped, opt: EDFOptions{FrameSamples: 300},
			frames: []int{300, 300, 300, 100, 300, 200}, t0: []int64{0, 300_000, 600_000, 900_000, 3_000_000, 3_300_000},
			first: []float64{0, 300, 1100, 1400, 2000, 2300}, channels: "calf_left",
		},
		{
			name: "units, mapping, ignored signals", labels: []string{"Lab X", "EEG C3", "EMG calf-right"}, dims: []string{"mV", "uV", "V"},
			samples: []int{500, 100, 500}, starts: contiguous[:1],
			opt:    EDFOptions{Labels: map[string]wire.Channel{"Lab X": {Muscle: wire.Calf, Side: wire.Left}}},
			frames: []int{100, 100, 100, 100, 100}, t0: []int64{0, 100_000, 200_000, 300_000, 400_000},
			first: []float64{0, 100_000, 200_000, 300_000, 400_000}, channels: "calf_left,calf_right", ignored: "EEG C3",
		},
		{
			name: "--unit overrides the dimension", labels: []string{"calf_left"}, dims: []string{"arb"}, samples: []int{500},
			starts: contiguous[:1], opt: EDFOptions{Scale: 1000, FrameSamples: 500, Start: time.UnixMicro(s0 + 7)},
			frames: []int{500}, t0: []int64{7}, first: []float64{0}, channels: "calf_left",
		},
		{
			name: "unknown unit", labels: []string{"calf_left"}, dims: []string{"arb"}, samples: []int{500},
			starts: contiguous[:1], wantError: `unit "arb"`,
		},
		{
			name: "rates differ", labels: []string{"calf_left", "calf_right"}, dims: []string{"uV", "uV"}, samples: []int{500, 250},
			starts: contiguous[:1], wantError: "share one rate",
		},
		{
			name: "rate too low", labels: []string{"calf_left"}, dims: []string{"uV"}, samples: []int{100},
			starts: contiguous[:1], wantError: "outside 250-4000",
		},
		{
			name: "nothing mapped", labels: []string{"EEG C3"}, dims: []string{"uV"}, samples: []int{500},
			starts: contiguous[:1], wantError: "no EDF signal maps",
		},
		{
			name: "two signals, one channel", labels: []string{"calf_left", "EMG calf_left"}, dims: []string{"uV", "uV"}, samples: []int{500, 500},
			starts: contiguous[:1], wantError: "both channel calf_left",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := edfFile(t, tc.labels, tc.dims, tc.samples, tc.starts)
			r, err := NewEDFReader(bytes.NewReader(data), tc.opt)
			if tc.wantError != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantError) {
					t.Fatalf("err = %v, want %q", err, tc.wantError)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, c := range r.Channels() {
				names = append(names, c.String())
			}
			if got := strings.Join(names, ","); got != tc.channels {
				t.Errorf("channels %s, want %s", got, tc.channels)
			}
			if got := strings.Join(r.Ignored(), ","); got != tc.ignored {
				t.Errorf("ignored %q, want %q", got, tc.ignored)
			}
			var f wire.EMGFrame
			for i := 0; ; i++ {
				err := r.Next(&f)
				if errors.Is(err, io.EOF) {
					if i != len(tc.frames) {
						t.Fatalf("%d frames, want %d", i, len(tc.frames))
					}
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				if i >= len(tc.frames) {
					t.Fatalf("more than %d frames", len(tc.frames))
				}
				if f.Len() != tc.frames[i] || f.T0-s0 != tc.t0[i] || f.Seq != uint32(i) || f.Rate != 1000 {
					t.Errorf("frame %d: %d samples at %d seq %d rate %v; want %d at %d", i, f.Len(), f.T0-s0, f.Seq, f.Rate, tc.frames[i], tc.t0[i])
				}
				if v := f.Data[0][0]; math.Abs(v-tc.first[i]) > 1e-6 {
					t.Errorf("frame %d: first sample %v, want %v", i, v, tc.first[i])
				}
			}
		})
	}
}

// TestEDFReaderAllocs checks that frames cost no allocation once the
// frame's memory has grown, however many records are read.
func TestEDFReaderAllocs(t *testing.T) {
	starts := make([]time.Duration, 400)
	for i := range starts {
		starts[i] = time.Duration(i) * 500 * time.Millisecond
	}
	data := edfFile(t, []string{"calf_left", "calf_right"}, []string{"uV", "uV"}, []int{500, 500}, starts)
	r, err := NewEDFReader(bytes.NewReader(data), EDFOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var f wire.EMGFrame
	if err := r.Next(&f); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(1000, func() {
		if err := r.Next(&f); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per frame, want 0", allocs)
	}
}

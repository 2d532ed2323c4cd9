package firmwaresim

import (
	"math"
	"slices"
	"testing"
	"time"

	"github.com/crampwatch/crampwatch/wire"
)

var testStart = time.Date(2025, 11, 24, 22, 30, 0, 0, time.UTC)

// quiet returns sc with every event, artifact and transport fault switched off.
func quiet(sc Scenario) Scenario {
	sc.Cramps.PerNight, sc.Cramps.EveryS = 0, 0
	sc.PLM.SeriesPerNight, sc.PLM.IsolatedPerNight = 0, 0
	sc.Movements.TurnsPerNight, sc.Movements.GetUpsPerNight, sc.Movements.StretchesPerNight = 0, 0, 0
	sc.Artifacts = ArtifactConfig{
		LeadOffS: Range{1, 1}, FlatS: Range{1, 1}, SaturationS: Range{1, 1},
		HumS: Range{1, 1}, HumUV: Range{1, 1}, GapS: Range{1, 1},
	}
	sc.Transport = TransportConfig{}
	return sc
}

// recording is a decoded night: every EMG sample of every channel in order
// (lost frames leave NaN), every IMU and status frame.
type recording struct {
	rate    float64
	emg     [][]float64 // per channel, indexed by sample number since start
	emgSeqs []uint32
	emgT0   []int64
	emgEnds []int64
	imu     []wire.IMUFrame
	status  []wire.StatusFrame
	msgs    int
	dups    int
}

// record runs d to the end of the night through the wire decoder, failing
// the test on any rejected frame.
func record(t testing.TB, d *Device) *recording {
	t.Helper()
	dec := wire.NewDecoder(0)
	r := &recording{rate: d.sc.Rate, emg: make([][]float64, len(d.chans))}
	total := int(d.emgTotal) * d.emg.frameLen
	for i := range r.emg {
		r.emg[i] = slices.Repeat([]float64{math.NaN()}, total)
	}
	var buf, prev []byte
	var f wire.EMGFrame
	for {
		m, ok := d.Next(buf)
		if !ok {
			break
		}
		buf = m.Payload
		r.msgs++
		if slices.Equal(prev, m.Payload) {
			r.dups++
			continue
		}
		prev = append(prev[:0], m.Payload...)
		switch m.Stream {
		case wire.StreamEMG:
			if err := dec.DecodeEMG(m.Payload, &f); err != nil {
				t.Fatalf("EMG frame rejected: %v", err)
			}
			n0 := int(f.Seq) * d.emg.frameLen
			for ci, row := range f.Data {
				copy(r.emg[ci][n0:], row)
			}
			r.emgSeqs = append(r.emgSeqs, f.Seq)
			r.emgT0 = append(r.emgT0, f.T0)
			r.emgEnds = append(r.emgEnds, m.End)
		case wire.StreamIMU:
			var g wire.IMUFrame
			if err := dec.DecodeIMU(m.Payload, &g); err != nil {
				t.Fatalf("IMU frame rejected: %v", err)
			}
			r.imu = append(r.imu, g)
		case wire.StreamStatus:
			var s wire.StatusFrame
			if err := dec.DecodeStatus(m.Payload, &s); err != nil {
				t.Fatalf("status frame rejected: %v", err)
			}
			s.LeadOff = slices.Clone(s.LeadOff)
			r.status = append(r.status, s)
		default:
			t.Fatalf("unexpected stream %v", m.Stream)
		}
	}
	if err := d.Err(); err != nil {
		t.Fatal(err)
	}
	return r
}

// segment returns channel ci's samples in [a, b) seconds since start.
func (r *recording) segment(ci int, a, b float64) []float64 {
	return r.emg[ci][int(a*r.rate):int(b*r.rate)]
}

// sec converts a truth time to seconds since testStart.
func sec(t time.Time) float64 { return t.Sub(testStart).Seconds() }

func rms(x []float64) float64 {
	s, n := 0.0, 0
	for _, v := range x {
		if !math.IsNaN(v) {
			s += v * v
			n++
		}
	}
	return math.Sqrt(s / float64(n))
}

package detect

import (
	"math/rand/v2"
	"testing"

	"github.com/crampwatch/crampwatch/wire"
)

type discard struct{ n int }

func (d *discard) Event(Event)       { d.n++ }
func (d *discard) Envelope(Envelope) {}
func (d *discard) Motion(Motion)     {}

// benchFrames is a minute of resting EMG with a few bursts, cut in 100 ms
// frames, replayed cyclically with advancing time.
func benchFrames(rate float64, chans []wire.Channel) [][][]float64 {
	rng := rand.New(rand.NewPCG(1, 2))
	frameLen := int(rate / 10)
	frames := make([][][]float64, 600)
	sh := newShaped(rate)
	for f := range frames {
		frames[f] = make([][]float64, len(chans))
		for c := range chans {
			row := make([]float64, frameLen)
			amp := 0.0
			if f%250 >= 100 && f%250 < 120 { // a 2 s burst every 25 s
				amp = 40
			}
			for i := range row {
				row[i] = 3*rng.NormFloat64() + amp*sh.next(rng.NormFloat64())
			}
			frames[f][c] = row
		}
	}
	return frames
}

func benchEMG(b *testing.B, rate float64, chans []wire.Channel, sites []wire.Site) {
	frames := benchFrames(rate, chans)
	frameLen := len(frames[0][0])
	out := &discard{}
	d := New("bench", DefaultConfig(), out)
	emg := &wire.EMGFrame{Rate: rate, Unit: wire.Microvolt, Channels: chans}
	imu := &wire.IMUFrame{Rate: 50, Acc: make([][3]float64, 5), Gyr: make([][3]float64, 5)}
	for i := range imu.Acc {
		imu.Acc[i] = [3]float64{0.01, 0.02, 1}
	}
	var k int
	step := func() {
		emg.Seq++
		emg.T0 = t0 + wire.SpanMicros(k*frameLen, rate)
		emg.Data = frames[k%len(frames)]
		for _, s := range sites {
			imu.Seq++
			imu.T0 = t0 + int64(k)*100_000
			imu.Site = s
			d.IMU(imu)
		}
		d.EMG(emg)
		k++
	}
	// Warm up past the baseline warm-up so the steady state is measured.
	for range 1200 {
		step()
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		step()
	}
	b.ReportMetric(float64(b.N*frameLen*len(chans))/b.Elapsed().Seconds(), "samples/s")
}

// BenchmarkChannelChain is one channel at 1 kHz in 100 ms frames: band-pass,
// notch, envelope, baseline, spectra and state machine.
func BenchmarkChannelChain(b *testing.B) {
	benchEMG(b, 1000, []wire.Channel{calfL}, nil)
}

// BenchmarkDetectorFrame is a typical device: two calves at 1 kHz and two
// shank IMUs at 50 Hz.
func BenchmarkDetectorFrame(b *testing.B) {
	benchEMG(b, 1000, []wire.Channel{calfL, calfR}, []wire.Site{shankL, shankR})
}

// BenchmarkChannelChain4k is the chain at the highest accepted rate.
func BenchmarkChannelChain4k(b *testing.B) {
	benchEMG(b, 4000, []wire.Channel{calfL}, nil)
}

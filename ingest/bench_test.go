package ingest

import (
	"context"
	"fmt"
	"testing"

	"github.com/crampwatch/crampwatch/wire"
)

// benchRouter feeds b.N pre-encoded frames of one stream (100 ms
// two-channel 1 kHz EMG, or 100 ms 50 Hz IMU) through a whole router (queue,
// shard goroutines, decode, sequencing, delivery to a handler that does
// nothing) and waits for them all.
//
// Payloads cannot be patched in place (binary frames carry a CRC), so a
// ring of frames is encoded up front and each pass over it goes to a new
// device id; the per-device setup is thus amortised over the ring's length.
// perDevice is how many of these frames a device sends per second.
func benchRouter(b *testing.B, stream wire.Stream, perDevice float64, encode func(seq uint32, slot int64) []byte) {
	const ring = 4096
	payloads := make([][]byte, ring)
	for i := range payloads {
		payloads[i] = encode(uint32(i), int64(i))
	}
	var topics []string
	for lap := 0; lap*ring < b.N; lap++ {
		topics = append(topics, topic(fmt.Sprintf("bench-%d", lap), stream))
	}
	ctx := context.Background()
	b.SetBytes(int64(len(payloads[0])))
	b.ReportAllocs()
	b.ResetTimer()
	r := NewRouter(Config{IdleTimeout: -1}, nopHandler{}, nil, nil)
	for i := 0; i < b.N; i++ {
		if err := r.Feed(ctx, topics[i/ring], payloads[i%ring]); err != nil {
			b.Fatal(err)
		}
	}
	r.Close()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "frames/s")
	// Realtime devices served by this rate.
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds()/perDevice, "devices")
}

func BenchmarkRouterEMGBinary(b *testing.B) {
	benchRouter(b, wire.StreamEMG, 10, func(seq uint32, slot int64) []byte { return emgBin(b, seq, slot) })
}

func BenchmarkRouterEMGJSON(b *testing.B) {
	benchRouter(b, wire.StreamEMG, 10, emgJSON)
}

// BenchmarkRouterIMUBinaryTwoSites is the IMU stream of a device that
// samples both shanks together: two frames per 100 ms with equal t0.
func BenchmarkRouterIMUBinaryTwoSites(b *testing.B) {
	benchRouter(b, wire.StreamIMU, 20, func(seq uint32, _ int64) []byte {
		site := shankLeft
		if seq%2 == 1 {
			site = shankRight
		}
		p, err := wire.AppendIMUBinary(nil, imuSiteFrame(seq, int64(seq/2), site))
		if err != nil {
			b.Fatal(err)
		}
		return p
	})
}

// BenchmarkSequencerInOrder is the ordering logic alone on the common path.
func BenchmarkSequencerInOrder(b *testing.B) {
	cfg := seqConfig{window: 8, hold: 1_000_000, resync: 32}
	s := &sequencer[tframe]{cfg: &cfg}
	out := &nopSink{}
	f := new(tframe)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		t0 := int64(i) * frameUS
		s.offer(&f, uint32(i), 0, t0, t0+frameUS, out)
	}
}

// BenchmarkSequencerTwoSites is the same with two lanes sharing each t0.
func BenchmarkSequencerTwoSites(b *testing.B) {
	cfg := seqConfig{window: 8, hold: 1_000_000, resync: 32}
	s := &sequencer[tframe]{cfg: &cfg}
	out := &nopSink{}
	f := new(tframe)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		t0 := int64(i/2) * frameUS
		s.offer(&f, uint32(i), uint8(i%2), t0, t0+frameUS, out)
	}
	if out.n != b.N {
		b.Fatalf("delivered %d of %d", out.n, b.N)
	}
}

type nopSink struct{ n int }

func (s *nopSink) deliver(*tframe, int64, int64) { s.n++ }
func (s *nopSink) gap(int, int64, int64)         {}
func (s *nopSink) dropped(drop)                  {}
func (s *nopSink) reset()                        {}
func (s *nopSink) clockJump()                    {}

package ingest

import (
	"context"
	"fmt"
	"testing"

	"github.com/crampwatch/crampwatch/wire"
)

// benchRouter feeds b.N pre-encoded 100 ms two-channel 1 kHz EMG frames
// through a whole router (queue, shard goroutines, decode, sequencing,
// delivery to a handler that does nothing) and waits for them all.
//
// Payloads cannot be patched in place (binary frames carry a CRC), so a
// ring of frames is encoded up front and each pass over it goes to a new
// device id; the per-device setup is thus amortised over the ring's length.
func benchRouter(b *testing.B, encode func(seq uint32, slot int64) []byte) {
	const ring = 4096
	payloads := make([][]byte, ring)
	for i := range payloads {
		payloads[i] = encode(uint32(i), int64(i))
	}
	var topics []string
	for lap := 0; lap*ring < b.N; lap++ {
		topics = append(topics, topic(fmt.Sprintf("bench-%d", lap), wire.StreamEMG))
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
	// Each frame is 100 ms of data: realtime devices served by this rate.
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds()/10, "devices")
}

func BenchmarkRouterEMGBinary(b *testing.B) {
	benchRouter(b, func(seq uint32, slot int64) []byte { return emgBin(b, seq, slot) })
}

func BenchmarkRouterEMGJSON(b *testing.B) {
	benchRouter(b, emgJSON)
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

type nopSink struct{ n int }

func (s *nopSink) deliver(*tframe, int64, int64) { s.n++ }
func (s *nopSink) gap(int, int64, int64)         {}
func (s *nopSink) dropped(drop)                  {}
func (s *nopSink) reset()                        {}
func (s *nopSink) clockJump()                    {}

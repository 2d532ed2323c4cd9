package ingest

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// tframe is a stand-in frame: the sequencer treats frames as opaque, so the
// tests check that the frame delivered is the one offered under that seq.
type tframe struct {
	seq uint32
	t0  int64
}

// frameUS is the duration of every test frame: 100 ms.
const frameUS = 100_000

// in is one arriving frame: sequence number and the index of its time slot
// (t0 = slot * 100 ms), so the tests read like the wire.
type in struct {
	seq  uint32
	slot int64
}

// recorder is a seqSink that writes what happens as short tokens.
type recorder struct {
	t   *testing.T
	log []string
	n   map[string]int
}

func (r *recorder) deliver(f *tframe, t0, end int64) {
	if f.t0 != t0 || end != t0+frameUS {
		r.t.Fatalf("delivered frame seq %d t0 %d with metadata t0 %d end %d", f.seq, f.t0, t0, end)
	}
	r.log = append(r.log, fmt.Sprintf("D%d", f.seq))
	r.n["deliver"]++
}

func (r *recorder) gap(lost int, from, to int64) {
	r.log = append(r.log, fmt.Sprintf("G%d[%d-%d]", lost, from/frameUS, to/frameUS))
	r.n["lost"] += lost
}

func (r *recorder) dropped(why drop) {
	r.log = append(r.log, map[drop]string{dropDuplicate: "dup", dropLate: "late", dropBadTime: "bad"}[why])
	r.n["dropped"]++
}

func (r *recorder) reset()     { r.log = append(r.log, "reset") }
func (r *recorder) clockJump() { r.log = append(r.log, "jump") }

func run(t *testing.T, cfg seqConfig, frames []in) *recorder {
	t.Helper()
	rec := &recorder{t: t, n: map[string]int{}}
	s := &sequencer[tframe]{cfg: &cfg}
	buf := new(tframe)
	for _, f := range frames {
		t0 := f.slot * frameUS
		*buf = tframe{seq: f.seq, t0: t0}
		s.offer(&buf, f.seq, 0, t0, t0+frameUS, rec)
		if len(s.held) > cfg.window+1 {
			t.Fatalf("holding %d frames with window %d", len(s.held), cfg.window)
		}
	}
	s.releaseAll(rec)
	return rec
}

// seqs makes in-order frames whose slot equals their seq.
func seqs(ns ...uint32) []in {
	out := make([]in, len(ns))
	for i, n := range ns {
		out[i] = in{n, int64(n)}
	}
	return out
}

func TestSequencer(t *testing.T) {
	def := seqConfig{window: 3, hold: 1_000_000, resync: 5}
	const top = ^uint32(0)
	tests := []struct {
		name   string
		cfg    seqConfig
		frames []in
		want   string
	}{
		{"in order", def, seqs(1, 2, 3), "D1 D2 D3"},
		{"first frame may start anywhere", def, seqs(500, 501), "D500 D501"},
		{"duplicate of the last frame", def, seqs(1, 2, 2, 3), "D1 D2 dup D3"},
		{"old redelivery", def, seqs(1, 2, 3, 4, 1, 2), "D1 D2 D3 D4 dup dup"},
		{"swapped pair", def, seqs(1, 3, 2, 4), "D1 D2 D3 D4"},
		{"reversed run within window", def, seqs(1, 4, 3, 2, 5), "D1 D2 D3 D4 D5"},
		{"duplicate of a held frame", def, seqs(1, 3, 3, 2), "D1 dup D2 D3"},
		{"gap given up when window overflows", def, seqs(1, 3, 4, 5, 6),
			"D1 G1[2-3] D3 D4 D5 D6"},
		{"gap of three frames", def, seqs(1, 5, 6, 7, 8),
			"D1 G3[2-5] D5 D6 D7 D8"},
		{"gap given up after 1 s of held sample time", seqConfig{window: 100, hold: 1_000_000, resync: 5},
			seqs(1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13),
			"D1 G1[2-3] D3 D4 D5 D6 D7 D8 D9 D10 D11 D12 D13"},
		{"late frame after give-up", seqConfig{window: 1, hold: 1_000_000, resync: 5}, seqs(1, 3, 4, 2, 5),
			"D1 G1[2-3] D3 D4 late D5"},
		{"reordering disabled", seqConfig{window: 0, hold: 1_000_000, resync: 5}, seqs(1, 3, 2, 4),
			"D1 G1[2-3] D3 late D4"},
		{"held frames released at the end", def, seqs(1, 3, 4), "D1 G1[2-3] D3 D4"},
		{"wrap-around", def, []in{{top - 1, 10}, {top, 11}, {0, 12}, {1, 13}}, "D4294967294 D4294967295 D0 D1"},
		{"gap across the wrap", def, []in{{top - 1, 10}, {1, 13}, {2, 14}, {3, 15}, {4, 16}},
			"D4294967294 G2[11-13] D1 D2 D3 D4"},
		{"reorder across the wrap", def, []in{{top, 10}, {1, 12}, {0, 11}}, "D4294967295 D0 D1"},
		{"duplicate across the wrap", def, []in{{top, 10}, {0, 11}, {top, 10}}, "D4294967295 D0 dup"},
		{"reboot: seq back to 0, time forward", def, []in{{100, 1}, {101, 2}, {0, 3}, {1, 4}},
			"D100 D101 reset D0 D1"},
		{"reboot after an outage reports the time hole", def, []in{{100, 1}, {101, 2}, {0, 50}, {1, 51}},
			"D100 D101 reset G0[3-50] D0 D1"},
		{"reboot releases held frames first", def, []in{{5, 5}, {7, 7}, {0, 20}},
			"D5 G1[6-7] D7 reset G0[8-20] D0"},
		{"t0 backwards on the next seq", def, []in{{1, 10}, {2, 5}, {3, 12}},
			"D1 bad G1[11-12] D3"},
		{"t0 equal on the next seq", def, []in{{1, 10}, {2, 10}, {3, 12}},
			"D1 bad G1[11-12] D3"},
		{"t0 backwards on a held seq", def, []in{{1, 10}, {3, 5}, {2, 11}, {4, 13}},
			"D1 bad D2 G1[12-13] D4"},
		{"held frame older than its predecessor", def, []in{{1, 10}, {3, 11}, {2, 12}, {4, 13}},
			"D1 D2 bad G1[13-13] D4"},
		{"clock stepped back for good: resync", def, []in{{1, 100}, {2, 101}, {3, 5}, {4, 6}, {5, 7}, {6, 8}, {7, 9}, {8, 10}},
			"D1 D2 bad bad bad bad reset G4[9-9] D7 D8"},
		{"counter jumped far ahead: reset, not a loss", seqConfig{window: 1, hold: 1_000_000, resync: 5},
			[]in{{1, 1}, {2, 2}, {1_000_000, 3}, {1_000_001, 4}},
			"D1 D2 reset D1000000 D1000001"},
		{"clock stepped forward: discontinuity without loss", seqConfig{window: 3, hold: 1_000_000, resync: 5, jump: 1_000_000},
			[]in{{1, 1}, {2, 2}, {3, 36_002}, {4, 36_003}},
			"D1 D2 jump G0[3-36002] D3 D4"},
		{"clock a little late: no discontinuity", seqConfig{window: 3, hold: 1_000_000, resync: 5, jump: 1_000_000},
			[]in{{1, 1}, {2, 2}, {3, 13}, {4, 14}},
			"D1 D2 D3 D4"},
		{"forward jump with loss is one gap", seqConfig{window: 0, hold: 1_000_000, resync: 5, jump: 1_000_000},
			[]in{{1, 1}, {2, 2}, {4, 36_002}, {5, 36_003}},
			"D1 D2 G1[3-36002] D4 D5"},
		{"clock stepped back and forward again", seqConfig{window: 3, hold: 1_000_000, resync: 5, jump: 1_000_000},
			[]in{{1, 100}, {2, 101}, {3, 50}, {4, 51}, {5, 102}, {6, 103}},
			"D1 D2 bad bad G2[102-102] D5 D6"},
		{"long outage: big but plausible loss", def, []in{{1, 1}, {2, 2}, {3000, 3000}, {3001, 3001}, {3002, 3002}, {3003, 3003}},
			"D1 D2 G2997[3-3000] D3000 D3001 D3002 D3003"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := run(t, tt.cfg, tt.frames)
			if got := strings.Join(rec.log, " "); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
			if rec.n["deliver"]+rec.n["dropped"] != len(tt.frames) {
				t.Errorf("delivered %d + dropped %d != offered %d", rec.n["deliver"], rec.n["dropped"], len(tt.frames))
			}
		})
	}
}

// TestSequencerRandomNetwork sends an in-order stream through a simulated
// network that loses, duplicates and locally reorders frames, and checks the
// books balance: every frame sent is delivered once or counted lost, and
// the output is in strictly increasing order.
func TestSequencerRandomNetwork(t *testing.T) {
	for seed := uint64(1); seed <= 50; seed++ {
		rng := rand.New(rand.NewPCG(seed, 0))
		cfg := seqConfig{window: 1 + rng.IntN(10), hold: 1_000_000, resync: 64}
		start := rng.Uint32() // exercises the wrap-around for some seeds
		const n = 2000
		var frames []in
		for i := 0; i < n; i++ {
			f := in{start + uint32(i), int64(1000 + i)}
			switch p := rng.Float64(); {
			case p < 0.05: // lost
			case p < 0.10: // duplicated, the copy a little later
				frames = append(frames, f)
				frames = append(frames, f)
				j := len(frames) - 1
				k := max(j-rng.IntN(3), 0)
				frames[j], frames[k] = frames[k], frames[j]
			default:
				frames = append(frames, f)
			}
			// Local reordering: swap with one of the last few frames,
			// never further back than the window can repair.
			if j := len(frames) - 1; j > 0 && rng.Float64() < 0.1 {
				k := max(j-1-rng.IntN(cfg.window), 0)
				frames[j], frames[k] = frames[k], frames[j]
			}
		}
		rec := &recorder{t: t, n: map[string]int{}}
		s := &sequencer[tframe]{cfg: &cfg}
		buf := new(tframe)
		var delivered []uint32
		checker := &orderCheck{recorder: rec, seqs: &delivered}
		for _, f := range frames {
			t0 := f.slot * frameUS
			*buf = tframe{seq: f.seq, t0: t0}
			s.offer(&buf, f.seq, 0, t0, t0+frameUS, checker)
		}
		s.releaseAll(checker)
		for i := 1; i < len(delivered); i++ {
			if delivered[i]-delivered[i-1] == 0 || delivered[i]-delivered[i-1] > 1<<31 {
				t.Fatalf("seed %d: delivered %d after %d", seed, delivered[i], delivered[i-1])
			}
		}
		if len(delivered) == 0 {
			t.Fatalf("seed %d: nothing delivered", seed)
		}
		span := int(delivered[len(delivered)-1]-delivered[0]) + 1
		if got := len(delivered) + rec.n["lost"]; got != span {
			t.Errorf("seed %d (window %d): delivered %d + lost %d = %d, want the span %d",
				seed, cfg.window, len(delivered), rec.n["lost"], got, span)
		}
		if strings.Contains(strings.Join(rec.log, " "), "reset") {
			t.Errorf("seed %d: a reset on a stream that never restarted", seed)
		}
	}
}

// orderCheck records delivered sequence numbers on top of a recorder.
type orderCheck struct {
	*recorder
	seqs *[]uint32
}

func (o *orderCheck) deliver(f *tframe, t0, end int64) {
	o.recorder.deliver(f, t0, end)
	*o.seqs = append(*o.seqs, f.seq)
}

// FuzzSequencer feeds arbitrary (seq, time) streams and checks the
// invariants that must hold whatever arrives: no panic, bounded holding,
// every offered frame delivered or dropped exactly once, and delivered
// times strictly increasing between restarts.
func FuzzSequencer(f *testing.F) {
	f.Add([]byte{1, 0, 2, 1, 3, 2, 2, 1, 0, 9, 200, 3})
	f.Add([]byte{255, 255, 0, 1, 1, 2, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg := seqConfig{window: 4, hold: 500_000, resync: 6, jump: 1_000_000}
		s := &sequencer[tframe]{cfg: &cfg}
		fs := &fuzzSink{t: t, lastT0: minInt64}
		buf := new(tframe)
		offered := 0
		var seq uint32
		var slot int64
		for i := 0; i+1 < len(data); i += 2 {
			// Each pair moves seq and time by small signed steps, with
			// occasional big jumps, so duplicates, gaps, reorders, wraps
			// and reboots all occur.
			seq += uint32(int8(data[i]))
			if data[i] == 0x7f {
				seq += 1 << 30
			}
			slot += int64(int8(data[i+1]))
			t0 := slot * frameUS
			*buf = tframe{seq: seq, t0: t0}
			s.offer(&buf, seq, 0, t0, t0+frameUS, fs)
			offered++
			if len(s.held) > cfg.window+1 || len(s.spare) > cfg.window+1 {
				t.Fatalf("held %d spare %d", len(s.held), len(s.spare))
			}
		}
		s.releaseAll(fs)
		if fs.delivered+fs.drops != offered {
			t.Fatalf("delivered %d + dropped %d != offered %d", fs.delivered, fs.drops, offered)
		}
	})
}

type fuzzSink struct {
	t                *testing.T
	lastT0           int64
	delivered, drops int
	jumps            int
}

func (s *fuzzSink) deliver(f *tframe, t0, end int64) {
	if f.t0 != t0 {
		s.t.Fatalf("frame with t0 %d delivered as %d", f.t0, t0)
	}
	if t0 <= s.lastT0 {
		s.t.Fatalf("t0 %d delivered after %d without a reset", t0, s.lastT0)
	}
	s.lastT0 = t0
	s.delivered++
}
func (s *fuzzSink) gap(lost int, from, to int64) {
	if lost < 0 || from > to {
		s.t.Fatalf("bad gap lost %d from %d to %d", lost, from, to)
	}
}
func (s *fuzzSink) dropped(drop) { s.drops++ }
func (s *fuzzSink) reset()       { s.lastT0 = minInt64 }
func (s *fuzzSink) clockJump()   { s.jumps++ }

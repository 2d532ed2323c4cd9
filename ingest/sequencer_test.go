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
	seq  uint32
	lane uint8
	t0   int64
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
	lf := make([]lin, len(frames))
	for i, f := range frames {
		lf[i] = lin{f.seq, 0, f.slot}
	}
	return runLanes(t, cfg, lf)
}

// lin is an arriving frame of a stream with several lanes (IMU sites).
type lin struct {
	seq  uint32
	lane uint8
	slot int64
}

// Lanes of the two-site tests, named like the IMU sites they stand for.
const (
	left  uint8 = 0
	right uint8 = 1
)

// both is what firmware that samples both shanks together sends for one
// frame period: two frames with the same t0 under consecutive seqs.
func both(seq uint32, slot int64) []lin {
	return []lin{{seq, left, slot}, {seq + 1, right, slot}}
}

// runLanes offers frames to a fresh sequencer and records what it does. It
// also checks the invariants every test shares: bounded holding, and each
// lane's delivered t0 strictly increasing between resets.
func runLanes(t *testing.T, cfg seqConfig, frames []lin) *recorder {
	t.Helper()
	rec := &recorder{t: t, n: map[string]int{}}
	lc := newLaneCheck(rec)
	s := &sequencer[tframe]{cfg: &cfg}
	buf := new(tframe)
	for _, f := range frames {
		t0 := f.slot * frameUS
		*buf = tframe{seq: f.seq, lane: f.lane, t0: t0}
		s.offer(&buf, f.seq, f.lane, t0, t0+frameUS, lc)
		if len(s.held) > cfg.window+1 {
			t.Fatalf("holding %d frames with window %d", len(s.held), cfg.window)
		}
	}
	s.releaseAll(lc)
	return rec
}

// laneCheck fails the test when a lane's samples go backwards or repeat
// without a reset in between.
type laneCheck struct {
	*recorder
	last [maxLanes]int64
}

func (c *laneCheck) deliver(f *tframe, t0, end int64) {
	if t0 <= c.last[f.lane] {
		c.t.Fatalf("lane %d: t0 %d delivered after %d without a reset", f.lane, t0, c.last[f.lane])
	}
	c.last[f.lane] = t0
	c.recorder.deliver(f, t0, end)
}

func newLaneCheck(rec *recorder) *laneCheck {
	c := &laneCheck{recorder: rec}
	c.forget()
	return c
}

func (c *laneCheck) forget() {
	for i := range c.last {
		c.last[i] = minInt64
	}
}

func (c *laneCheck) reset() {
	c.forget()
	c.recorder.reset()
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

// TestSequencerSimultaneousSites: IMU sites share the stream's sequence
// numbers, and sites sampled together send equal t0s under consecutive
// seqs. All of them must be delivered in order, while everything that
// works on sequence numbers (duplicates, reordering, gaps, reboots, counter
// and clock jumps) keeps working per stream.
func TestSequencerSimultaneousSites(t *testing.T) {
	def := seqConfig{window: 3, hold: 1_000_000, resync: 5, jump: 1_000_000}
	cat := func(parts ...[]lin) []lin {
		var out []lin
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	tests := []struct {
		name   string
		cfg    seqConfig
		frames []lin
		want   string
	}{
		{"equal t0s of two sites all delivered, no clock jump", def,
			cat(both(1, 0), both(3, 1), both(5, 2)),
			"D1 D2 D3 D4 D5 D6"},
		{"sites in either order within a period", def,
			[]lin{{1, left, 0}, {2, right, 0}, {3, right, 1}, {4, left, 1}, {5, left, 2}, {6, right, 2}},
			"D1 D2 D3 D4 D5 D6"},
		{"four sites sampled together", def,
			[]lin{{1, 0, 0}, {2, 1, 0}, {3, 2, 0}, {4, 3, 0}, {5, 0, 1}, {6, 1, 1}, {7, 2, 1}, {8, 3, 1}},
			"D1 D2 D3 D4 D5 D6 D7 D8"},
		{"repeated t0 on the same site is bad_time", def,
			[]lin{{1, left, 0}, {2, right, 0}, {3, left, 0}, {4, right, 1}, {5, left, 1}},
			"D1 D2 bad G1[1-1] D4 D5"},
		{"t0 backwards on the same site is bad_time", def,
			[]lin{{1, left, 5}, {2, right, 5}, {3, left, 4}, {4, right, 6}, {5, left, 6}},
			"D1 D2 bad G1[6-6] D4 D5"},
		{"held frame repeating its site's t0 is bad_time on arrival", def,
			[]lin{{1, left, 0}, {2, right, 0}, {4, right, 0}, {3, left, 1}, {5, left, 2}, {6, right, 2}},
			"D1 D2 bad D3 G1[2-2] D5 D6"},
		{"held frame repeating its site's t0 is bad_time when reached", def,
			[]lin{{1, left, 0}, {2, right, 0}, {4, left, 1}, {3, left, 1}, {5, left, 2}},
			"D1 D2 D3 bad G1[2-2] D5"},
		{"duplicates of either site dropped", def,
			cat(both(1, 0), []lin{{2, right, 0}}, both(3, 1), []lin{{1, left, 0}, {4, right, 1}}, both(5, 2)),
			"D1 D2 dup D3 D4 dup dup D5 D6"},
		{"duplicate of a held frame", def,
			[]lin{{1, left, 0}, {2, right, 0}, {4, right, 1}, {4, right, 1}, {3, left, 1}},
			"D1 D2 dup D3 D4"},
		{"reordered across periods within the window", def,
			[]lin{{1, left, 0}, {2, right, 0}, {5, left, 2}, {3, left, 1}, {6, right, 2}, {4, right, 1}},
			"D1 D2 D3 D4 D5 D6"},
		{"one site's frame lost: counted, no time span", def,
			[]lin{{1, left, 0}, {2, right, 0}, {4, right, 1}, {5, left, 2}, {6, right, 2}, {7, left, 3}, {8, right, 3}},
			"D1 D2 G1[1-1] D4 D5 D6 D7 D8"},
		{"both sites' frames of a period lost", def,
			cat(both(1, 0), both(5, 2), both(7, 3)),
			"D1 D2 G2[1-2] D5 D6 D7 D8"},
		{"late frame with the newest t0 is late, not a reboot", seqConfig{window: 0, hold: 1_000_000, resync: 5},
			[]lin{{1, left, 0}, {2, right, 0}, {4, right, 1}, {3, left, 1}, {5, left, 2}},
			"D1 D2 G1[1-1] D4 late D5"},
		{"reboot: both sites start again", def,
			cat(both(100, 0), both(102, 1), both(0, 2), both(2, 3)),
			"D100 D101 D102 D103 reset D0 D1 D2 D3"},
		{"reboot after an outage reports the time hole once", def,
			cat(both(100, 0), both(0, 50), both(2, 51)),
			"D100 D101 reset G0[1-50] D0 D1 D2 D3"},
		{"clock stepped back for good: resync keeps both sites", def,
			cat(both(1, 100), both(3, 101), both(5, 5), both(7, 6), both(9, 7), both(11, 8)),
			"D1 D2 D3 D4 bad bad bad bad reset G4[7-7] D9 D10 D11 D12"},
		{"clock stepped forward: one discontinuity", def,
			cat(both(1, 0), both(3, 36_000), both(5, 36_001)),
			"D1 D2 jump G0[1-36000] D3 D4 D5 D6"},
		{"counter jumped far ahead: reset, not a loss", seqConfig{window: 1, hold: 1_000_000, resync: 5},
			cat(both(1, 1), both(1_000_000, 2)),
			"D1 D2 reset D1000000 D1000001"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := runLanes(t, tt.cfg, tt.frames)
			if got := strings.Join(rec.log, " "); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
			if rec.n["deliver"]+rec.n["dropped"] != len(tt.frames) {
				t.Errorf("delivered %d + dropped %d != offered %d", rec.n["deliver"], rec.n["dropped"], len(tt.frames))
			}
		})
	}
}

// TestSequencerLossAcrossSites: a long outage of a device with four IMU
// sites loses four frames per frame period. That is a loss, not a counter
// reset, even when the last frame before the outage was twice the usual
// length (plausibleLoss judges the frame rate by it).
func TestSequencerLossAcrossSites(t *testing.T) {
	const period = frameUS
	cfg := seqConfig{window: 3, hold: 1_000_000, resync: 5}
	s := &sequencer[tframe]{cfg: &cfg}
	out := &countSink{}
	buf := new(tframe)
	offer := func(seq uint32, lane uint8, t0, end int64) {
		*buf = tframe{seq: seq, lane: lane, t0: t0}
		s.offer(&buf, seq, lane, t0, end, out)
	}
	var seq uint32
	for p := range int64(10) {
		for lane := range uint8(4) {
			end := (p + 1) * period
			if p == 9 {
				end += period // a long last frame
			}
			offer(seq, lane, p*period, end)
			seq++
		}
	}
	const outage = 600 // periods, one minute
	seq += 4 * outage
	for p := int64(10 + outage); p < 10+outage+2; p++ {
		for lane := range uint8(4) {
			offer(seq, lane, p*period, (p+1)*period)
			seq++
		}
	}
	s.releaseAll(out)
	if out.resets != 0 || out.lost != 4*outage || out.delivered != 48 {
		t.Errorf("resets %d, lost %d, delivered %d; want 0, %d, 48", out.resets, out.lost, out.delivered, 4*outage)
	}
}

// countSink counts what a sequencer reports.
type countSink struct{ delivered, lost, drops, resets int }

func (c *countSink) deliver(*tframe, int64, int64) { c.delivered++ }
func (c *countSink) gap(lost int, _, _ int64)      { c.lost += lost }
func (c *countSink) dropped(drop)                  { c.drops++ }
func (c *countSink) reset()                        { c.resets++ }
func (c *countSink) clockJump()                    {}

// TestSequencerRandomNetwork sends an in-order stream through a simulated
// network that loses, duplicates and locally reorders frames, and checks the
// books balance: every frame sent is delivered once or counted lost, and
// the output is in strictly increasing order. It does so for one series of
// frames (EMG) and for two IMU sites sampled together, which share the
// sequence numbers and send equal t0s.
func TestSequencerRandomNetwork(t *testing.T) {
	for _, sites := range []int{1, 2} {
		t.Run(fmt.Sprintf("%d sites", sites), func(t *testing.T) { randomNetwork(t, sites) })
	}
}

func randomNetwork(t *testing.T, sites int) {
	for seed := uint64(1); seed <= 50; seed++ {
		rng := rand.New(rand.NewPCG(seed, 0))
		cfg := seqConfig{window: 1 + rng.IntN(10), hold: 1_000_000, resync: 64, jump: 1_000_000}
		start := rng.Uint32() // exercises the wrap-around for some seeds
		const n = 2000
		var frames []lin
		for i := 0; i < n; i++ {
			f := lin{start + uint32(i), uint8(i % sites), int64(1000 + i/sites)}
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
		checker := &orderCheck{laneCheck: newLaneCheck(rec), seqs: &delivered}
		for _, f := range frames {
			t0 := f.slot * frameUS
			*buf = tframe{seq: f.seq, lane: f.lane, t0: t0}
			s.offer(&buf, f.seq, f.lane, t0, t0+frameUS, checker)
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
		log := " " + strings.Join(rec.log, " ") + " "
		if strings.Contains(log, " reset ") || strings.Contains(log, " bad ") || strings.Contains(log, " jump ") {
			t.Errorf("seed %d: a reset, bad_time or clock jump on a stream without any", seed)
		}
	}
}

// orderCheck records delivered sequence numbers on top of a laneCheck.
type orderCheck struct {
	*laneCheck
	seqs *[]uint32
}

func (o *orderCheck) deliver(f *tframe, t0, end int64) {
	o.laneCheck.deliver(f, t0, end)
	*o.seqs = append(*o.seqs, f.seq)
}

// FuzzSequencer feeds arbitrary (seq, time, lane) streams and checks the
// invariants that must hold whatever arrives: no panic, bounded holding,
// every offered frame delivered or dropped exactly once, and each lane's
// delivered times strictly increasing between restarts.
func FuzzSequencer(f *testing.F) {
	f.Add([]byte{1, 0, 0, 2, 1, 0, 3, 2, 0, 2, 1, 0, 0, 9, 0, 200, 3, 0})
	f.Add([]byte{255, 255, 0, 0, 1, 0, 1, 2, 0, 0, 0, 0, 0, 0, 0})
	// Two sites sampled together, with a duplicate, a swap and a reboot.
	f.Add([]byte{1, 0, 0, 1, 0, 1, 1, 1, 0, 0, 0, 0, 2, 0, 1, 255, 1, 0, 0xf0, 5, 0, 1, 0, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg := seqConfig{window: 4, hold: 500_000, resync: 6, jump: 1_000_000}
		s := &sequencer[tframe]{cfg: &cfg}
		fs := &fuzzSink{t: t}
		fs.reset()
		buf := new(tframe)
		offered := 0
		var seq uint32
		var slot int64
		for i := 0; i+2 < len(data); i += 3 {
			// Each triple moves seq and time by small signed steps, with
			// occasional big jumps, so duplicates, gaps, reorders, wraps
			// and reboots all occur, and picks the frame's lane (IMU site),
			// so frames of several lanes may share a t0.
			seq += uint32(int8(data[i]))
			if data[i] == 0x7f {
				seq += 1 << 30
			}
			slot += int64(int8(data[i+1]))
			lane := data[i+2] % maxLanes
			t0 := slot * frameUS
			*buf = tframe{seq: seq, lane: lane, t0: t0}
			s.offer(&buf, seq, lane, t0, t0+frameUS, fs)
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
	lastT0           [maxLanes]int64
	delivered, drops int
	jumps            int
}

func (s *fuzzSink) deliver(f *tframe, t0, end int64) {
	if f.t0 != t0 {
		s.t.Fatalf("frame with t0 %d delivered as %d", f.t0, t0)
	}
	if t0 <= s.lastT0[f.lane] {
		s.t.Fatalf("lane %d: t0 %d delivered after %d without a reset", f.lane, t0, s.lastT0[f.lane])
	}
	s.lastT0[f.lane] = t0
	s.delivered++
}
func (s *fuzzSink) gap(lost int, from, to int64) {
	if lost < 0 || from > to {
		s.t.Fatalf("bad gap lost %d from %d to %d", lost, from, to)
	}
}
func (s *fuzzSink) dropped(drop) { s.drops++ }
func (s *fuzzSink) reset() {
	for i := range s.lastT0 {
		s.lastT0[i] = minInt64
	}
}
func (s *fuzzSink) clockJump() { s.jumps++ }

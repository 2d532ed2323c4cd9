package ingest

import (
	"math"
	"math/bits"
)

// The sequencer turns one device stream's frames, as they arrive (possibly
// duplicated by QoS 1 redelivery, reordered, lost or restarted by a device
// reboot), into an ordered stream without duplicates plus gap reports.
//
// It only looks at each frame's sequence number, lane and sample times; the
// frames themselves are opaque pointers that it holds while waiting for a
// missing one. It is generic so EMG and IMU frames share one tested
// implementation.
//
// Lanes. One stream may carry several series of samples that share its
// sequence numbers: the IMU stream carries one frame per site (shank_left,
// shank_right, ...), and firmware that samples its IMUs together sends two
// frames with the same t0 under consecutive sequence numbers. Sequence
// numbers (order, duplicates, gaps, reboots) are per stream, as the wire
// contract says, but "a new frame must bring new samples" only holds within
// a series, so t0 is checked against the previous frame of the same lane.
// EMG frames carry all channels and use lane 0 only.

// maxLanes bounds the lanes of a stream: wire.Site has four values.
const maxLanes = 4

// seenBits is how far back (in sequence numbers) the sequencer remembers
// which frames it delivered, to tell a duplicate from a frame that arrives
// after it was given up as lost. 256 frames is 25 s of 100 ms frames, far
// more than any broker redelivers out of order.
const seenBits = 256

// drop says why the sequencer did not deliver a frame.
type drop uint8

const (
	dropDuplicate drop = iota + 1 // same sequence number as a frame already delivered or held
	dropLate                      // arrived after its sequence number was given up as lost
	dropBadTime                   // new sequence number but its t0 is not after the previous frame of its lane
)

// seqSink receives what a sequencer decides. Calls happen synchronously
// inside offer, flush and releaseAll.
type seqSink[F any] interface {
	// deliver hands over the next frame in order; f is only valid during the call.
	deliver(f *F, t0, end int64)
	// gap reports lost frames between from (end of the last delivered frame)
	// and to (start of the frame about to be delivered).
	gap(lost int, from, to int64)
	// dropped reports a frame that is not delivered.
	dropped(why drop)
	// reset reports that the stream restarted (device reboot or resynchronisation).
	reset()
	// clockJump reports that a frame following its predecessor without a
	// missing sequence number starts more than cfg.jump after it ended: the
	// device clock stepped forward. A gap with lost = 0 follows.
	clockJump()
}

// seqConfig tunes a sequencer.
type seqConfig struct {
	window int   // most frames held while waiting for a missing one
	hold   int64 // most sample time (µs) held frames may cover beyond the hole
	resync int   // consecutive undeliverable new frames after which the stream restarts
	jump   int64 // µs a frame may start after its predecessor's end before it is a clock jump; 0: never
}

// held is a frame waiting for the frames before it. A tombstone (f == nil)
// marks a sequence number whose frame was rejected: it will never come, so
// it is counted as lost without waiting for it.
type held[F any] struct {
	seq     uint32
	lane    uint8
	t0, end int64
	f       *F
}

// sequencer orders one stream. The zero value is ready once cfg is set.
type sequencer[F any] struct {
	cfg *seqConfig

	started bool
	next    uint32 // sequence number expected next
	lastT0  int64  // t0 of the last delivered frame, whatever its lane
	lastEnd int64  // end of the last delivered frame (from of the next gap)
	newest  int64  // newest t0 delivered or held: a behind seq with a newer t0 is a reboot
	lost    int    // sequence numbers given up on, reported with the next delivery
	stuck   int    // consecutive late or bad-time frames, see cfg.resync
	jumped  bool   // the stream restarted: report the discontinuity with the next delivery

	// laneT0 is the t0 of the last delivered frame of each lane: a new
	// frame must start after it. lanes records which lanes ever delivered
	// (kept across restarts: a device's IMU sites do not change when it
	// reboots), to size plausibleLoss.
	laneT0 [maxLanes]int64
	lanes  uint8

	seen  [seenBits / 64]uint64 // delivered seqs in [next-seenBits, next)
	held  []held[F]
	spare []*F // frames to swap in when one is held; bounded by window+1
}

// offer takes the decoded frame in *fp, of the given lane (0..maxLanes-1).
// When the frame has to wait, the sequencer keeps it and puts a spare frame
// into *fp, so the caller can keep decoding into *fp without allocating.
func (s *sequencer[F]) offer(fp **F, seq uint32, lane uint8, t0, end int64, out seqSink[F]) {
	lane %= maxLanes // callers pass a valid lane; this keeps a bug from indexing out of range
	if !s.started {
		s.restart(seq)
		s.emit(*fp, seq, lane, t0, end, out)
		return
	}
	d := int32(seq - s.next) // serial number arithmetic: correct across the uint32 wrap
	if d < 0 {
		if t0 > s.newest {
			// An older sequence number with newer samples: the device
			// rebooted and started counting again.
			s.restartAt(fp, seq, lane, t0, end, out)
			return
		}
		back := s.next - seq
		if back <= seenBits && s.isSeen(seq) {
			out.dropped(dropDuplicate)
			return
		}
		s.undeliverable(fp, seq, lane, t0, end, out, dropLate)
		return
	}
	if t0 <= s.laneT0[lane] {
		// A new sequence number must bring new samples of its lane; keep
		// its place as a tombstone so the hole is reported as soon as it
		// is reached.
		if s.undeliverable(fp, seq, lane, t0, end, out, dropBadTime) {
			return
		}
		switch {
		case d == 0:
			s.skip()
			s.flush(out)
		case s.heldIndex(seq) < 0:
			s.hold(nil, seq, lane, t0, end)
			s.enforce(out)
		}
		return
	}
	if d == 0 {
		s.emit(*fp, seq, lane, t0, end, out)
		s.flush(out)
		return
	}
	if s.heldIndex(seq) >= 0 {
		out.dropped(dropDuplicate)
		return
	}
	s.hold(fp, seq, lane, t0, end)
	s.enforce(out)
}

// undeliverable counts a late or bad-time frame. After cfg.resync of them in
// a row the sequencer believes the frame rather than its own state (the
// device's clock or counter jumped back for good) and restarts the stream at
// it; it then returns true.
func (s *sequencer[F]) undeliverable(fp **F, seq uint32, lane uint8, t0, end int64, out seqSink[F], why drop) bool {
	if s.stuck+1 >= s.cfg.resync {
		s.restartAt(fp, seq, lane, t0, end, out)
		return true
	}
	s.stuck++
	out.dropped(why)
	return false
}

// restartAt releases everything held (it belongs to the old stream),
// restarts the stream at seq and delivers the frame.
func (s *sequencer[F]) restartAt(fp **F, seq uint32, lane uint8, t0, end int64, out seqSink[F]) {
	s.releaseAll(out)
	out.reset()
	s.restart(seq)
	s.emit(*fp, seq, lane, t0, end, out)
}

// restart forgets the sequence state but keeps lastEnd, so frames lost
// before a restart are still reported with the right start time.
func (s *sequencer[F]) restart(seq uint32) {
	s.jumped = s.started
	s.started = true
	s.next = seq
	s.lastT0 = minInt64
	for i := range s.laneT0 {
		s.laneT0[i] = minInt64
	}
	s.newest = minInt64
	s.stuck = 0
	s.seen = [seenBits / 64]uint64{}
}

const minInt64 = -1 << 63

// emit delivers f if its time is after the last delivered frame of its lane
// and advances the stream past seq either way.
func (s *sequencer[F]) emit(f *F, seq uint32, lane uint8, t0, end int64, out seqSink[F]) {
	if f == nil || t0 <= s.laneT0[lane] {
		if f != nil {
			// A held frame whose t0 is not after its lane predecessor's:
			// only detectable once the predecessor has been delivered.
			out.dropped(dropBadTime)
		}
		s.skip()
		return
	}
	if s.lost == 0 && !s.jumped && s.cfg.jump > 0 && s.lastT0 != minInt64 && t0-s.lastEnd > s.cfg.jump {
		// Nothing is missing by sequence number, yet the samples do not
		// follow on: the device clock stepped forward. The detector must
		// not join the two sides into one stretch of signal.
		out.clockJump()
		s.jumped = true
	}
	if s.lost > 0 || s.jumped {
		// After a restart the device's clock may have gone backwards: the
		// gap then has no time span, only its lost count. The same holds
		// when the frame lost belonged to another lane than this one,
		// which may start before the previous frame ended (simultaneous
		// IMU sites): the stream lost frames but no stretch of time.
		from := min(s.lastEnd, t0)
		if s.lost > 0 || from < t0 {
			out.gap(s.lost, from, t0)
		}
		s.lost, s.jumped = 0, false
	}
	out.deliver(f, t0, end)
	s.lastT0, s.lastEnd = t0, end
	s.laneT0[lane] = t0
	s.lanes |= 1 << lane
	s.newest = max(s.newest, t0)
	s.stuck = 0
	s.setSeen(seq, true)
	s.next = seq + 1
}

// skip gives up the expected sequence number: it counts as lost.
func (s *sequencer[F]) skip() {
	s.setSeen(s.next, false)
	s.next++
	s.lost++
}

// hold keeps a frame (or a tombstone when fp is nil) until its turn.
func (s *sequencer[F]) hold(fp **F, seq uint32, lane uint8, t0, end int64) {
	h := held[F]{seq: seq, lane: lane, t0: t0, end: end}
	if fp != nil {
		h.f = *fp
		if n := len(s.spare); n > 0 {
			*fp = s.spare[n-1]
			s.spare = s.spare[:n-1]
		} else {
			*fp = new(F)
		}
		s.newest = max(s.newest, t0)
	}
	if s.held == nil {
		s.held = make([]held[F], 0, s.cfg.window+1)
	}
	s.held = append(s.held, h)
}

// enforce gives up on missing frames while too many frames, or too much
// sample time, are held.
func (s *sequencer[F]) enforce(out seqSink[F]) {
	for len(s.held) > 0 && (len(s.held) > s.cfg.window || s.heldSpan() > s.cfg.hold) {
		s.giveUp(out)
	}
}

// heldSpan is how far the held frames reach past the hole, in µs.
func (s *sequencer[F]) heldSpan() int64 {
	newest := s.lastEnd
	for i := range s.held {
		if s.held[i].f != nil {
			newest = max(newest, s.held[i].end)
		}
	}
	return newest - s.lastEnd
}

// giveUp declares the frames before the earliest held one lost and delivers
// from there.
func (s *sequencer[F]) giveUp(out seqSink[F]) {
	first := 0
	for i := range s.held {
		if s.held[i].seq-s.next < s.held[first].seq-s.next {
			first = i
		}
	}
	h := s.held[first]
	missing := h.seq - s.next
	switch {
	case uint64(missing) > s.plausibleLoss(h.t0):
		// The counter jumped further ahead than the time gap could hold
		// frames: a counter reset or glitch, not a loss, and counting it as
		// one would wreck the lost-frames metric.
		out.reset()
		s.seen = [seenBits / 64]uint64{}
		s.jumped = true
	case missing >= seenBits:
		s.seen = [seenBits / 64]uint64{}
		s.lost += int(missing)
	default:
		for i := uint32(0); i < missing; i++ {
			s.setSeen(s.next+i, false)
		}
		s.lost += int(missing)
	}
	s.next = h.seq
	s.flush(out)
}

// plausibleLoss is the most frames that can have been lost between the last
// delivered frame and a frame starting at to, judged by the last frame's
// duration and the number of lanes that send frames side by side, with a
// wide margin for devices whose frame length varies.
func (s *sequencer[F]) plausibleLoss(to int64) uint64 {
	dur := s.lastEnd - s.lastT0
	if s.lastT0 == minInt64 || dur <= 0 {
		return math.MaxUint64
	}
	span := max(to-s.lastEnd, 0)
	lanes := uint64(max(bits.OnesCount8(s.lanes), 1))
	return 4*lanes*uint64(span/dur) + 64
}

// flush delivers held frames while the next one in order is among them.
func (s *sequencer[F]) flush(out seqSink[F]) {
	for {
		i := s.heldIndex(s.next)
		if i < 0 {
			return
		}
		h := s.held[i]
		last := len(s.held) - 1
		s.held[i] = s.held[last]
		s.held[last] = held[F]{}
		s.held = s.held[:last]
		s.emit(h.f, h.seq, h.lane, h.t0, h.end, out)
		if h.f != nil {
			s.spare = append(s.spare, h.f)
		}
	}
}

func (s *sequencer[F]) heldIndex(seq uint32) int {
	for i := range s.held {
		if s.held[i].seq == seq {
			return i
		}
	}
	return -1
}

// releaseAll delivers every held frame, giving up on whatever is missing:
// used before a restart, when a device is evicted and when the router closes.
func (s *sequencer[F]) releaseAll(out seqSink[F]) {
	for len(s.held) > 0 {
		s.giveUp(out)
	}
}

func (s *sequencer[F]) isSeen(seq uint32) bool {
	return s.seen[(seq%seenBits)/64]&(1<<(seq%64)) != 0
}

func (s *sequencer[F]) setSeen(seq uint32, v bool) {
	w, b := (seq%seenBits)/64, uint64(1)<<(seq%64)
	if v {
		s.seen[w] |= b
	} else {
		s.seen[w] &^= b
	}
}

package store

// The queue holds encoded line protocol in chunks of at most BatchSize
// lines; a chunk is the unit the writer sends in one request. There are two
// priority classes: "high" (events and the points other packages pass to
// WritePoint: alerts, acks, diary) and "bulk" (envelope, motion, device
// health). The writer always empties high first, and each class has its own
// bound, so under backpressure bulk points are dropped while events still
// have room: the degradation order "drop envelope/motion before events".
//
// Chunks stay at the head of their class while they are being written, so a
// failed write is retried before anything newer in the same class, and a
// cramp's "ended" point is never overtaken by its "ongoing" one.
//
// With a spool (spool.go), a chunk whose write failed leaves the queue for
// the disk, and so does every chunk of its class behind it until the
// spool has been replayed.
//
// All methods are called with Influx.mu held.

const maxFreeChunks = 4

type chunk struct {
	buf    []byte
	lines  int
	sealed bool           // no more appends: full, or taken by a flush
	counts map[string]int // lines per measurement, for the metrics
	// refused: the spool turned this chunk away once (full, or a disk
	// error); it is counted and logged only the first time.
	refused bool
}

// Class ids, also the spool's.
const (
	classHigh = iota
	classBulk
	numClasses
)

type class struct {
	id     int
	chunks []*chunk // FIFO; only the last one may be open
	lines  int      // lines in all chunks, including one being written
	max    int      // bound on lines
}

type queue struct {
	batch int
	free  []*chunk
	high  class
	bulk  class
}

func newQueue(batch, highMax, bulkMax int) *queue {
	return &queue{batch: batch, high: class{id: classHigh, max: highMax}, bulk: class{id: classBulk, max: bulkMax}}
}

// open returns the chunk to append the next line of c to, or nil if c is
// full.
func (q *queue) open(c *class) *chunk {
	if c.lines >= c.max {
		return nil
	}
	if n := len(c.chunks); n > 0 && !c.chunks[n-1].sealed {
		return c.chunks[n-1]
	}
	var ch *chunk
	if n := len(q.free); n > 0 {
		ch = q.free[n-1]
		q.free = q.free[:n-1]
	} else {
		ch = &chunk{counts: make(map[string]int, 4)}
	}
	c.chunks = append(c.chunks, ch)
	return ch
}

// commit records that one line of measurement was appended to ch, the open
// chunk of c. It reports whether ch is now full (and sealed).
func (q *queue) commit(c *class, ch *chunk, measurement string) bool {
	ch.lines++
	ch.counts[measurement]++
	c.lines++
	if ch.lines >= q.batch {
		ch.sealed = true
		return true
	}
	return false
}

// sealAll closes the open chunks so the writer sends them: the periodic
// flush and Close.
func (q *queue) sealAll() {
	for _, c := range []*class{&q.high, &q.bulk} {
		if n := len(c.chunks); n > 0 && c.chunks[n-1].lines > 0 {
			c.chunks[n-1].sealed = true
		}
	}
}

// headOf returns the next chunk of c to write, or nil if c has no sealed
// chunk.
func (q *queue) headOf(c *class) *chunk {
	if len(c.chunks) > 0 && c.chunks[0].sealed {
		return c.chunks[0]
	}
	return nil
}

// pop removes ch, the head of c, once it is written or given up.
func (q *queue) pop(c *class, ch *chunk) {
	copy(c.chunks, c.chunks[1:])
	c.chunks[len(c.chunks)-1] = nil
	c.chunks = c.chunks[:len(c.chunks)-1]
	c.lines -= ch.lines
	q.recycle(ch)
}

func (q *queue) recycle(ch *chunk) {
	if len(q.free) >= maxFreeChunks {
		return // let the garbage collector have the memory an outage built up
	}
	ch.buf = ch.buf[:0]
	ch.lines = 0
	ch.sealed = false
	ch.refused = false
	clear(ch.counts)
	q.free = append(q.free, ch)
}

// removeAll empties the queue and returns the number of lines per
// measurement that were in it.
func (q *queue) removeAll() map[string]int {
	lost := map[string]int{}
	for _, c := range []*class{&q.high, &q.bulk} {
		for _, ch := range c.chunks {
			for m, n := range ch.counts {
				lost[m] += n
			}
		}
		c.chunks = nil
		c.lines = 0
	}
	return lost
}

func (q *queue) depth() int { return q.high.lines + q.bulk.lines }

package export

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// progress draws a one-line progress bar, redrawn a few times a second
// from its own goroutine so that the export loop only bumps counters. The
// fraction done is how far the export has got through its time range,
// which needs no count up front (a count would cost a pass over the data).
type progress struct {
	w        io.Writer
	from, to time.Time
	started  time.Time
	events   atomic.Int64
	nights   atomic.Int64
	cursor   atomic.Int64 // Unix ms of the night being exported
	quit     chan struct{}
	done     sync.WaitGroup
}

// progressInterval is how often the bar is redrawn.
const progressInterval = 200 * time.Millisecond

func startProgress(w io.Writer, from, to time.Time) *progress {
	p := &progress{w: w, from: from, to: to, started: time.Now(), quit: make(chan struct{})}
	p.cursor.Store(from.UnixMilli())
	p.done.Add(1)
	go func() {
		defer p.done.Done()
		t := time.NewTicker(progressInterval)
		defer t.Stop()
		for {
			select {
			case <-p.quit:
				return
			case <-t.C:
				p.draw(false)
			}
		}
	}()
	return p
}

func (p *progress) event() { p.events.Add(1) }

// night records that a device-night starting at from is done.
func (p *progress) night(from time.Time) {
	p.nights.Add(1)
	if ms := from.UnixMilli(); ms > p.cursor.Load() {
		p.cursor.Store(ms)
	}
}

// stop draws the final state and ends the line.
func (p *progress) stop(ok bool) {
	close(p.quit)
	p.done.Wait()
	if ok {
		p.cursor.Store(p.to.UnixMilli())
	}
	p.draw(true)
}

func (p *progress) draw(final bool) {
	const width = 30
	frac := 0.0
	if span := p.to.Sub(p.from); span > 0 {
		frac = float64(time.UnixMilli(p.cursor.Load()).Sub(p.from)) / float64(span)
	}
	frac = min(max(frac, 0), 1)
	n := int(frac * width)
	elapsed := time.Since(p.started)
	events := p.events.Load()
	rate := 0.0
	if s := elapsed.Seconds(); s > 0 {
		rate = float64(events) / s
	}
	line := fmt.Sprintf("\rexport [%s%s] %3.0f%%  %d events  %d nights  %.0f events/s  %s\x1b[K",
		strings.Repeat("=", n), strings.Repeat(" ", width-n), frac*100, events, p.nights.Load(), rate,
		elapsed.Truncate(time.Second))
	if final {
		line += "\n"
	}
	io.WriteString(p.w, line)
}

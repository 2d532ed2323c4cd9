// Package sinkqueue is the hand-over between the pipeline and an event
// sink's writer goroutine (the MQTT event publisher, the journal): a
// bounded queue that never blocks the pipeline, and a close that lets the
// writer drain what was queued before it stops.
package sinkqueue

import (
	"context"
	"errors"
	"sync"

	"github.com/crampwatch/crampwatch/detect"
)

// Reasons Offer gives for not queueing an event.
var (
	ErrFull   = errors.New("queue full")
	ErrClosed = errors.New("sink closed")
)

// Queue is a bounded queue of events with one writer goroutine. Create it
// with New; Offer and Close are safe for concurrent use.
type Queue struct {
	mu      sync.RWMutex // guards closed against the send in Offer
	closed  bool
	ch      chan detect.Event
	closing chan struct{}
	done    chan struct{}
	depth   func(int)
}

// New returns a queue of size events. depth, if not nil, is told the
// number of queued events whenever it changes (a gauge).
func New(size int, depth func(int)) *Queue {
	if depth == nil {
		depth = func(int) {}
	}
	return &Queue{
		ch:      make(chan detect.Event, size),
		closing: make(chan struct{}),
		done:    make(chan struct{}),
		depth:   depth,
	}
}

// Offer queues e without blocking. It returns ErrFull or ErrClosed when it
// cannot; the caller counts and logs the dropped event.
func (q *Queue) Offer(e detect.Event) error {
	q.mu.RLock()
	defer q.mu.RUnlock()
	if q.closed {
		return ErrClosed
	}
	select {
	case q.ch <- e:
		q.depth(len(q.ch))
		return nil
	default:
		return ErrFull
	}
}

// Events is what the writer receives from; after each receive it calls
// Received.
func (q *Queue) Events() <-chan detect.Event { return q.ch }

// Received updates the depth after the writer took an event from Events.
func (q *Queue) Received() { q.depth(len(q.ch)) }

// Closing is closed when Close begins. Offer queues nothing from then on,
// so a writer that sees it can Take what is left and return.
func (q *Queue) Closing() <-chan struct{} { return q.closing }

// Take appends every event queued right now to batch and returns it.
func (q *Queue) Take(batch []detect.Event) []detect.Event {
	for {
		select {
		case e := <-q.ch:
			batch = append(batch, e)
		default:
			q.depth(len(q.ch))
			return batch
		}
	}
}

// Finished tells Close the writer has returned; the writer defers it.
func (q *Queue) Finished() { close(q.done) }

// Done is closed when the writer has Finished.
func (q *Queue) Done() <-chan struct{} { return q.done }

// Close stops Offer, tells the writer through Closing and waits until it
// has Finished or ctx ends (then with ctx's error). first is false when an
// earlier Close already did this.
func (q *Queue) Close(ctx context.Context) (first bool, err error) {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return false, nil
	}
	q.closed = true
	q.mu.Unlock()
	close(q.closing)
	select {
	case <-q.done:
		return true, nil
	case <-ctx.Done():
		return true, ctx.Err()
	}
}

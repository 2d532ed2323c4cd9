package sinkqueue

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/crampwatch/crampwatch/detect"
)

func TestQueue(t *testing.T) {
	var depth []int
	q := New(2, func(n int) { depth = append(depth, n) })
	for i, want := range []error{nil, nil, ErrFull} {
		if err := q.Offer(detect.Event{Device: "d"}); !errors.Is(err, want) {
			t.Fatalf("offer %d: %v, want %v", i, err, want)
		}
	}
	got := make(chan int, 1)
	go func() {
		defer q.Finished()
		var batch []detect.Event
		<-q.Closing()
		batch = q.Take(batch)
		got <- len(batch)
	}()
	first, err := q.Close(context.Background())
	if !first || err != nil {
		t.Fatalf("Close = %v, %v", first, err)
	}
	if n := <-got; n != 2 {
		t.Errorf("writer drained %d events, want 2", n)
	}
	if err := q.Offer(detect.Event{}); !errors.Is(err, ErrClosed) {
		t.Errorf("offer after close: %v", err)
	}
	if first, err := q.Close(context.Background()); first || err != nil {
		t.Errorf("second Close = %v, %v", first, err)
	}
	if depth[len(depth)-1] != 0 {
		t.Errorf("depth ends at %v", depth)
	}
}

func TestCloseGivesUp(t *testing.T) {
	q := New(1, nil) // no writer: Close can only end with ctx
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if first, err := q.Close(ctx); !first || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Close = %v, %v", first, err)
	}
}

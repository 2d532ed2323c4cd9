package main

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/crampwatch/crampwatch/detect"
	"github.com/crampwatch/crampwatch/ingest"
)

// consoleSink prints each event as it is detected and keeps the finished
// ones and every device's newest sample time, for the demo's summary.
type consoleSink struct {
	w      io.Writer
	mu     sync.Mutex
	events []detect.Event       // every event, ongoing and ended
	latest map[string]time.Time // newest envelope time per device
}

func newConsoleSink(w io.Writer) *consoleSink {
	return &consoleSink{w: w, latest: map[string]time.Time{}}
}

func (c *consoleSink) Event(e detect.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	line := fmt.Sprintf("%s  %-10s %-9s %-16s %-8s", e.Onset.UTC().Format("15:04:05"), e.Device, e.Kind, e.Channel, e.State)
	switch {
	case e.Kind == detect.KindCramp && e.State == detect.StateOngoing:
		line += fmt.Sprintf(" confirmed %.1f s after onset, peak %.0f uV -> alert", e.ConfirmedAt.Sub(e.Onset).Seconds(), e.PeakUV)
	case e.Kind == detect.KindArtifact:
		line += fmt.Sprintf(" %s, %.1f s", e.Cause, e.DurationS)
	default:
		line += fmt.Sprintf(" %.1f s, peak %.0f uV, confidence %.2f", e.DurationS, e.PeakUV, e.Confidence)
	}
	fmt.Fprintln(c.w, line)
	c.events = append(c.events, e)
}

func (c *consoleSink) Envelope(e detect.Envelope) {
	c.mu.Lock()
	if e.Time.After(c.latest[e.Device]) {
		c.latest[e.Device] = e.Time
	}
	c.mu.Unlock()
}

func (c *consoleSink) Motion(detect.Motion)        {}
func (c *consoleSink) Health(ingest.Health)        {}
func (c *consoleSink) Close(context.Context) error { return nil }

// caughtUp reports whether every device's envelope has reached t.
func (c *consoleSink) caughtUp(devices []string, t time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, d := range devices {
		if c.latest[d].Before(t) {
			return false
		}
	}
	return true
}

// all returns the events seen so far.
func (c *consoleSink) all() []detect.Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]detect.Event(nil), c.events...)
}

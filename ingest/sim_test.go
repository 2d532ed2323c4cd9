package ingest

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	firmwaresim "github.com/crampwatch/crampwatch/firmware-sim"
	"github.com/crampwatch/crampwatch/wire"
)

// TestRouterSimulatedIMUSites runs half an hour of a simulated device (with
// the simulator's transport loss and duplicates) through a router, with its
// two IMU sites staggered and sampled at the same instants (with exactly
// equal t0s, and with the simulator's ±1 ms t0 jitter, which puts the
// second site's t0 before the first's half of the time). Every way the
// books balance: every IMU sequence number is delivered once, in order, or
// reported lost; nothing is rejected as bad_time; no stream restarts; and
// each site's samples move forward.
func TestRouterSimulatedIMUSites(t *testing.T) {
	for _, tc := range []struct {
		name     string
		stagger  bool
		jitterUS float64
	}{
		{"staggered", true, 1000},
		{"simultaneous", false, 0},
		{"simultaneous with jitter", false, 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sc := firmwaresim.DefaultScenario().WithHours(0.5)
			sc.Encoding = "binary"
			sc.IMUStagger = tc.stagger
			sc.Transport.LossProb, sc.Transport.DupProb = 0.01, 0.01
			sc.Transport.JitterUS = tc.jitterUS
			dev := firmwaresim.NewDevice("sim", sc, 11, time.Date(2025, 11, 24, 22, 30, 0, 0, time.UTC))
			h := newSiteCheck(t)
			m := NewMetrics(nil)
			r := NewRouter(Config{Shards: 1}, h, m, nil)
			var buf, prev []byte
			sent, dups := 0, 0
			for {
				msg, ok := dev.Next(buf)
				if !ok {
					break
				}
				buf = msg.Payload
				if msg.Stream == wire.StreamIMU {
					sent++
					// The simulator repeats a duplicated frame right after it.
					if bytes.Equal(msg.Payload, prev) {
						dups++
					}
					prev = append(prev[:0], msg.Payload...)
				}
				if err := r.Feed(context.Background(), wire.Topic(wire.DefaultPrefix, dev.ID(), msg.Stream), msg.Payload); err != nil {
					t.Fatal(err)
				}
			}
			if err := dev.Err(); err != nil {
				t.Fatal(err)
			}
			r.Close()

			if h.delivered != sent-dups {
				t.Errorf("%d IMU frames delivered, want %d (%d sent, %d duplicates)", h.delivered, sent-dups, sent, dups)
			}
			if span := int(h.lastSeq-h.firstSeq) + 1; h.delivered+h.lost != span {
				t.Errorf("delivered %d + lost %d != seq span %d", h.delivered, h.lost, span)
			}
			if h.lost == 0 || dups == 0 {
				t.Errorf("lost %d, %d duplicates: the transport faults did not happen", h.lost, dups)
			}
			if n := len(h.perSite); n != 2 {
				t.Errorf("frames from %d sites, want 2", n)
			}
			for _, c := range []struct {
				name string
				got  float64
			}{
				{"bad_time", rejected(t, m, wire.ReasonBadTime)},
				{"stream_resets", value(t, m.resets)},
				{"clock_jumps", value(t, m.clockJumps)},
				{"late", value(t, m.late)},
			} {
				if c.got != 0 {
					t.Errorf("%s = %v, want 0", c.name, c.got)
				}
			}
		})
	}
}

// siteCheck is a Handler that checks the IMU stream: sequence numbers
// strictly increasing, each site's t0 strictly increasing.
type siteCheck struct {
	t                 *testing.T
	mu                sync.Mutex
	started           bool
	firstSeq, lastSeq uint32
	delivered, lost   int
	perSite           map[wire.Site]int64 // last t0
}

func newSiteCheck(t *testing.T) *siteCheck {
	return &siteCheck{t: t, perSite: map[wire.Site]int64{}}
}

func (c *siteCheck) IMU(_ string, f *wire.IMUFrame) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.started {
		c.started, c.firstSeq = true, f.Seq
	} else if int32(f.Seq-c.lastSeq) <= 0 {
		c.t.Errorf("IMU seq %d delivered after %d", f.Seq, c.lastSeq)
	}
	if last, ok := c.perSite[f.Site]; ok && f.T0 <= last {
		c.t.Errorf("IMU seq %d of %v: t0 %d after %d", f.Seq, f.Site, f.T0, last)
	}
	c.perSite[f.Site] = f.T0
	c.lastSeq = f.Seq
	c.delivered++
}

func (c *siteCheck) Gap(_ string, s wire.Stream, lost int, from, to int64) {
	if s != wire.StreamIMU {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if from > to {
		c.t.Errorf("IMU gap from %d to %d", from, to)
	}
	c.lost += lost
}

func (c *siteCheck) EMG(string, *wire.EMGFrame)       {}
func (c *siteCheck) Status(string, *wire.StatusFrame) {}
func (c *siteCheck) Health(Health)                    {}

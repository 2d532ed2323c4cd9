package export

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"time"

	"github.com/crampwatch/crampwatch/detect"
	"github.com/crampwatch/crampwatch/wire"
)

// synthSource generates device-nights on the fly, for benchmarks and for
// tests of streaming and cancellation that need more rows than a
// simulated night gives. Its loop index marks every cramp alerted.
type synthSource struct {
	devices, nNights, perNight int
	start                      time.Time // first night's start
	// after, if set, is called after each device-night (tests block or
	// cancel there).
	after func(n int)
	// failAfter, if set, makes the source fail after that many
	// device-nights, as a database going away would.
	failAfter int
}

func (s *synthSource) Name() string      { return "synthetic" }
func (s *synthSource) hasEnvelope() bool { return false }

func (s *synthSource) envelope(context.Context, string, time.Time, time.Time) iter.Seq2[detect.Envelope, error] {
	return func(yield func(detect.Envelope, error) bool) { yield(detect.Envelope{}, errors.New("no envelope")) }
}

func (s *synthSource) channels(context.Context, string, time.Time, time.Time) ([]wire.Channel, error) {
	return nil, errors.New("no envelope")
}

var synthKinds = [...]detect.Kind{detect.KindPLM, detect.KindPLM, detect.KindMovement, detect.KindArtifact, detect.KindCramp}

func (s *synthSource) nights(ctx context.Context, q *query) iter.Seq2[*deviceNight, error] {
	return func(yield func(*deviceNight, error) bool) {
		count := 0
		loop := newLoopIndex()
		for n := range s.nNights {
			for d := range s.devices {
				dev := fmt.Sprintf("synth-%05d", d)
				first := s.start.AddDate(0, 0, n).Add(5 * time.Hour)
				name, from, to := q.nights.Of(first)
				clear(loop.alertOf)
				clear(loop.firstBuzz)
				dn := &deviceNight{device: dev, night: name, from: from, to: to, recording: some(8 * time.Hour), loop: loop}
				dn.events = func(yield func(detect.Event, error) bool) {
					// 8 hours spread over perNight events.
					step := 8 * time.Hour / time.Duration(s.perNight)
					for i := range s.perNight {
						onset := first.Add(time.Duration(i) * step)
						e := detect.Event{
							Device: dev, Kind: synthKinds[i%len(synthKinds)], State: detect.StateEnded,
							Channel: wire.Channel{Muscle: wire.Muscle(1 + i%4), Side: wire.Side(1 + i%2)},
							Onset:   onset, End: onset.Add(2500 * time.Millisecond), ConfirmedAt: onset.Add(time.Second),
							DurationS: 2.5, PeakUV: 100 + float64(i%97), MeanUV: 50.25, MedianFreqHz: 70.5, Confidence: 0.875,
						}
						if e.Kind == detect.KindCramp {
							id := e.ID()
							loop.alertOf[id] = "al-" + id
							loop.firstBuzz["al-"+id] = e.ConfirmedAt
						}
						if e.Kind == detect.KindArtifact {
							e.Cause = "lead_off"
						}
						if !yield(e, nil) {
							return
						}
					}
				}
				if !yield(dn, nil) {
					return
				}
				count++
				if s.after != nil {
					s.after(count)
				}
				if s.failAfter > 0 && count == s.failAfter {
					yield(nil, errors.New("synthetic source failure"))
					return
				}
			}
		}
	}
}

package detect

import (
	"encoding/json"
	"fmt"
	"math"

	"github.com/crampwatch/crampwatch/wire"
)

// snapshotVersion is bumped when the snapshot layout changes.
const snapshotVersion = 1

type snapshot struct {
	Version  int                `json:"version"`
	MainsHz  float64            `json:"mains_hz"`
	Channels []snapshotBaseline `json:"channels"`
}

type snapshotBaseline struct {
	Channel string `json:"channel"`
	restoredBaseline
}

// restoredBaseline is a channel's resting level carried across a restart.
type restoredBaseline struct {
	LevelUV float64 `json:"baseline_uv"`
	LearntS float64 `json:"learnt_s"`
}

// Snapshot returns the state worth keeping across a service restart: each
// channel's resting baseline and the detected mains frequency, as small
// JSON. Events in progress are not included; they restart from idle.
func (d *Detector) Snapshot() ([]byte, error) {
	s := snapshot{Version: snapshotVersion, MainsHz: d.mainsHz}
	for _, ch := range d.chans {
		s.Channels = append(s.Channels, snapshotBaseline{
			Channel:          ch.id.String(),
			restoredBaseline: restoredBaseline{LevelUV: ch.base.level, LearntS: ch.base.learnt},
		})
	}
	b, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("detect: snapshot: %w", err)
	}
	return b, nil
}

// Restore loads a Snapshot into a detector before its first frame:
// channels that appear later start from their saved baseline without a
// warm-up. It fails on malformed input and changes nothing then.
func (d *Detector) Restore(data []byte) error {
	var s snapshot
	if err := json.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("detect: restore: %w", err)
	}
	if s.Version != snapshotVersion {
		return fmt.Errorf("detect: restore: snapshot version %d, want %d", s.Version, snapshotVersion)
	}
	if s.MainsHz != 50 && s.MainsHz != 60 {
		return fmt.Errorf("detect: restore: mains %v Hz, want 50 or 60", s.MainsHz)
	}
	if len(s.Channels) > maxChannels {
		return fmt.Errorf("detect: restore: %d channels, at most %d", len(s.Channels), maxChannels)
	}
	if len(d.chans) > 0 {
		return fmt.Errorf("detect: restore: detector has already seen data")
	}
	m := make(map[wire.Channel]restoredBaseline, len(s.Channels))
	for _, c := range s.Channels {
		id, err := wire.ParseChannel(c.Channel)
		if err != nil {
			return fmt.Errorf("detect: restore: %w", err)
		}
		if !(c.LevelUV > 0) || math.IsInf(c.LevelUV, 0) || !(c.LearntS >= 0) || math.IsInf(c.LearntS, 0) {
			return fmt.Errorf("detect: restore: channel %s: bad baseline %v uV / %v s", c.Channel, c.LevelUV, c.LearntS)
		}
		m[id] = c.restoredBaseline
	}
	if !d.mainsFixed() {
		d.mainsHz = s.MainsHz
	}
	d.restored = m
	return nil
}

package firmwaresim

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// Truth kinds beyond the detector's event kinds (cramp, plm, movement, artifact).
const (
	// KindLM is an isolated leg movement: a burst like a PLM that belongs to no
	// series. It is not an event the detector should report as plm; it is in
	// the truth so evaluation can tell what a false positive overlapped.
	KindLM = "lm"
)

// SideBoth is the Side of a bilateral PLM: both legs moved with onsets within
// 0.5 s, which scoring counts as one movement.
const SideBoth = "both"

// Truth is one event of a simulated night as it really happened. Times are
// sample times (device clock). One line of a truth file:
//
//	{"device":"sim-0001","kind":"cramp","muscle":"calf","side":"left","onset":"2025-11-24T01:02:03.5Z","end":"2025-11-24T01:03:10Z"}
//
// Kind is cramp, plm, movement, artifact or lm (KindLM). Side is left, right
// or, for a bilateral PLM, both. For leg-level truth (plm, lm, movement,
// artifacts of the whole device) Muscle is the muscle of the leg's first
// channel. Cause says what an artifact was (lead_off, flat_line, saturation,
// mains_hum, gap) and what a movement was (turn_over, get_up, stretch).
type Truth struct {
	Device string    `json:"device"`
	Kind   string    `json:"kind"`
	Muscle string    `json:"muscle"`
	Side   string    `json:"side"`
	Onset  time.Time `json:"onset"`
	End    time.Time `json:"end"`
	Cause  string    `json:"cause,omitempty"`
}

// Duration returns End - Onset.
func (t Truth) Duration() time.Duration { return t.End.Sub(t.Onset) }

// WriteTruth writes ts as JSON Lines, one Truth per line, times in UTC RFC 3339
// with nanoseconds.
func WriteTruth(w io.Writer, ts []Truth) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	for i := range ts {
		t := ts[i]
		t.Onset, t.End = t.Onset.UTC(), t.End.UTC()
		if err := enc.Encode(&t); err != nil {
			return fmt.Errorf("truth: write line %d: %w", i+1, err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("truth: %w", err)
	}
	return nil
}

// ReadTruth reads JSON Lines written by WriteTruth. Blank lines are skipped;
// any other malformed line is an error naming the line.
func ReadTruth(r io.Reader) ([]Truth, error) {
	var out []Truth
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		b := sc.Bytes()
		if len(bytes.TrimSpace(b)) == 0 {
			continue
		}
		var t Truth
		if err := json.Unmarshal(b, &t); err != nil {
			return nil, fmt.Errorf("truth: line %d: %w", line, err)
		}
		if t.Device == "" || t.Kind == "" || t.Onset.IsZero() || t.End.Before(t.Onset) {
			return nil, fmt.Errorf("truth: line %d: want device, kind, onset and end >= onset", line)
		}
		out = append(out, t)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("truth: line %d: %w", line+1, err)
	}
	return out, nil
}

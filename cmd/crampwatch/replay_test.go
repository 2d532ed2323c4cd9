package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	firmwaresim "github.com/crampwatch/crampwatch/firmware-sim"
)

// TestReplay writes a simulated recording with `sim --csv`, damages one row
// and replays it: every simulated cramp is found once, with no cramp
// beside them, the bad row is reported and skipped, and --strict stops at
// it instead.
func TestReplay(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	csvPath, truthPath := filepath.Join(dir, "night.csv"), filepath.Join(dir, "truth.jsonl")
	var out, errOut bytes.Buffer
	if err := runSim(ctx, []string{"--csv", csvPath, "--truth", truthPath, "--seed", "3", "--hours", "0.2",
		"--scenario", "../../firmware-sim/scenarios/cramp-heavy.yaml", "--start", "2026-11-27T23:00:00Z"}, &out, &errOut); err != nil {
		t.Fatalf("sim: %v\n%s", err, errOut.String())
	}
	tf, err := os.Open(truthPath)
	if err != nil {
		t.Fatal(err)
	}
	truth, err := firmwaresim.ReadTruth(tf)
	tf.Close()
	if err != nil {
		t.Fatal(err)
	}
	var cramps []firmwaresim.Truth
	for _, tr := range truth {
		if tr.Kind == "cramp" {
			cramps = append(cramps, tr)
		}
	}
	if len(cramps) < 2 {
		t.Fatalf("the simulated night has %d cramps; the test needs at least 2", len(cramps))
	}

	// Damage a row a minute into the night, far from the first cramp.
	raw, err := os.ReadFile(csvPath)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitN(string(raw), "\n", 60_002)
	lines[60_000] = "not,a,row"
	if err := os.WriteFile(csvPath, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}

	out.Reset()
	errOut.Reset()
	if err := runReplay(ctx, []string{csvPath}, &out, &errOut); err != nil {
		t.Fatalf("replay: %v\n%s", err, errOut.String())
	}
	if !strings.Contains(errOut.String(), "line 60001") || !strings.Contains(errOut.String(), "skipped 1 bad rows") {
		t.Errorf("stderr does not report the bad row:\n%s", errOut.String())
	}
	found := make([]int, len(cramps))
	for line := range strings.Lines(out.String()) {
		var e struct {
			Kind, State, Side string
			Onset, End        time.Time
		}
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("output line %q: %v", line, err)
		}
		if e.Kind != "cramp" || e.State != "ended" {
			continue
		}
		matched := false
		for i, c := range cramps {
			if c.Side == e.Side && e.Onset.Before(c.End) && c.Onset.Before(e.End) {
				found[i]++
				matched = true
			}
		}
		if !matched {
			t.Errorf("cramp %s %s-%s matches no simulated cramp", e.Side, e.Onset, e.End)
		}
	}
	for i, n := range found {
		if n != 1 {
			t.Errorf("simulated cramp %s at %s found %d times, want once", cramps[i].Side, cramps[i].Onset, n)
		}
	}

	errOut.Reset()
	err = runReplay(ctx, []string{"--strict", csvPath}, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "line 60001") {
		t.Errorf("--strict: err = %v, want the bad row's line", err)
	}
}

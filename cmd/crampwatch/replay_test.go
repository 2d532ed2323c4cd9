package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/crampwatch/crampwatch/edf"
	firmwaresim "github.com/crampwatch/crampwatch/firmware-sim"
	"github.com/crampwatch/crampwatch/replay"
	"github.com/crampwatch/crampwatch/wire"
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

// TestReplayEDF converts a simulated night to EDF+D (one record per
// firmware frame, so the night's gaps stay gaps) and to a CSV holding the
// same 16-bit quantised samples, replays both and checks that the events
// are identical, and that the cramps are those the replay of the
// simulator's own CSV finds.
func TestReplayEDF(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	simCSV := filepath.Join(dir, "night.csv")
	start := time.Date(2026, 11, 27, 23, 0, 0, 0, time.UTC)
	var out, errOut bytes.Buffer
	if err := runSim(ctx, []string{"--csv", simCSV, "--truth", filepath.Join(dir, "truth.jsonl"), "--seed", "3", "--hours", "0.2",
		"--scenario", "../../firmware-sim/scenarios/cramp-heavy.yaml", "--start", start.Format(time.RFC3339)}, &out, &errOut); err != nil {
		t.Fatalf("sim: %v\n%s", err, errOut.String())
	}
	edfPath, quantCSV := filepath.Join(dir, "night.edf"), filepath.Join(dir, "quantised.csv")
	writeEDFNight(t, simCSV, edfPath, quantCSV, start)

	replayOut := func(args ...string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		if err := runReplay(ctx, args, &out, &errOut); err != nil {
			t.Fatalf("replay %q: %v\n%s", args, err, errOut.String())
		}
		return out.String() + "\x00" + errOut.String()
	}
	edfRes := replayOut("--channel", "Lab EMG 2=calf_right", edfPath)
	edfEvents, edfErr, _ := strings.Cut(edfRes, "\x00")
	if !strings.Contains(edfErr, `not replayed`) || !strings.Contains(edfErr, `"EEG C3"`) {
		t.Errorf("stderr does not name the ignored signal:\n%s", edfErr)
	}
	csvEvents, _, _ := strings.Cut(replayOut(quantCSV), "\x00")
	if edfEvents != csvEvents {
		t.Errorf("EDF replay and CSV replay of the same samples differ:\nEDF:\n%s\nCSV:\n%s", edfEvents, csvEvents)
	}
	origEvents, _, _ := strings.Cut(replayOut(simCSV), "\x00")
	type cramp struct {
		Side       string
		Onset, End time.Time
	}
	cramps := func(jsonl string) []cramp {
		var out []cramp
		for line := range strings.Lines(jsonl) {
			var e struct {
				Kind, State, Side string
				Onset, End        time.Time
			}
			if err := json.Unmarshal([]byte(line), &e); err != nil {
				t.Fatalf("output line %q: %v", line, err)
			}
			if e.Kind == "cramp" && e.State == "ended" {
				out = append(out, cramp{e.Side, e.Onset, e.End})
			}
		}
		return out
	}
	got, want := cramps(edfEvents), cramps(origEvents)
	if len(want) < 2 || len(got) != len(want) {
		t.Fatalf("EDF replay finds %d cramps, the simulator's CSV %d (want equal, at least 2)", len(got), len(want))
	}
	for i := range got {
		// 16-bit samples may move a threshold crossing by a block.
		if got[i].Side != want[i].Side || got[i].Onset.Sub(want[i].Onset).Abs() > 200*time.Millisecond ||
			got[i].End.Sub(want[i].End).Abs() > 200*time.Millisecond {
			t.Errorf("cramp %d: EDF %+v, CSV %+v", i, got[i], want[i])
		}
	}

	// Errors the command line gives.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--rate", "1000", edfPath}, "--rate is for CSV"},
		{[]string{"--channel", "No such=calf_left", edfPath}, "no signal with that label"},
		{[]string{"--channel", "Lab EMG 2", edfPath}, "want 'EDF label=channel'"},
		{[]string{"--format", "xml", edfPath}, "want csv or edf"},
		{[]string{"--format", "csv", edfPath}, "header"},
		{[]string{"--unit", "kV", edfPath}, "want uV, mV or V"},
	} {
		var out, errOut bytes.Buffer
		err := runReplay(ctx, tc.args, &out, &errOut)
		if err == nil || !strings.Contains(err.Error()+errOut.String(), tc.want) {
			t.Errorf("replay %q: err = %v, want %q", tc.args, err, tc.want)
		}
	}
}

// writeEDFNight reads the simulator's CSV frame by frame and writes it as
// EDF+D, one 100 ms record per frame: the first channel as "EMG calf-left"
// in millivolts, the second under a lab label ("Lab EMG 2", mapped with
// --channel) in microvolts, plus an EEG signal replay must skip. The
// samples the EDF holds, decoded, are also written to quantCSV.
func writeEDFNight(t *testing.T, simCSV, edfPath, quantCSV string, start time.Time) {
	t.Helper()
	in, err := os.Open(simCSV)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	r, err := replay.NewCSVReader(in, replay.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Channels()) != 2 || r.Channels()[0].String() != "calf_left" || r.Channels()[1].String() != "calf_right" {
		t.Fatalf("simulator channels %v, want calf_left, calf_right", r.Channels())
	}
	n := int(r.Rate() / 10)
	h := edf.Header{Format: edf.EDFPlusD, Start: start, Records: -1,
		RecordDuration: time.Duration(float64(n) / r.Rate() * float64(time.Second)),
		Signals: []edf.Signal{
			{Label: "EMG calf-left", Dimension: "mV", PhysMin: -6.5536, PhysMax: 6.5534, DigMin: -32768, DigMax: 32767, Samples: n},
			{Label: "EEG C3", Dimension: "uV", PhysMin: -100, PhysMax: 100, DigMin: -2048, DigMax: 2047, Samples: n},
			{Label: "Lab EMG 2", Dimension: "uV", PhysMin: -6553.6, PhysMax: 6553.4, DigMin: -32768, DigMax: 32767, Samples: n},
			{Annotation: true, Samples: 16},
		}}
	ef, err := os.Create(edfPath)
	if err != nil {
		t.Fatal(err)
	}
	defer ef.Close()
	w, err := edf.NewWriter(ef, h)
	if err != nil {
		t.Fatal(err)
	}
	var f wire.EMGFrame
	var prevEnd time.Duration
	rec := make([][]float64, 4)
	for {
		err := r.Next(&f)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if f.Len() != n {
			t.Fatalf("frame %d has %d samples, want %d", f.Seq, f.Len(), n)
		}
		rec[0] = rec[0][:0]
		for _, v := range f.Data[0] {
			rec[0] = append(rec[0], v/1000)
		}
		rec[1], rec[2] = f.Data[0], f.Data[1]
		// The simulated device clock jitters by a millisecond or so, and
		// EDF+D records must not overlap: a frame that starts before the
		// previous one ends is moved to its end.
		at := max(time.Duration(f.T0-start.UnixMicro())*time.Microsecond, prevEnd)
		if err := w.WriteRecord(at, rec); err != nil {
			t.Fatal(err)
		}
		prevEnd = at + h.RecordDuration
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if _, err := ef.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	// Decode the EDF back to write the CSV of the same samples.
	er, err := edf.NewReader(ef)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := os.Create(quantCSV)
	if err != nil {
		t.Fatal(err)
	}
	defer cf.Close()
	bw := bufio.NewWriter(cf)
	bw.WriteString("time,calf_left,calf_right\n")
	dst := er.NewRecord()
	var line []byte
	for {
		at, err := er.ReadRecord(dst)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		t0 := start.UnixMicro() + at.Microseconds()
		for j := range n {
			us := t0 + wire.SpanMicros(j, r.Rate())
			line = strconv.AppendInt(line[:0], us/1e6, 10)
			line = fmt.Appendf(line, ".%06d,", us%1e6)
			line = strconv.AppendFloat(line, dst[0][j]*1000, 'g', -1, 64)
			line = append(line, ',')
			line = strconv.AppendFloat(line, dst[2][j], 'g', -1, 64)
			bw.Write(append(line, '\n'))
		}
	}
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
}

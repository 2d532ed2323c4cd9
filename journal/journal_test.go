package journal

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crampwatch/crampwatch/detect"
	"github.com/crampwatch/crampwatch/pipeline"
	"github.com/crampwatch/crampwatch/wire"
)

var _ pipeline.Sink = (*Journal)(nil)

func events() []detect.Event {
	onset := time.UnixMicro(1763946000123456).UTC()
	ongoing := detect.Event{
		Device: "dev-01", Kind: detect.KindCramp, State: detect.StateOngoing,
		Channel: wire.Channel{Muscle: wire.Calf, Side: wire.Left},
		Onset:   onset, End: onset.Add(2 * time.Second), ConfirmedAt: onset.Add(2 * time.Second),
		DurationS: 2, PeakUV: 250, MeanUV: 140, MedianFreqHz: 80, Confidence: 0.9,
	}
	ended := ongoing
	ended.State = detect.StateEnded
	ended.End = onset.Add(40*time.Second + 7*time.Microsecond)
	ended.DurationS = 40.000007
	ended.PeakUV = 410.5
	artifact := detect.Event{
		Device: "dev-02", Kind: detect.KindArtifact, State: detect.StateEnded,
		Channel: wire.Channel{Muscle: wire.Hamstring, Side: wire.Right},
		Onset:   onset.Add(time.Minute), End: onset.Add(time.Minute + 5*time.Second),
		DurationS: 5, Cause: "lead_off",
	}
	return []detect.Event{ongoing, ended, artifact}
}

func counter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "sink" && l.GetValue() == sinkName {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

func open(t *testing.T, path string, reg prometheus.Registerer) *Journal {
	t.Helper()
	j, err := Open(Config{Path: path, SyncInterval: 10 * time.Millisecond}, reg)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func TestJournalWriteRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.jsonl")
	reg := prometheus.NewRegistry()
	j := open(t, path, reg)
	want := events()
	for _, e := range want {
		j.Event(e)
	}
	j.Envelope(detect.Envelope{Device: "dev-01"}) // ignored
	if err := j.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	got, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("read %d events, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("event %d\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", st.Mode().Perm())
	}
	if n := counter(t, reg, "crampwatch_sink_points_written_total"); n != 3 {
		t.Errorf("written = %v, want 3", n)
	}
	// Close is idempotent and events after it are counted, not written.
	if err := j.Close(context.Background()); err != nil {
		t.Errorf("second Close: %v", err)
	}
	j.Event(want[0])
	if n := counter(t, reg, "crampwatch_sink_dropped_total"); n != 1 {
		t.Errorf("dropped = %v, want 1", n)
	}
}

func TestJournalWritesBeforeClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.jsonl")
	j := open(t, path, nil)
	defer j.Close(context.Background())
	j.Event(events()[0])
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, err := Read(path)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("event not in the file while the journal is open")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestJournalAppendsAndRepairsTornLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.jsonl")
	j := open(t, path, nil)
	j.Event(events()[0])
	if err := j.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	// A crash cut the next line short.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"id":"dev-01-cramp-calf_left-1763946000123456","dev`)
	f.Close()

	// Before restart, readers skip the torn tail silently.
	got, err := Read(path)
	if err != nil || len(got) != 1 {
		t.Fatalf("torn tail: %d events, err %v; want 1, nil", len(got), err)
	}

	j = open(t, path, nil)
	j.Event(events()[1])
	if err := j.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	got, err = Read(path)
	// The torn line is now a malformed line in the middle: reported, and
	// the events around it are intact.
	var le *LineError
	if !errors.As(err, &le) || le.Line != 2 {
		t.Errorf("err = %v, want a LineError for line 2", err)
	}
	if len(got) != 2 || got[0].State != detect.StateOngoing || got[1].State != detect.StateEnded {
		t.Errorf("got %+v, want ongoing then ended", got)
	}
}

func TestEvents(t *testing.T) {
	var buf bytes.Buffer
	path := filepath.Join(t.TempDir(), "events.jsonl")
	j := open(t, path, nil)
	for _, e := range events() {
		j.Event(e)
	}
	if err := j.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(strings.TrimSuffix(string(good), "\n"), "\n")
	for _, tc := range []struct {
		name      string
		input     string
		wantOK    int
		wantLines []int // line numbers of LineErrors
	}{
		{"all good", string(good), 3, nil},
		{"empty", "", 0, nil},
		{"blank lines skipped", "\n" + lines[0] + "\n\n" + lines[1], 2, nil},
		{"bad JSON in the middle", lines[0] + "{not json}\n" + lines[1], 2, []int{2}},
		{"unknown kind", lines[0] + strings.Replace(lines[1], `"kind":"cramp"`, `"kind":"sneeze"`, 1), 1, []int{2}},
		{"torn last line", lines[0] + lines[1][:40], 1, nil},
		{"last line without newline but whole", lines[0] + strings.TrimSuffix(lines[1], "\n"), 2, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			buf.Reset()
			buf.WriteString(tc.input)
			ok := 0
			var bad []int
			for _, err := range Events(&buf) {
				var le *LineError
				switch {
				case err == nil:
					ok++
				case errors.As(err, &le):
					bad = append(bad, le.Line)
				default:
					t.Fatalf("unexpected error %v", err)
				}
			}
			if ok != tc.wantOK || len(bad) != len(tc.wantLines) {
				t.Fatalf("ok %d, bad lines %v; want %d, %v", ok, bad, tc.wantOK, tc.wantLines)
			}
			for i := range bad {
				if bad[i] != tc.wantLines[i] {
					t.Errorf("bad lines %v, want %v", bad, tc.wantLines)
				}
			}
		})
	}
	// Stopping early is honoured.
	n := 0
	for range Events(strings.NewReader(string(good))) {
		n++
		break
	}
	if n != 1 {
		t.Errorf("iterated %d after break", n)
	}
}

func TestJournalWriteErrorsCounted(t *testing.T) {
	// /dev/full accepts the open and fails every write with ENOSPC.
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full")
	}
	reg := prometheus.NewRegistry()
	j, err := Open(Config{Path: "/dev/full"}, reg)
	if err != nil {
		t.Fatal(err)
	}
	j.Event(events()[0])
	j.Event(events()[1])
	if err := j.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := counter(t, reg, "crampwatch_sink_errors_total"); n < 1 {
		t.Errorf("errors = %v, want >= 1", n)
	}
	if n := counter(t, reg, "crampwatch_sink_dropped_total"); n != 2 {
		t.Errorf("dropped = %v, want 2", n)
	}
}

func TestOpenErrors(t *testing.T) {
	if _, err := Open(Config{}, nil); err == nil {
		t.Error("empty path accepted")
	}
	if _, err := Open(Config{Path: filepath.Join(t.TempDir(), "missing", "dir", "j.jsonl")}, nil); err == nil {
		t.Error("path in missing directory accepted")
	}
}

func TestReadMissingFile(t *testing.T) {
	_, err := Read(filepath.Join(t.TempDir(), "nope.jsonl"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("err = %v, want not-exist", err)
	}
}

func FuzzEvents(f *testing.F) {
	f.Add([]byte(`{"device":"d","kind":"cramp","state":"ended","muscle":"calf","side":"left","onset_us":1}` + "\n"))
	f.Add([]byte("\n\n{\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for e, err := range Events(bytes.NewReader(data)) {
			if err == nil && e.Device == "" {
				t.Fatal("event without device accepted")
			}
		}
	})
}

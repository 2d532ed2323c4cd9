package export

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/crampwatch/crampwatch/detect"
	"github.com/crampwatch/crampwatch/journal"
)

// TestJournalSource exports the simulated night from a journal written by
// the real journal sink, in an order that is not the export's (second
// device first, every cramp's ongoing report long before its ended one)
// and with a malformed line, reading it in several passes. The tables must
// equal the InfluxDB export without what only InfluxDB knows.
func TestJournalSource(t *testing.T) {
	sn := simulated(t)
	path := filepath.Join(t.TempDir(), "journal.jsonl")
	write := func(events []detect.Event) {
		j, err := journal.Open(journal.Config{Path: path}, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range events {
			j.Event(e)
		}
		if err := j.Close(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	var ongoing, ended []detect.Event
	for i := len(sn.events) - 1; i >= 0; i-- {
		e := sn.events[i]
		if e.Kind == detect.KindCramp {
			o := e
			o.State, o.End = detect.StateOngoing, e.ConfirmedAt
			o.DurationS = e.ConfirmedAt.Sub(e.Onset).Seconds()
			ongoing = append(ongoing, o)
		}
		ended = append(ended, e)
	}
	write(ongoing)
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("{\"not\": \"an event\"}\n")
	f.Close()
	write(ended)

	opt := simOptions(t, sn, true, true)
	opt.Window = nil
	dir := filepath.Join(t.TempDir(), "out")
	src := &journalSource{path: path, batch: 30}
	m, err := Run(t.Context(), src, dir, []Format{FormatCSV}, opt)
	if err != nil {
		t.Fatal(err)
	}
	if m.SkippedRows != 1 || m.Source != "journal" {
		t.Errorf("manifest: source %q, %d rows skipped; want journal, 1", m.Source, m.SkippedRows)
	}
	wantEvents, wantNights, _ := expected(t, sn, opt)
	for i := range wantEvents {
		e := &wantEvents[i]
		e.Alerted, e.AlertLatencyS, e.Acknowledged, e.AckAction = Opt[bool]{}, Opt[float64]{}, Opt[bool]{}, Opt[string]{}
		e.DiaryPain, e.DiaryRemedies, e.DiaryNote = Opt[int64]{}, Opt[string]{}, Opt[string]{}
	}
	for i := range wantNights {
		n := &wantNights[i]
		n.Alerts, n.AlertLatencyMedianS = Opt[int64]{}, Opt[float64]{}
	}
	to := opt.tableOptions()
	if err := equalTables(readCSV(t, filepath.Join(dir, "events.csv"), eventColumns(to)), expectTable(eventColumns(to), wantEvents)); err != nil {
		t.Errorf("events: %v", err)
	}
	if err := equalTables(readCSV(t, filepath.Join(dir, "nights.csv"), nightColumns(to)), expectTable(nightColumns(to), wantNights)); err != nil {
		t.Errorf("nights: %v", err)
	}
	// Windows need the envelope, which the journal does not have.
	opt.Window = &Window{Before: time.Second}
	if _, err := Run(t.Context(), src, filepath.Join(t.TempDir(), "w"), []Format{FormatCSV}, opt); err == nil {
		t.Error("an export with windows from the journal succeeded")
	}
}

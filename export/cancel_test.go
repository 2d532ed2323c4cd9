package export

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/crampwatch/crampwatch/detect"
)

// TestCancelLeavesNothing cancels an export half way, as Ctrl-C does: no
// output directory, and no temporary files beside it.
func TestCancelLeavesNothing(t *testing.T) {
	for _, f := range []Format{FormatCSV, FormatJSONL, FormatParquet, FormatEDF} {
		t.Run(string(f), func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			src := &synthSource{devices: 4, nNights: 3, perNight: 500, start: time.Date(2025, 1, 1, 18, 0, 0, 0, time.UTC),
				after: func(n int) {
					if n == 5 {
						cancel()
					}
				}}
			parent := t.TempDir()
			dir := filepath.Join(parent, "out")
			opt := Options{From: src.start, To: src.start.AddDate(0, 0, 3), Nights: DefaultNights(time.UTC), Pseudonyms: testPseudonyms(t)}
			_, err := Run(ctx, src, dir, []Format{f}, opt)
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("Run = %v, want context.Canceled", err)
			}
			entries, err := os.ReadDir(parent)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range entries {
				t.Errorf("left behind: %s", e.Name())
			}
		})
	}
}

// TestRunRefusesExistingDir: an export never writes into or over an
// existing directory.
func TestRunRefusesExistingDir(t *testing.T) {
	dir := t.TempDir()
	src := &synthSource{devices: 1, nNights: 1, perNight: 5, start: time.Date(2025, 1, 1, 18, 0, 0, 0, time.UTC)}
	opt := Options{From: src.start, To: src.start.AddDate(0, 0, 1), Nights: DefaultNights(time.UTC), Pseudonyms: testPseudonyms(t)}
	if _, err := Run(t.Context(), src, dir, []Format{FormatCSV}, opt); err == nil {
		t.Fatal("Run wrote into an existing directory")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("the existing directory was touched: %v", entries)
	}
}

func TestOptionsCheck(t *testing.T) {
	start := time.Date(2025, 1, 1, 18, 0, 0, 0, time.UTC)
	p := testPseudonyms(t)
	tests := []struct {
		name string
		opt  Options
	}{
		{"no key", Options{From: start, To: start.Add(time.Hour)}},
		{"empty range", Options{From: start, To: start, Pseudonyms: p}},
		{"bad device", Options{From: start, To: start.Add(time.Hour), Pseudonyms: p, Devices: []string{"a/b"}}},
		{"bad kind", Options{From: start, To: start.Add(time.Hour), Pseudonyms: p, Kinds: []detect.Kind{"spasm"}}},
		{"bad hour", Options{From: start, To: start.Add(time.Hour), Pseudonyms: p, Nights: Nights{StartHour: 25}}},
		{"window too long", Options{From: start, To: start.Add(time.Hour), Pseudonyms: p, Window: &Window{Before: 2 * time.Hour}}},
	}
	for _, tc := range tests {
		if err := tc.opt.check(&influxSource{}); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
	ok := Options{From: start, To: start.Add(time.Hour), Pseudonyms: p, Window: &Window{Before: time.Minute}}
	if err := ok.check(&influxSource{}); err != nil {
		t.Errorf("valid options refused: %v", err)
	}
	if err := ok.check(NewJournalSource("unused")); err == nil {
		t.Error("windows from the journal accepted")
	}
}

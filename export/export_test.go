package export

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/crampwatch/crampwatch/detect"
)

const testKey = "crampwatch-test-key-0001"

func testPseudonyms(t *testing.T) *Pseudonymizer {
	t.Helper()
	p, err := NewPseudonymizer([]byte(testKey))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// testWindow is the envelope window of the round-trip tests.
var testWindow = Window{Before: 2 * time.Second, After: 1500 * time.Millisecond}

func simOptions(t *testing.T, sn *simNight, device, notes bool) Options {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	w := testWindow
	return Options{
		From: sn.from, To: sn.to, Nights: DefaultNights(berlin), Window: &w,
		IncludeDevice: device, IncludeNotes: notes, Pseudonyms: testPseudonyms(t), Version: "test",
		Now: func() time.Time { return time.Date(2025, 2, 1, 12, 0, 0, 0, time.UTC) },
	}
}

// expected builds, independently of the export code, the rows the export
// of the simulated night must hold: the events the pipeline produced and
// the loop the test recorded.
func expected(t *testing.T, sn *simNight, opt Options) ([]EventRow, []NightRow, []WindowRow) {
	t.Helper()
	var events []EventRow
	var windows []WindowRow
	nights := map[string]*NightRow{}
	latencies := map[string][]float64{}
	artifacts := map[string][][2]time.Time{}
	for _, e := range sn.events {
		subj := opt.Pseudonyms.Subject(e.Device)
		night, _, _ := opt.Nights.Of(e.Onset)
		ms := func(t time.Time) time.Time { return time.UnixMilli(t.UnixMilli()).UTC() }
		r := EventRow{
			Subject: subj, EventKey: strings.Replace(e.ID(), e.Device, subj, 1), Kind: string(e.Kind), State: string(e.State),
			Muscle: e.Channel.Muscle.String(), Side: e.Channel.Side.String(), Onset: ms(e.Onset), End: ms(e.End), Night: night,
			DurationS: e.DurationS, PeakUV: e.PeakUV, MeanUV: e.MeanUV, Confidence: e.Confidence,
		}
		if opt.IncludeDevice {
			r.Device = e.Device
		}
		if e.MedianFreqHz != 0 {
			r.MedianFreqHz = some(e.MedianFreqHz)
		}
		if !e.ConfirmedAt.IsZero() {
			r.DetectionLatencyS = some(e.ConfirmedAt.Sub(e.Onset).Seconds())
		}
		if e.Cause != "" {
			r.Cause = some(e.Cause)
		}
		n := nights[e.Device]
		if n == nil {
			_, start, end := opt.Nights.Of(e.Onset)
			n = &NightRow{Subject: subj, Night: night, From: later(start, opt.From), To: earlier(end, opt.To), Alerts: some[int64](0)}
			if opt.IncludeDevice {
				n.Device = e.Device
			}
			nights[e.Device] = n
		}
		switch e.Kind {
		case detect.KindCramp:
			l, ok := sn.loop[e.ID()]
			if !ok {
				t.Fatalf("no loop recorded for %s", e.ID())
			}
			r.Alerted, r.Acknowledged = some(l.alerted), some(l.acked)
			if l.alerted {
				r.AlertLatencyS = some(l.alertAt.Sub(e.Onset).Seconds())
				n.Alerts.V++
				latencies[e.Device] = append(latencies[e.Device], r.AlertLatencyS.V)
			}
			if l.acked {
				r.AckAction = some("ok")
			}
			r.DiaryPain, r.DiaryRemedies = some(int64(l.pain)), some(l.remedies)
			if opt.IncludeNotes && l.note != "" {
				r.DiaryNote = some(l.note)
			}
			n.Cramps++
			n.CrampTotalS += e.DurationS
			n.CrampLongestS = some(math.Max(n.CrampLongestS.V, e.DurationS))
		case detect.KindPLM:
			n.PLM++
		case detect.KindMovement:
			n.Movements++
		case detect.KindArtifact:
			artifacts[e.Device] = append(artifacts[e.Device], [2]time.Time{e.Onset, e.End})
		}
		events = append(events, r)
		if opt.Window != nil {
			from, to := e.Onset.Add(-opt.Window.Before), e.End.Add(opt.Window.After+time.Millisecond)
			var pts []detectEnvelope
			for _, p := range sn.envelope {
				if p.Device == e.Device && !p.Time.Before(from) && p.Time.Before(to) {
					pts = append(pts, detectEnvelope{p.Channel.String(), p.Time, p.RMSUV, p.BaselineUV})
				}
			}
			slices.SortStableFunc(pts, func(a, b detectEnvelope) int {
				if a.channel != b.channel {
					return strings.Compare(a.channel, b.channel)
				}
				return a.t.Compare(b.t)
			})
			for _, p := range pts {
				windows = append(windows, WindowRow{Subject: subj, Device: r.Device, EventKey: r.EventKey, Channel: p.channel,
					Time: ms(p.t), OffsetS: math.Round(p.t.Sub(e.Onset).Seconds()*1e6) / 1e6, RMSUV: p.rms, BaselineUV: p.base})
			}
		}
	}
	var out []NightRow
	for _, dev := range simDevices {
		n := nights[dev]
		if n == nil {
			t.Fatalf("device %s has no events", dev)
		}
		// Artifact minutes: the union of the intervals.
		iv := artifacts[dev]
		slices.SortFunc(iv, func(a, b [2]time.Time) int { return a[0].Compare(b[0]) })
		var total time.Duration
		var curEnd time.Time
		for _, a := range iv {
			s := a[0]
			if s.Before(curEnd) {
				s = curEnd
			}
			if a[1].After(s) {
				total += a[1].Sub(s)
			}
			if a[1].After(curEnd) {
				curEnd = a[1]
			}
		}
		n.ArtifactMin = total.Minutes()
		if m, ok := median(latencies[dev]); ok {
			n.AlertLatencyMedianS = some(m)
		}
		if n.Cramps == 0 {
			n.CrampLongestS = Opt[float64]{}
		}
		out = append(out, *n)
	}
	return events, out, windows
}

type detectEnvelope struct {
	channel   string
	t         time.Time
	rms, base float64
}

// checkRecording checks the recording hours (from health reports, which
// the test cannot predict to the second) and copies them into want, with
// the per-hour rates.
func checkRecording(t *testing.T, got table, want []NightRow) {
	t.Helper()
	idx := slices.Index(got.cols, "recording_h")
	if len(got.rows) != len(want) {
		t.Fatalf("%d nights, want %d", len(got.rows), len(want))
	}
	for i := range want {
		h, ok := got.rows[i][idx].(float64)
		// The simulated night is one hour with sensor gaps.
		if !ok || h < 0.8 || h > 1.01 {
			t.Fatalf("night %d: recording_h = %v, want about 1 h", i, got.rows[i][idx])
		}
		want[i].RecordingH = some(h)
		want[i].CrampsPerH = some(float64(want[i].Cramps) / h)
		want[i].PLMIndex = some(float64(want[i].PLM) / h)
	}
}

// TestRoundTripEveryFormat exports the simulated night (stored in the real
// InfluxDB by the real pipeline) in every format, reads every file back
// with an independent reader (encoding/csv, encoding/json, parquet-go, the
// EDF+ reader) and compares it with what the pipeline produced and the
// test recorded.
func TestRoundTripEveryFormat(t *testing.T) {
	sn := simulated(t)
	for _, priv := range []struct {
		name          string
		device, notes bool
	}{{"pseudonymous", false, false}, {"with device ids and notes", true, true}} {
		t.Run(priv.name, func(t *testing.T) {
			opt := simOptions(t, sn, priv.device, priv.notes)
			dir := filepath.Join(t.TempDir(), "out")
			m, err := Run(t.Context(), NewInfluxSource(sn.influx), dir, []Format{FormatCSV, FormatJSONL, FormatParquet, FormatEDF}, opt)
			if err != nil {
				t.Fatal(err)
			}
			wantEvents, wantNights, wantWindows := expected(t, sn, opt)
			to := opt.tableOptions()
			ec, nc, wc := eventColumns(to), nightColumns(to), windowColumns(to)
			nightsCSV := readCSV(t, filepath.Join(dir, "nights.csv"), nc)
			checkRecording(t, nightsCSV, wantNights)
			we, wn, ww := expectTable(ec, wantEvents), expectTable(nc, wantNights), expectTable(wc, wantWindows)
			if len(wantWindows) == 0 || len(wantEvents) < 10 {
				t.Fatalf("%d events, %d envelope points: the test would prove little", len(wantEvents), len(wantWindows))
			}
			t.Logf("%d events, %d nights, %d envelope points, %d EDF+ files", len(wantEvents), len(wantNights), len(wantWindows), m.EDFFiles)
			for _, tc := range []struct {
				file string
				want table
				read func(string) table
			}{
				{"events.csv", we, func(p string) table { return readCSV(t, p, ec) }},
				{"nights.csv", wn, func(p string) table { return readCSV(t, p, nc) }},
				{"envelope.csv", ww, func(p string) table { return readCSV(t, p, wc) }},
				{"events.jsonl", we, func(p string) table { return readJSONL(t, p, ec) }},
				{"nights.jsonl", wn, func(p string) table { return readJSONL(t, p, nc) }},
				{"envelope.jsonl", ww, func(p string) table { return readJSONL(t, p, wc) }},
				{"events.parquet", we, func(p string) table { return readParquet(t, p, ec) }},
				{"nights.parquet", wn, func(p string) table { return readParquet(t, p, nc) }},
				{"envelope.parquet", ww, func(p string) table { return readParquet(t, p, wc) }},
			} {
				if err := equalTables(tc.read(filepath.Join(dir, tc.file)), tc.want); err != nil {
					t.Errorf("%s: %v", tc.file, err)
				}
			}
			checkEDF(t, dir, opt, wantEvents, wantWindows)
			checkManifest(t, dir, m, opt, len(wantEvents), len(wantNights), len(wantWindows))
			checkPrivacy(t, dir, priv.device, priv.notes, sn)
		})
	}
}

// checkEDF reads every EDF+ file back and compares its annotations with
// the events and its signals with the envelope windows.
func checkEDF(t *testing.T, dir string, opt Options, events []EventRow, windows []WindowRow) {
	t.Helper()
	bySubject := map[string][]EventRow{}
	for _, e := range events {
		bySubject[e.Subject+"_"+e.Night] = append(bySubject[e.Subject+"_"+e.Night], e)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.edf"))
	if len(files) != len(bySubject) {
		t.Fatalf("%d EDF+ files, want one per subject-night (%d)", len(files), len(bySubject))
	}
	for _, path := range files {
		key := strings.TrimSuffix(filepath.Base(path), ".edf")
		want := bySubject[key]
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		f, err := ReadEDF(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if f.Continuous || f.RecordDur != time.Second || len(f.Signals) == 0 {
			t.Fatalf("%s: want EDF+D with 1 s records and envelope signals, got continuous=%v %v %d signals", path, f.Continuous, f.RecordDur, len(f.Signals))
		}
		if !strings.HasPrefix(f.Patient, want[0].Subject+" ") {
			t.Errorf("%s: patient %q, want the subject", path, f.Patient)
		}
		if len(f.Annotations) != len(want) {
			t.Fatalf("%s: %d annotations, want %d", path, len(f.Annotations), len(want))
		}
		slices.SortStableFunc(f.Annotations, func(a, b EDFAnnotation) int { return int(a.Onset - b.Onset) })
		for i, e := range want {
			a := f.Annotations[i]
			if !f.Start.Add(a.Onset).Equal(e.Onset) || a.Duration != e.End.Sub(e.Onset) || a.Text != annotation(&e) || !a.HasDuration {
				t.Errorf("%s: annotation %d = %+v at %v, want %q at %v for %v", path, i, a, f.Start.Add(a.Onset), annotation(&e), e.Onset, e.End.Sub(e.Onset))
			}
		}
		// Every envelope point sits in its sample slot, to the 0.1 µV
		// resolution of the signal (unless several points fell in one
		// slot, when the last one wins).
		sig := map[string]*EDFSignal{}
		for i := range f.Signals {
			sig[f.Signals[i].Label] = &f.Signals[i]
		}
		recIndex := map[time.Duration]int{}
		for i, r := range f.Records {
			recIndex[r] = i
		}
		type slotKey struct {
			channel string
			slot    int64
		}
		last := map[slotKey]float64{}
		for _, w := range windows {
			if w.Subject+"_"+eventNight(events, w.EventKey) != key {
				continue
			}
			last[slotKey{w.Channel, int64(math.Round(float64(w.Time.Sub(f.Start)) / float64(100*time.Millisecond)))}] = w.RMSUV
		}
		checked := 0
		for k, want := range last {
			s := sig[k.channel]
			if s == nil {
				t.Fatalf("%s: no signal %s", path, k.channel)
			}
			rec, ok := recIndex[time.Duration(k.slot/10)*time.Second]
			if !ok {
				continue // a point rounded past the last record of its window
			}
			checked++
			if got := s.Values[rec*s.Samples+int(k.slot%10)]; math.Abs(got-min(want, edfEnvMaxUV)) > edfEnvMaxUV/65535/2+1e-9 {
				t.Errorf("%s: %s slot %d = %v µV, want %v", path, k.channel, k.slot, got, want)
			}
		}
		if checked < len(last)/2 {
			t.Errorf("%s: only %d of %d envelope points are in the file", path, checked, len(last))
		}
	}
}

func eventNight(events []EventRow, key string) string {
	for _, e := range events {
		if e.EventKey == key {
			return e.Night
		}
	}
	return ""
}

func checkManifest(t *testing.T, dir string, m *Manifest, opt Options, events, nights, windows int) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var got Manifest
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.Rows.Events != int64(events) || got.Rows.Nights != int64(nights) || got.Rows.Envelope != int64(windows) {
		t.Errorf("manifest rows %+v, want %d events, %d nights, %d envelope", got.Rows, events, nights, windows)
	}
	if got.Source != "influxdb" || got.Version != "test" || got.Created != "2025-02-01T12:00:00.000Z" ||
		got.Filters.From != opt.From.Format(timeLayout) || got.Nights.TimeZone != "Europe/Berlin" || got.Nights.StartHour != 18 ||
		got.Pseudonym.Scheme != PseudonymScheme || got.Pseudonym.KeyID != opt.Pseudonyms.KeyID() || got.Window == nil || got.Window.BeforeS != 2 {
		t.Errorf("manifest %s", b)
	}
	if got.EDFFiles != int64(len(simDevices)) {
		t.Errorf("manifest: %d EDF+ files, want %d", got.EDFFiles, len(simDevices))
	}
	for _, f := range got.Files {
		st, err := os.Stat(filepath.Join(dir, f.Path))
		if err != nil || st.Size() != f.Bytes || st.Mode().Perm() != 0o600 {
			t.Errorf("manifest file %+v: on disk %v %v", f, st, err)
		}
	}
	if len(got.Files) != 9+len(simDevices) {
		t.Errorf("manifest lists %d files, want %d", len(got.Files), 9+len(simDevices))
	}
	if m.Rows != got.Rows {
		t.Errorf("Run returned rows %+v, manifest.json has %+v", m.Rows, got.Rows)
	}
}

// checkPrivacy: without the flags, no file of the export holds a device id
// or a diary note, and no file ever holds the key.
func checkPrivacy(t *testing.T, dir string, device, notes bool, sn *simNight) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var secrets []string
	if !device {
		secrets = append(secrets, simDevices...)
	}
	if !notes {
		secrets = append(secrets, "woke at 3")
	}
	secrets = append(secrets, testKey)
	foundDevice := false
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range secrets {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("%s contains %q", e.Name(), s)
			}
		}
		foundDevice = foundDevice || bytes.Contains(b, []byte(simDevices[0]))
	}
	if device && !foundDevice {
		t.Error("--include-device exported no device id")
	}
}

package export

import (
	"bytes"
	"cmp"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// mnePython returns a Python interpreter that has MNE-Python, or fails the
// test with how to install it: the EDF+ files must open in the tools sleep
// researchers use, and this test is the proof.
func mnePython(t *testing.T) string {
	t.Helper()
	candidates := []string{"/usr/bin/python3"}
	if p, err := exec.LookPath("python3"); err == nil {
		candidates = append(candidates, p)
	}
	for _, p := range candidates {
		if err := exec.Command(p, "-c", "import mne").Run(); err == nil {
			return p
		}
	}
	t.Fatalf("MNE-Python is required to validate EDF+ files and was not found (tried %v): "+
		"install Debian's package with: apt-get install -y python3-mne", candidates)
	return ""
}

// mneScript prints, for every EDF+ file given, what MNE reads from it.
const mneScript = `
import json, sys, warnings
import mne
mne.set_log_level("ERROR")
warnings.simplefilter("ignore")
out = {}
for path in sys.argv[1:]:
    ann = mne.read_annotations(path)
    r = {"onset": [float(x) for x in ann.onset], "duration": [float(x) for x in ann.duration],
         "description": list(ann.description)}
    raw = mne.io.read_raw_edf(path, preload=True)
    r["ch_names"] = raw.ch_names
    r["sfreq"] = float(raw.info["sfreq"])
    r["n_times"] = int(raw.n_times)
    r["meas_date"] = raw.info["meas_date"].isoformat() if raw.info["meas_date"] else None
    r["data"] = raw.get_data().tolist() if raw.ch_names else []
    out[path] = r
json.dump(out, sys.stdout)
`

type mneFile struct {
	Onset       []float64   `json:"onset"`
	Duration    []float64   `json:"duration"`
	Description []string    `json:"description"`
	ChNames     []string    `json:"ch_names"`
	SFreq       float64     `json:"sfreq"`
	NTimes      int         `json:"n_times"`
	MeasDate    string      `json:"meas_date"`
	Data        [][]float64 `json:"data"`
}

// TestEDFOpensInMNE exports the simulated night as EDF+, with envelope
// windows (EDF+D with signals) and without (annotation-only EDF+C), and
// checks that MNE-Python reads the same annotations and samples as our
// reader.
func TestEDFOpensInMNE(t *testing.T) {
	python := mnePython(t)
	sn := simulated(t)
	for _, windows := range []bool{true, false} {
		opt := simOptions(t, sn, false, false)
		if !windows {
			opt.Window = nil
		}
		dir := filepath.Join(t.TempDir(), "out")
		if _, err := Run(t.Context(), NewInfluxSource(sn.influx), dir, []Format{FormatEDF}, opt); err != nil {
			t.Fatal(err)
		}
		files, _ := filepath.Glob(filepath.Join(dir, "*.edf"))
		if len(files) == 0 {
			t.Fatal("no EDF+ files")
		}
		cmd := exec.Command(python, append([]string{"-c", mneScript}, files...)...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("MNE could not read the files: %v\n%s", err, stderr.String())
		}
		var got map[string]mneFile
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("MNE output: %v", err)
		}
		for _, path := range files {
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			ours, err := ReadEDF(bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			m := got[path]
			if len(m.Onset) != len(ours.Annotations) || len(ours.Annotations) == 0 {
				t.Fatalf("%s: MNE reads %d annotations, we wrote %d", path, len(m.Onset), len(ours.Annotations))
			}
			// MNE sorts annotations by onset; ties may come in another order.
			type ann struct {
				onset, dur float64
				text       string
			}
			var theirs, mine []ann
			for i := range m.Onset {
				theirs = append(theirs, ann{m.Onset[i], m.Duration[i], m.Description[i]})
			}
			for _, a := range ours.Annotations {
				mine = append(mine, ann{a.Onset.Seconds(), a.Duration.Seconds(), a.Text})
			}
			for _, l := range [][]ann{theirs, mine} {
				slices.SortFunc(l, func(a, b ann) int {
					return cmp.Or(cmp.Compare(math.Round(a.onset*1e6), math.Round(b.onset*1e6)), strings.Compare(a.text, b.text))
				})
			}
			for i := range mine {
				if a, b := theirs[i], mine[i]; math.Abs(a.onset-b.onset) > 1e-6 || math.Abs(a.dur-b.dur) > 1e-6 || a.text != b.text {
					t.Errorf("%s: MNE annotation %d = %+v, want %+v", path, i, a, b)
				}
			}
			if d, err := time.Parse(time.RFC3339, m.MeasDate); err != nil || !d.Equal(ours.Start) {
				t.Errorf("%s: MNE start %q, want %v", path, m.MeasDate, ours.Start)
			}
			if !windows {
				continue
			}
			if strings.Join(m.ChNames, ",") == "" || len(m.ChNames) != len(ours.Signals) || m.SFreq != 10 || m.NTimes != len(ours.Records)*10 {
				t.Fatalf("%s: MNE reads channels %v at %v Hz, %d samples; we wrote %d signals, %d records", path, m.ChNames, m.SFreq, m.NTimes, len(ours.Signals), len(ours.Records))
			}
			for i, s := range ours.Signals {
				if m.ChNames[i] != s.Label {
					t.Errorf("%s: channel %d is %q in MNE, %q for us", path, i, m.ChNames[i], s.Label)
				}
				for j, v := range s.Values {
					if math.Abs(m.Data[i][j]*1e6-v) > 1e-3 { // MNE reads µV as V
						t.Fatalf("%s: %s sample %d: MNE %v µV, we %v µV", path, s.Label, j, m.Data[i][j]*1e6, v)
					}
				}
			}
		}
	}
}

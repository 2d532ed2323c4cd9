package firmwaresim

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"gonum.org/v1/gonum/dsp/fourier"

	"github.com/crampwatch/crampwatch/wire"
)

func TestDeterminism(t *testing.T) {
	sc := DefaultScenario()
	sc.Hours = 0.1
	sc.Cramps.PerNight = 2
	for _, enc := range []string{"json", "binary"} {
		sc.Encoding = enc
		a := NewDevice("d1", sc, 42, testStart)
		b := NewDevice("d1", sc, 42, testStart)
		c := NewDevice("d1", sc, 43, testStart)
		if !slices.Equal(a.Truth(), b.Truth()) {
			t.Fatalf("%s: same seed gave different truth", enc)
		}
		var ba, bb, bc []byte
		same, n := true, 0
		for {
			ma, oka := a.Next(ba)
			mb, okb := b.Next(bb)
			mc, okc := c.Next(bc)
			ba, bb, bc = ma.Payload, mb.Payload, mc.Payload
			if oka != okb {
				t.Fatalf("%s: message %d: one device ended early", enc, n)
			}
			if !oka {
				break
			}
			if ma.Stream != mb.Stream || ma.End != mb.End || !bytes.Equal(ma.Payload, mb.Payload) {
				t.Fatalf("%s: message %d differs between two runs with the same seed", enc, n)
			}
			if okc && !bytes.Equal(ma.Payload, mc.Payload) {
				same = false
			}
			n++
		}
		if same {
			t.Fatalf("%s: a different seed gave identical bytes", enc)
		}
		if n < 6000 {
			t.Fatalf("%s: only %d messages in 6 minutes", enc, n)
		}
	}
}

func TestTruthRoundTrip(t *testing.T) {
	sc := DefaultScenario()
	sc.Cramps.PerNight = 4
	sc.PLM.WearerFraction = 1
	var all []Truth
	for seed := range int64(5) {
		all = append(all, NewDevice("sim-"+string(rune('a'+seed)), sc, seed, testStart).Truth()...)
	}
	kinds := map[string]bool{}
	for _, tr := range all {
		kinds[tr.Kind] = true
	}
	for _, k := range []string{"cramp", "plm", "movement", "artifact", KindLM} {
		if !kinds[k] {
			t.Errorf("no %s in five typical nights", k)
		}
	}
	var buf bytes.Buffer
	if err := WriteTruth(&buf, all); err != nil {
		t.Fatal(err)
	}
	first, _, _ := strings.Cut(buf.String(), "\n")
	for _, key := range []string{`"device":`, `"kind":`, `"muscle":`, `"side":`, `"onset":"2025-11-24T`, `"end":`} {
		if !strings.Contains(first, key) {
			t.Errorf("line %s lacks %s", first, key)
		}
	}
	got, err := ReadTruth(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(all) {
		t.Fatalf("read %d truths, wrote %d", len(got), len(all))
	}
	for i := range got {
		if !got[i].Onset.Equal(all[i].Onset) || !got[i].End.Equal(all[i].End) {
			t.Fatalf("truth %d: times changed: %v", i, got[i])
		}
		got[i].Onset, got[i].End = all[i].Onset, all[i].End
		if got[i] != all[i] {
			t.Fatalf("truth %d: %+v, want %+v", i, got[i], all[i])
		}
	}
}

func TestReadTruthErrors(t *testing.T) {
	ok := `{"device":"a","kind":"cramp","muscle":"calf","side":"left","onset":"2025-01-01T00:00:00Z","end":"2025-01-01T00:01:00Z"}`
	tests := []struct {
		name, in string
		want     string // error substring; empty means success
		n        int
	}{
		{"one", ok + "\n", "", 1},
		{"blank lines", "\n" + ok + "\n\n" + ok, "", 2},
		{"bad json", ok + "\n{nope\n", "line 2", 0},
		{"bad time", `{"device":"a","kind":"cramp","onset":"yesterday","end":"2025-01-01T00:01:00Z"}`, "line 1", 0},
		{"end before onset", `{"device":"a","kind":"cramp","onset":"2025-01-01T00:02:00Z","end":"2025-01-01T00:01:00Z"}`, "line 1", 0},
		{"no device", `{"kind":"cramp","onset":"2025-01-01T00:00:00Z","end":"2025-01-01T00:01:00Z"}`, "line 1", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadTruth(strings.NewReader(tt.in))
			if tt.want == "" {
				if err != nil || len(got) != tt.n {
					t.Fatalf("got %d, %v; want %d truths", len(got), err, tt.n)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err %v, want one mentioning %q", err, tt.want)
			}
		})
	}
}

func TestFrameInvariants(t *testing.T) {
	for _, tc := range []struct {
		name   string
		rate   float64
		enc    string
		unit   string
		frame  float64
		loss   float64
		dup    float64
		gaps   float64
		imuHz  float64
		status float64
		// simultaneous samples every IMU site at the same instants
		// (IMUStagger false).
		simultaneous bool
	}{
		{"typical", 1000, "json", "uV", 100, 0.002, 0.002, 1, 50, 300, false},
		{"faulty binary", 2000, "binary", "uV", 100, 0.05, 0.05, 3, 50, 60, false},
		{"odd rate mV", 333, "json", "mV", 50, 0.01, 0.01, 2, 100, 30, false},
		{"simultaneous IMU sites", 1000, "binary", "uV", 100, 0.01, 0.01, 1, 50, 300, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sc := DefaultScenario()
			sc.Hours = 0.15
			sc.Rate, sc.Encoding, sc.Unit, sc.FrameMS = tc.rate, tc.enc, tc.unit, tc.frame
			sc.IMURate = tc.imuHz
			sc.IMUStagger = !tc.simultaneous
			sc.StatusEveryS = tc.status
			sc.Transport.LossProb, sc.Transport.DupProb = tc.loss, tc.dup
			sc.Artifacts.GapsPerNight = tc.gaps
			sc.Artifacts.LeadOffPerNight = 2
			d := NewDevice("inv", sc, 3, testStart)
			r := record(t, d)
			c := d.Counts()
			n := d.emg.frameLen
			nightUS := int64(sc.Hours * 3600e6)

			if uint64(r.msgs) != c.Frames || uint64(r.dups) != c.Duplicates {
				t.Errorf("saw %d messages, %d duplicates; counts say %+v", r.msgs, r.dups, c)
			}
			// EMG: seq +1 per frame, skips only for lost frames; T0 on the
			// sample grid within the jitter; End in order and within the night.
			lostSeq := 0
			for i, s := range r.emgSeqs {
				want := time.Duration(float64(s) * float64(n) / tc.rate * 1e9).Microseconds()
				if dt := r.emgT0[i] - d.startUS - want; dt < -1001 || dt > 1001 {
					t.Fatalf("frame seq %d: T0 off the grid by %d us", s, dt)
				}
				if i > 0 {
					if s <= r.emgSeqs[i-1] {
						t.Fatalf("seq %d after %d", s, r.emgSeqs[i-1])
					}
					lostSeq += int(s - r.emgSeqs[i-1] - 1)
					if r.emgEnds[i] <= r.emgEnds[i-1] {
						t.Fatalf("End not increasing at seq %d", s)
					}
				}
				if r.emgEnds[i]-d.startUS > nightUS {
					t.Fatalf("frame ends after the night")
				}
			}
			lostSeq += int(r.emgSeqs[0]) + int(d.emgTotal) - 1 - int(r.emgSeqs[len(r.emgSeqs)-1])
			if got := len(r.emgSeqs) + lostSeq; int64(got) != d.emgTotal {
				t.Errorf("sent+lost EMG frames %d, want %d", got, d.emgTotal)
			}
			if lostSeq == 0 || uint64(lostSeq) > c.Lost+c.GapLost {
				t.Errorf("EMG seq skips %d, counts %+v", lostSeq, c)
			}
			wantIMU := int(sc.Hours*3600*tc.imuHz) / d.imu.frameLen * len(sc.IMUSites)
			if got := len(r.imu); got > wantIMU || got < wantIMU*8/10 {
				t.Errorf("%d IMU frames, want about %d", got, wantIMU)
			}
			// Both sites share the imu stream and its seq, which increases
			// through it; t0 increases per site, as ingest requires. Site k
			// of n samples k/n of a frame period late when staggered, and
			// with the other sites when simultaneous (their frames of a
			// period then share t0, give or take the clock jitter).
			nSites := uint32(len(sc.IMUSites))
			periodUS := float64(d.imu.frameLen) / tc.imuHz * 1e6
			lastT0 := map[wire.Site]int64{}
			for i, f := range r.imu {
				if f.Rate != tc.imuHz || f.Len() != d.imu.frameLen {
					t.Fatalf("IMU frame rate %v len %d", f.Rate, f.Len())
				}
				if i > 0 && f.Seq <= r.imu[i-1].Seq {
					t.Fatalf("IMU frame seq %d after seq %d", f.Seq, r.imu[i-1].Seq)
				}
				if last, ok := lastT0[f.Site]; ok && f.T0 <= last {
					t.Fatalf("IMU frame seq %d of %v: t0 %d after %d", f.Seq, f.Site, f.T0, last)
				}
				lastT0[f.Site] = f.T0
				k := f.Seq % nSites
				if f.Site.String() != sc.IMUSites[k] {
					t.Fatalf("IMU frame seq %d from %v, want %s", f.Seq, f.Site, sc.IMUSites[k])
				}
				want := float64(f.Seq/nSites) * periodUS
				if !tc.simultaneous {
					want += periodUS * float64(k) / float64(nSites)
				}
				if dt := float64(f.T0-d.startUS) - want; math.Abs(dt) > sc.Transport.JitterUS+1 {
					t.Fatalf("IMU frame seq %d of %v: t0 off its instant by %.0f us", f.Seq, f.Site, dt)
				}
				if f.End() > d.startUS+nightUS+1000 {
					t.Fatalf("IMU frame ends after the night")
				}
			}
			if len(r.status) < int(sc.Hours*3600/tc.status) {
				t.Errorf("%d status frames, want at least %d", len(r.status), int(sc.Hours*3600/tc.status))
			}
			for i := 1; i < len(r.status); i++ {
				if r.status[i].T <= r.status[i-1].T || r.status[i].Firmware != Firmware {
					t.Fatalf("status %d: %+v after %+v", i, r.status[i], r.status[i-1])
				}
			}
			// Sensor gaps: nothing sent inside them, and longer than a second.
			for _, tr := range d.Truth() {
				if tr.Cause != "gap" {
					continue
				}
				if tr.Duration() <= time.Second {
					t.Errorf("gap of %v", tr.Duration())
				}
				a, b := tr.Onset.UnixMicro(), tr.End.UnixMicro()
				for _, t0 := range r.emgT0 {
					if t0 > a+1000 && t0 < b-1000 {
						t.Fatalf("EMG frame at %d inside gap %v", t0, tr)
					}
				}
			}
		})
	}
}

func TestLeadOffInStatus(t *testing.T) {
	sc := quiet(DefaultScenario())
	sc.Hours = 0.5
	sc.Artifacts.LeadOffPerNight = 3
	sc.Artifacts.LeadOffS = Range{20, 60}
	d := NewDevice("lo", sc, 11, testStart)
	r := record(t, d)
	var leadOffs []Truth
	for _, tr := range d.Truth() {
		if tr.Cause == "lead_off" {
			leadOffs = append(leadOffs, tr)
		}
	}
	if len(leadOffs) == 0 {
		t.Fatal("no lead-off scheduled")
	}
	for _, tr := range leadOffs {
		ch, _ := wire.ParseChannel(tr.Muscle + "_" + tr.Side)
		var at, after bool
		for _, s := range r.status {
			switch {
			case s.T == tr.Onset.UnixMicro():
				at = slices.Contains(s.LeadOff, ch)
			case s.T == tr.End.UnixMicro():
				after = !slices.Contains(s.LeadOff, ch)
			}
		}
		if !at || !after {
			t.Errorf("%v: status at onset reports it %v, at end cleared %v", tr, at, after)
		}
		ci := slices.IndexFunc(d.chans, func(c chanInfo) bool { return c.ch == ch })
		seg := r.segment(ci, sec(tr.Onset)+0.5, sec(tr.End)-0.5)
		if m := math.Abs(mean(seg)); m < 0.3*sc.Wearer.RailUV {
			t.Errorf("%v: mean %.0f uV, want a large DC offset", tr, m)
		}
	}
}

func mean(x []float64) float64 {
	s, n := 0.0, 0
	for _, v := range x {
		if !math.IsNaN(v) {
			s += v
			n++
		}
	}
	return s / float64(n)
}

// bandFraction returns the fraction of x's power (mean removed) between lo
// and hi Hz, averaging Hann-windowed periodograms of 1024 samples.
func bandFraction(x []float64, rate, lo, hi float64) float64 {
	const n = 1024
	fft := fourier.NewFFT(n)
	seg := make([]float64, n)
	var in, total float64
	for off := 0; off+n <= len(x); off += n / 2 {
		m := mean(x[off : off+n])
		for i := range seg {
			w := 0.5 - 0.5*math.Cos(2*math.Pi*float64(i)/n)
			seg[i] = (x[off+i] - m) * w
		}
		for i, c := range fft.Coefficients(nil, seg) {
			p := real(c)*real(c) + imag(c)*imag(c)
			f := fft.Freq(i) * rate
			total += p
			if f >= lo && f <= hi {
				in += p
			}
		}
	}
	return in / total
}

func TestSignalStatistics(t *testing.T) {
	for _, rate := range []float64{500, 1000, 2000} {
		sc := quiet(DefaultScenario())
		sc.Hours = 0.05
		sc.Rate = rate
		// The band test is about the EMG itself: no wander, no hum, and the
		// quietest amplifier (its white noise spreads up to Nyquist).
		sc.Wearer.WanderUV, sc.Wearer.HumUV = Range{0, 0}, Range{0, 0}
		sc.Wearer.SensorNoiseUV = Range{0.3, 0.3}
		for seed := range int64(4) {
			d := NewDevice("stat", sc, seed, testStart)
			r := record(t, d)
			w := d.Wearer()
			for ci := range d.chans {
				x := r.segment(ci, 10, 160)
				got := rms(x)
				if lo, hi := w.RestUV[ci]*0.8, w.RestUV[ci]*1.25; got < lo || got > hi {
					t.Errorf("rate %v seed %d ch %d: rest RMS %.2f uV, wearer level %.2f", rate, seed, ci, got, w.RestUV[ci])
				}
				if got < 2*0.7*0.8*0.85 || got > 6*1.4*1.2*1.15 {
					t.Errorf("rate %v seed %d: rest RMS %.2f uV outside the scenario's range", rate, seed, got)
				}
				if f := bandFraction(x, rate, emgLowHz, emgHighHz); f < 0.85 {
					t.Errorf("rate %v seed %d: %.0f%% of the power in 20-250 Hz, want most", rate, seed, 100*f)
				}
			}
		}
	}
}

func TestHum(t *testing.T) {
	for _, mains := range []float64{50, 60} {
		sc := quiet(DefaultScenario())
		sc.Hours = 0.05
		sc.Mains = mains
		sc.Wearer.HumUV = Range{20, 20}
		d := NewDevice("hum", sc, 1, testStart)
		r := record(t, d)
		x := r.segment(0, 10, 70)
		if f := bandFraction(x, sc.Rate, mains-2, mains+2); f < 0.5 {
			t.Errorf("mains %v: %.0f%% of the power at the mains frequency with 20 uV hum", mains, 100*f)
		}
		other := 110.0 - mains // 60 for 50 Hz mains and 50 for 60
		if f := bandFraction(x, sc.Rate, other-2, other+2); f > 0.02 {
			t.Errorf("mains %v: %.1f%% of the power at %v Hz", mains, 100*f, other)
		}
	}
}

func TestCrampsStandOut(t *testing.T) {
	sc, err := LoadScenario("scenarios/cramp-heavy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	sc.Hours = 0.5
	d := NewDevice("cramp", sc, 5, testStart)
	r := record(t, d)
	n := 0
	for _, tr := range d.Truth() {
		if tr.Kind != "cramp" {
			continue
		}
		n++
		ci := slices.IndexFunc(d.chans, func(c chanInfo) bool { return c.ch.String() == tr.Muscle+"_"+tr.Side })
		a, b := sec(tr.Onset), sec(tr.End)
		if b-a < 8 {
			continue
		}
		during := r.segment(ci, a+3, b-3)
		// Rest is the band-limited level the wearer had; compare the cramp with it.
		if ratio := rms(during) / d.Wearer().RestUV[ci]; ratio < 10 {
			t.Errorf("%v: cramp RMS only %.1f x rest", tr, ratio)
		}
		// Gradual onset: the first 100 ms are far below the plateau.
		if early, full := rms(r.segment(ci, a, a+0.1)), rms(during); early > full/3 {
			t.Errorf("%v: onset not gradual: %.0f uV in the first 100 ms, %.0f later", tr, early, full)
		}
	}
	if n < 4 {
		t.Fatalf("%d cramps in 30 minutes of cramp-heavy", n)
	}
}

// legOf lists the legs a truth occupies.
func legsOf(tr Truth) []string {
	if tr.Side == SideBoth {
		return []string{"left", "right"}
	}
	return []string{tr.Side}
}

func TestScheduleRules(t *testing.T) {
	files, err := filepath.Glob("scenarios/*.yaml")
	if err != nil || len(files) < 8 {
		t.Fatalf("scenario files: %v %v", files, err)
	}
	counts := map[string]int{}
	for _, file := range files {
		sc, err := LoadScenario(file)
		if err != nil {
			t.Fatal(err)
		}
		for seed := range int64(20) {
			d := NewDevice("sched", sc, seed, testStart)
			ts := d.Truth()
			night := testStart.Add(time.Duration(sc.Hours * float64(time.Hour)))
			byLeg := map[string][]Truth{}
			for _, tr := range ts {
				counts[tr.Kind]++
				if tr.Onset.Before(testStart) || tr.End.After(night) || !tr.End.After(tr.Onset) {
					t.Fatalf("%s seed %d: %v outside the night", file, seed, tr)
				}
				for _, leg := range legsOf(tr) {
					byLeg[leg] = append(byLeg[leg], tr)
				}
			}
			for leg, list := range byLeg {
				for i := 1; i < len(list); i++ {
					a, b := list[i-1], list[i]
					if b.Onset.Before(a.End) {
						t.Fatalf("%s seed %d %s: %v overlaps %v", file, seed, leg, b, a)
					}
					// Within a PLM series movements are closer than the guard.
					if gap := b.Onset.Sub(a.End).Seconds(); gap < sc.GuardS-1e-6 && (a.Kind != "plm" || b.Kind != "plm") {
						t.Fatalf("%s seed %d %s: %v only %.1f s after %v", file, seed, leg, b, gap, a)
					}
				}
			}
			checkPLM(t, file, seed, ts)
		}
	}
	for _, k := range []string{"cramp", "plm", "movement", "artifact", KindLM} {
		if counts[k] == 0 {
			t.Errorf("no %s truth in any scenario", k)
		}
	}
}

// checkPLM checks that PLM truth forms scoreable series (at least 4
// movements of 0.5-10 s, onsets 10-90 s apart) and that isolated leg
// movements cannot be chained into one.
func checkPLM(t *testing.T, file string, seed int64, ts []Truth) {
	t.Helper()
	var lms []Truth
	for _, tr := range ts {
		if tr.Kind == "plm" || tr.Kind == KindLM {
			lms = append(lms, tr)
		}
		if tr.Kind == "plm" {
			if d := tr.Duration().Seconds(); d < 0.5 || d > 10.5 {
				t.Fatalf("%s seed %d: PLM of %.2f s", file, seed, d)
			}
		}
	}
	run := []Truth{}
	flush := func() {
		nplm := 0
		for _, tr := range run {
			if tr.Kind == "plm" {
				nplm++
			}
		}
		if nplm > 0 && (nplm != len(run) || nplm < 4) {
			t.Fatalf("%s seed %d: a chain of %d leg movements holds %d PLM", file, seed, len(run), nplm)
		}
		run = run[:0]
	}
	for i, tr := range lms {
		if i > 0 {
			iv := tr.Onset.Sub(lms[i-1].Onset).Seconds()
			if iv > 90 {
				flush()
			} else if iv < 10 {
				t.Fatalf("%s seed %d: leg movements %.1f s apart", file, seed, iv)
			}
		}
		run = append(run, tr)
	}
	flush()
}

func TestScenarioFiles(t *testing.T) {
	tests := []struct {
		file  string
		check func(Scenario) bool
	}{
		{"typical.yaml", func(s Scenario) bool { return s.Hours == 8 && s.Cramps.PerNight == 1.5 }},
		{"cramp-heavy.yaml", func(s Scenario) bool { return s.Hours == 2 && s.Cramps.EveryS == 300 }},
		{"plm-only.yaml", func(s Scenario) bool { return s.PLM.WearerFraction == 1 && s.Cramps.PerNight == 0 }},
		{"movement-only.yaml", func(s Scenario) bool { return s.Movements.TurnsPerNight > 0 && s.PLM.SeriesPerNight == 0 }},
		{"rate500.yaml", func(s Scenario) bool { return s.Rate == 500 }},
		{"rate2000.yaml", func(s Scenario) bool { return s.Rate == 2000 }},
		{"hum60.yaml", func(s Scenario) bool { return s.Mains == 60 }},
		{"gain-half.yaml", func(s Scenario) bool { return s.Wearer.Gain == Range{0.35, 0.7} }},
		{"gain-double.yaml", func(s Scenario) bool { return s.Wearer.Gain == Range{1.4, 2.8} }},
		{"imu-simultaneous.yaml", func(s Scenario) bool { return !s.IMUStagger && s.Hours == 8 }},
	}
	for _, tt := range tests {
		sc, err := LoadScenario(filepath.Join("scenarios", tt.file))
		if err != nil {
			t.Errorf("%s: %v", tt.file, err)
			continue
		}
		if !tt.check(sc) || sc.Name == "" {
			t.Errorf("%s: unexpected content %+v", tt.file, sc)
		}
		// Everything a file leaves out comes from the default.
		if len(sc.Channels) == 0 || sc.Wearer.RailUV == 0 {
			t.Errorf("%s: defaults not filled in", tt.file)
		}
	}
}

func TestParseScenarioErrors(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"unknown key", "hourz: 3\n", "hourz"},
		{"bad rate", "rate: 100\n", "rate"},
		{"bad channel", "channels: [calf_middle]\n", "calf_middle"},
		{"bad range", "cramps:\n  peak_uv: [800, 80]\n", "peak_uv"},
		{"bad mains", "mains: 55\n", "mains"},
		{"bad encoding", "encoding: xml\n", "encoding"},
		{"bad muscle", "cramps:\n  muscles: {toe: 1}\n", "toe"},
		{"json", `{"rate": 9000}`, "rate"},
		{"tiny cramp interval", "cramps:\n  every_s: 0.001\n", "every_s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseScenario([]byte(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err %v, want one mentioning %q", err, tt.want)
			}
		})
	}
	sc, err := ParseScenario([]byte("cramps:\n  muscles: {hamstring: 1}\n"))
	if err != nil || len(sc.Cramps.Muscles) != 1 {
		t.Fatalf("muscles should replace the default weights: %v %v", sc.Cramps.Muscles, err)
	}
	if d := NewDevice("x", Scenario{}, 1, testStart); d.Err() == nil {
		t.Fatal("a zero scenario made a working device")
	} else if _, ok := d.Next(nil); ok {
		t.Fatal("a broken device sent a message")
	}
}

func TestDefaultScenarioFileMatches(t *testing.T) {
	b, err := os.ReadFile("scenarios/typical.yaml")
	if err != nil {
		t.Fatal(err)
	}
	sc, err := ParseScenario(b)
	if err != nil {
		t.Fatal(err)
	}
	def := DefaultScenario()
	if !reflect.DeepEqual(sc, def) {
		t.Fatalf("typical.yaml does not spell out DefaultScenario:\n%+v\n%+v", sc, def)
	}
}

func BenchmarkNext(b *testing.B) {
	for _, enc := range []string{"json", "binary"} {
		b.Run(enc, func(b *testing.B) {
			sc := DefaultScenario()
			sc.Encoding = enc
			d := NewDevice("bench", sc, 1, testStart)
			buf := make([]byte, 0, 8192)
			var bytes int64
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				m, ok := d.Next(buf)
				if !ok {
					b.StopTimer()
					d = NewDevice("bench", sc, 1, testStart)
					b.StartTimer()
					continue
				}
				buf = m.Payload
				bytes += int64(len(m.Payload))
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "frames/s")
			b.ReportMetric(float64(bytes)/float64(b.N), "B/frame")
		})
	}
}

func TestIMUMotion(t *testing.T) {
	sc := quiet(DefaultScenario())
	sc.Hours = 0.5
	sc.Movements.TurnsPerNight = 6
	sc.Movements.StretchesPerNight = 3
	sc.Cramps.PerNight = 5
	sc.Cramps.TiltDeg = Range{4, 6}
	sc.Cramps.ReactionProb = 0.6
	d := NewDevice("imu", sc, 21, testStart)
	r := record(t, d)
	// peak returns the largest angular rate and the mean gravity vector of
	// site side's samples in [a, b) seconds.
	peak := func(side string, a, b float64) (float64, [3]float64) {
		var pk float64
		var g [3]float64
		n := 0
		for _, f := range r.imu {
			if f.Site.Side.String() != side {
				continue
			}
			for j := range f.Acc {
				ts := float64(f.T0-d.startUS)/1e6 + float64(j)/f.Rate
				if ts < a || ts >= b {
					continue
				}
				pk = math.Max(pk, math.Sqrt(f.Gyr[j][0]*f.Gyr[j][0]+f.Gyr[j][1]*f.Gyr[j][1]+f.Gyr[j][2]*f.Gyr[j][2]))
				for i := range g {
					g[i] += f.Acc[j][i]
				}
				n++
			}
		}
		for i := range g {
			g[i] /= float64(n)
		}
		return pk, g
	}
	angle := func(a, b [3]float64) float64 {
		dot := a[0]*b[0] + a[1]*b[1] + a[2]*b[2]
		na := math.Sqrt(a[0]*a[0] + a[1]*a[1] + a[2]*a[2])
		nb := math.Sqrt(b[0]*b[0] + b[1]*b[1] + b[2]*b[2])
		return math.Acos(math.Min(1, dot/(na*nb))) / deg
	}
	var turns, cramps, stretches, reactions int
	for _, tr := range d.Truth() {
		a, b := sec(tr.Onset), sec(tr.End)
		restPk, before := peak(tr.Side, a-6, a-1)
		switch tr.Kind {
		case "movement":
			if tr.Cause == "stretch" {
				stretches++
				pk, during := peak(tr.Side, a+0.4*(b-a), a+0.6*(b-a))
				if ang := angle(before, during); ang < 5 || pk > 60 {
					t.Errorf("%v: tilt %.1f deg, peak rate %.1f deg/s: want a moderate movement", tr, ang, pk)
				}
				continue
			}
			turns++
			pk, _ := peak(tr.Side, a, b)
			_, after := peak(tr.Side, b+1, b+6)
			if restPk > 5 || pk < 20 {
				t.Errorf("%v: angular rate %.1f deg/s at rest, %.1f while turning", tr, restPk, pk)
			}
			if ang := angle(before, after); ang < 20 {
				t.Errorf("%v: shank orientation changed %.1f deg by turning over", tr, ang)
			}
		case "cramp":
			if b-a < 12 {
				continue
			}
			cramps++
			e := d.eps[slices.IndexFunc(d.eps, func(e episode) bool { return e.kind == epCramp && d.at(e.start).Equal(tr.Onset) })]
			if e.reactD > 0 {
				// The wearer moves the leg, and the muscle stays contracted.
				reactions++
				pk, _ := peak(tr.Side, e.react, e.react+e.reactD)
				ci := e.ch
				inside := rms(r.segment(ci, e.react, e.react+e.reactD))
				if pk < 20 || inside < 5*d.Wearer().RestUV[ci] {
					t.Errorf("%v: reaction with %.1f deg/s, EMG %.0f uV", tr, pk, inside)
				}
				continue
			}
			pk, during := peak(tr.Side, a+4, b-6)
			if ang := angle(before, during); ang < 2 || ang > 10 || pk > 30 {
				t.Errorf("%v: tilt %.1f deg, peak rate %.1f deg/s: want a few degrees and a still leg", tr, ang, pk)
			}
		}
	}
	if turns == 0 || cramps == 0 || stretches == 0 || reactions == 0 {
		t.Fatalf("%d turns, %d stretches, %d cramps (%d with a reaction) scheduled", turns, stretches, cramps, reactions)
	}
}

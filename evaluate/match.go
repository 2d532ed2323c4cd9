package evaluate

import (
	"encoding/json"
	"math"
	"sort"
	"strconv"
	"time"

	"gonum.org/v1/gonum/stat"

	"github.com/crampwatch/crampwatch/detect"
	firmwaresim "github.com/crampwatch/crampwatch/firmware-sim"
)

// Float is a float64 that is NaN when undefined (a sensitivity without any
// cramp, a latency without any alert) and encodes NaN as JSON null, which
// encoding/json cannot do for a plain float64.
type Float float64

// MarshalJSON writes null for NaN and infinities.
func (f Float) MarshalJSON() ([]byte, error) {
	v := float64(f)
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return []byte("null"), nil
	}
	return strconv.AppendFloat(nil, v, 'g', -1, 64), nil
}

// UnmarshalJSON reads null as NaN.
func (f *Float) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*f = Float(math.NaN())
		return nil
	}
	var v float64
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*f = Float(v)
	return nil
}

// Report is the outcome of evaluating detected events against ground truth.
// Ratios and times are NaN (JSON null) when there is nothing to compute them on.
type Report struct {
	Nights int     `json:"nights"`
	Hours  float64 `json:"hours"` // simulated hours in total (Run only)

	// Cramps: matching is one-to-one (see Match); a cramp reported ongoing
	// then ended is one detection.
	Cramps               int   `json:"cramps"`           // cramp truths
	CrampDetections      int   `json:"cramp_detections"` // distinct detected cramps (Event.ID)
	CrampsDetected       int   `json:"cramps_detected"`  // cramp truths matched by a detection
	CrampSensitivity     Float `json:"cramp_sensitivity"`
	CrampPrecision       Float `json:"cramp_precision"`
	CrampMuscleMismatch  int   `json:"cramp_muscle_mismatch"` // matched on the right leg but the wrong muscle
	Alerts               int   `json:"alerts"`                // distinct ongoing cramp reports
	FalseAlerts          int   `json:"false_alerts"`
	FalseAlertsPerNight  Float `json:"false_alerts_per_night"`
	AlertLatencyMedianS  Float `json:"alert_latency_median_s"`
	AlertLatencyP95S     Float `json:"alert_latency_p95_s"`
	AlertLatencyMaxS     Float `json:"alert_latency_max_s"`
	DurationErrorMedianS Float `json:"duration_error_median_s"`
	DurationErrorP95S    Float `json:"duration_error_p95_s"`
	// MovementFalseCramps counts false alerts that overlap (with Slack) a
	// movement truth on the same leg.
	MovementFalseCramps int `json:"movement_false_cramps"`
	// FalseAlertsBy says what each false alert overlapped most (with Slack,
	// same leg): cramp (a second alert within one true cramp), plm, lm,
	// movement, artifact:<cause>, cramp_other_leg, or nothing.
	FalseAlertsBy map[string]int `json:"false_alerts_by"`

	PLMTruth     int   `json:"plm_truth"`
	PLMEvents    int   `json:"plm_events"`
	PLMMatched   int   `json:"plm_matched"`
	PLMPrecision Float `json:"plm_precision"`
	PLMRecall    Float `json:"plm_recall"`
	PLMF1        Float `json:"plm_f1"`

	MovementTruth     int   `json:"movement_truth"`
	MovementEvents    int   `json:"movement_events"`
	MovementRecall    Float `json:"movement_recall"`
	MovementPrecision Float `json:"movement_precision"`

	ArtifactTruth  int   `json:"artifact_truth"`
	ArtifactEvents int   `json:"artifact_events"`
	ArtifactRecall Float `json:"artifact_recall"`
	// ArtifactRecallByCause is the recall per truth cause (an artifact event
	// of any cause may match: the detector's cause is its best guess).
	ArtifactRecallByCause map[string]Float `json:"artifact_recall_by_cause"`

	TruthCounts map[string]int `json:"truth_counts"` // by kind
	EventCounts map[string]int `json:"event_counts"` // by kind, distinct events

	// Throughput of Run: EMG samples (all channels) through ingest and
	// detection per wall-clock second, and simulated time per wall time.
	SamplesPerSecond Float   `json:"samples_per_second"`
	RealtimeFactor   Float   `json:"realtime_factor"`
	WallS            float64 `json:"wall_s"`
	Ingest           Ingest  `json:"ingest"`

	MissedCramps   []Detail `json:"missed_cramps,omitempty"`
	FalseAlertList []Detail `json:"false_alert_list,omitempty"`
}

// Ingest sums the ingest router's view of all nights (Run only).
type Ingest struct {
	FramesIn   uint64 `json:"frames_in"`
	FramesLost uint64 `json:"frames_lost"`
	FramesDup  uint64 `json:"frames_dup"`
	Rejected   uint64 `json:"rejected"`
}

// Detail names one missed cramp or false alert, for a closer look.
type Detail struct {
	Device      string    `json:"device"`
	Side        string    `json:"side"`
	Muscle      string    `json:"muscle"`
	Onset       time.Time `json:"onset"`
	DurationS   float64   `json:"duration_s"`
	ConfirmedAt time.Time `json:"confirmed_at,omitzero"`
	Overlapped  string    `json:"overlapped,omitempty"` // false alerts: see Report.FalseAlertsBy
}

// MatchOptions tunes Match.
type MatchOptions struct {
	// Nights is the number of nights evaluated, for per-night rates; zero
	// means the number of distinct devices in the truth.
	Nights int
	// Slack widens a false alert's interval on both sides when looking for
	// what caused it (FalseAlertsBy, MovementFalseCramps); it does not
	// affect matching. Zero means 2 s.
	Slack time.Duration
	// MaxDetails bounds MissedCramps and FalseAlertList; zero means 50,
	// negative means none.
	MaxDetails int
}

// detection is one distinct detected event: for cramps the ongoing and
// ended reports sharing an Event.ID are merged.
type detection struct {
	device  string
	kind    string
	side    string
	muscle  string
	onset   time.Time
	end     time.Time
	ongoing *detect.Event // cramp: the alert
	ended   *detect.Event
	matched int // index into truth, or -1
}

// Match compares detected events with the ground truth of the same nights.
//
// Rules:
//   - An event can match a truth of the same device and kind whose leg is
//     the event's Channel.Side (a bilateral PLM truth, side "both", accepts
//     either leg) when their intervals overlap (closed intervals, so touching
//     counts). Truth of kind "lm" is never matched; it only explains false
//     positives.
//   - Reports sharing an Event.ID are one detection (a cramp is reported
//     ongoing, then ended; any other repeat is a duplicate). A cramp
//     detection spans from the onset to the ended report's End (or the
//     ongoing report's End, the confirmation time, if it never ended).
//   - Matching is one-to-one and greedy: all overlapping (truth, detection)
//     pairs of a kind, largest overlap first (ties: earlier truth, then
//     earlier detection), are taken while both are free.
//   - An alert is a cramp detection with an ongoing report. A false alert is
//     an alert whose detection matched no cramp truth. Latency is the
//     ongoing report's ConfirmedAt minus the matched truth's onset; duration
//     error is |ended DurationS - truth duration| for matched cramps that
//     ended.
//   - Quantiles are empirical (gonum stat.Empirical): the smallest value
//     with at least the given fraction of the data at or below it.
func Match(truth []firmwaresim.Truth, events []detect.Event, opts MatchOptions) Report {
	if opts.Slack == 0 {
		opts.Slack = 2 * time.Second
	}
	if opts.MaxDetails == 0 {
		opts.MaxDetails = 50
	}
	r := Report{
		Nights:                opts.Nights,
		FalseAlertsBy:         map[string]int{},
		ArtifactRecallByCause: map[string]Float{},
		TruthCounts:           map[string]int{},
		EventCounts:           map[string]int{},
		SamplesPerSecond:      Float(math.NaN()),
		RealtimeFactor:        Float(math.NaN()),
	}
	if r.Nights == 0 {
		devs := map[string]bool{}
		for _, t := range truth {
			devs[t.Device] = true
		}
		r.Nights = len(devs)
	}
	for _, t := range truth {
		r.TruthCounts[t.Kind]++
	}
	dets := merge(events)
	for _, d := range dets {
		r.EventCounts[d.kind]++
	}
	truthMatch := make([]int, len(truth)) // index into dets, or -1
	for i := range truthMatch {
		truthMatch[i] = -1
	}
	idx := newIndex(truth, dets)
	for _, kind := range []string{string(detect.KindCramp), string(detect.KindPLM), string(detect.KindMovement), string(detect.KindArtifact)} {
		matchKind(kind, truth, dets, idx, truthMatch)
	}

	r.cramps(truth, dets, idx, truthMatch, opts)
	r.PLMTruth, r.PLMEvents, r.PLMMatched = counts(string(detect.KindPLM), truth, dets, truthMatch)
	r.PLMPrecision = ratio(r.PLMMatched, r.PLMEvents)
	r.PLMRecall = ratio(r.PLMMatched, r.PLMTruth)
	r.PLMF1 = Float(2 * float64(r.PLMPrecision) * float64(r.PLMRecall) / float64(r.PLMPrecision+r.PLMRecall))
	if r.PLMMatched == 0 && r.PLMTruth+r.PLMEvents > 0 {
		r.PLMF1 = 0
	}
	var mMatched, aMatched int
	r.MovementTruth, r.MovementEvents, mMatched = counts(string(detect.KindMovement), truth, dets, truthMatch)
	r.MovementRecall = ratio(mMatched, r.MovementTruth)
	r.MovementPrecision = ratio(mMatched, r.MovementEvents)
	r.ArtifactTruth, r.ArtifactEvents, aMatched = counts(string(detect.KindArtifact), truth, dets, truthMatch)
	r.ArtifactRecall = ratio(aMatched, r.ArtifactTruth)
	byCause := map[string][2]int{}
	for i, t := range truth {
		if t.Kind == string(detect.KindArtifact) {
			c := byCause[t.Cause]
			c[1]++
			if truthMatch[i] >= 0 {
				c[0]++
			}
			byCause[t.Cause] = c
		}
	}
	for cause, c := range byCause {
		r.ArtifactRecallByCause[cause] = ratio(c[0], c[1])
	}
	return r
}

// merge turns events into distinct detections, ordered by onset.
func merge(events []detect.Event) []*detection {
	byID := map[string]*detection{}
	var out []*detection
	for i := range events {
		e := &events[i]
		id := e.ID()
		d, ok := byID[id]
		if !ok {
			d = &detection{
				device: e.Device, kind: string(e.Kind),
				side: e.Channel.Side.String(), muscle: e.Channel.Muscle.String(),
				onset: e.Onset, end: e.End, matched: -1,
			}
			byID[id] = d
			out = append(out, d)
		}
		if e.End.After(d.end) && d.ended == nil {
			d.end = e.End
		}
		if e.Kind != detect.KindCramp {
			continue
		}
		switch e.State {
		case detect.StateOngoing:
			if d.ongoing == nil {
				d.ongoing = e
			}
		case detect.StateEnded:
			d.ended = e
			d.end = e.End
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].onset.Before(out[j].onset) })
	return out
}

func sideOK(truthSide, side string) bool {
	return truthSide == side || truthSide == firmwaresim.SideBoth
}

// overlap returns the length of the intersection of two closed intervals,
// and whether they intersect at all.
func overlap(a0, a1, b0, b1 time.Time) (time.Duration, bool) {
	lo, hi := a0, a1
	if b0.After(lo) {
		lo = b0
	}
	if b1.Before(hi) {
		hi = b1
	}
	if hi.Before(lo) {
		return 0, false
	}
	return hi.Sub(lo), true
}

// matchKind matches one kind's truths and detections, one to one, greedily
// by overlap, device by device.
func matchKind(kind string, truth []firmwaresim.Truth, dets []*detection, idx *index, truthMatch []int) {
	type pair struct {
		t, d int
		ov   time.Duration
	}
	var pairs []pair
	for _, dev := range idx.devices {
		pairs = pairs[:0]
		for _, ti := range idx.truth[dev] {
			t := &truth[ti]
			if t.Kind != kind {
				continue
			}
			for _, di := range idx.dets[dev] {
				d := dets[di]
				if d.kind != kind || !sideOK(t.Side, d.side) {
					continue
				}
				if ov, ok := overlap(t.Onset, t.End, d.onset, d.end); ok {
					pairs = append(pairs, pair{ti, di, ov})
				}
			}
		}
		sort.SliceStable(pairs, func(i, j int) bool {
			a, b := pairs[i], pairs[j]
			if a.ov != b.ov {
				return a.ov > b.ov
			}
			if a.t != b.t {
				return a.t < b.t
			}
			return a.d < b.d
		})
		for _, p := range pairs {
			if truthMatch[p.t] < 0 && dets[p.d].matched < 0 {
				truthMatch[p.t] = p.d
				dets[p.d].matched = p.t
			}
		}
	}
}

// index groups truths and detections by device, so matching is linear in
// the number of nights.
type index struct {
	devices []string // sorted
	truth   map[string][]int
	dets    map[string][]int
}

func newIndex(truth []firmwaresim.Truth, dets []*detection) *index {
	idx := &index{truth: map[string][]int{}, dets: map[string][]int{}}
	seen := map[string]bool{}
	add := func(dev string) {
		if !seen[dev] {
			seen[dev] = true
			idx.devices = append(idx.devices, dev)
		}
	}
	for i, t := range truth {
		add(t.Device)
		idx.truth[t.Device] = append(idx.truth[t.Device], i)
	}
	for i, d := range dets {
		add(d.device)
		idx.dets[d.device] = append(idx.dets[d.device], i)
	}
	sort.Strings(idx.devices)
	return idx
}

func counts(kind string, truth []firmwaresim.Truth, dets []*detection, truthMatch []int) (nTruth, nDet, matched int) {
	for i, t := range truth {
		if t.Kind == kind {
			nTruth++
			if truthMatch[i] >= 0 {
				matched++
			}
		}
	}
	for _, d := range dets {
		if d.kind == kind {
			nDet++
		}
	}
	return nTruth, nDet, matched
}

func ratio(a, b int) Float {
	if b == 0 {
		return Float(math.NaN())
	}
	return Float(float64(a) / float64(b))
}

// quantile returns the empirical p-quantile of xs (sorted in place), NaN if empty.
func quantile(p float64, xs []float64) Float {
	if len(xs) == 0 {
		return Float(math.NaN())
	}
	sort.Float64s(xs)
	return Float(stat.Quantile(p, stat.Empirical, xs, nil))
}

func (r *Report) cramps(truth []firmwaresim.Truth, dets []*detection, idx *index, truthMatch []int, opts MatchOptions) {
	const cramp = string(detect.KindCramp)
	var latencies, durErrs []float64
	for ti, t := range truth {
		if t.Kind != cramp {
			continue
		}
		r.Cramps++
		di := truthMatch[ti]
		if di < 0 {
			if opts.MaxDetails > 0 && len(r.MissedCramps) < opts.MaxDetails {
				r.MissedCramps = append(r.MissedCramps, Detail{
					Device: t.Device, Side: t.Side, Muscle: t.Muscle,
					Onset: t.Onset, DurationS: t.Duration().Seconds(),
				})
			}
			continue
		}
		r.CrampsDetected++
		d := dets[di]
		if d.muscle != t.Muscle {
			r.CrampMuscleMismatch++
		}
		if d.ongoing != nil {
			latencies = append(latencies, d.ongoing.ConfirmedAt.Sub(t.Onset).Seconds())
		}
		if d.ended != nil {
			durErrs = append(durErrs, math.Abs(d.ended.DurationS-t.Duration().Seconds()))
		}
	}
	for _, d := range dets {
		if d.kind != cramp {
			continue
		}
		r.CrampDetections++
		if d.ongoing == nil {
			continue
		}
		r.Alerts++
		if d.matched >= 0 {
			continue
		}
		r.FalseAlerts++
		cause, onMovement := attribute(d, truth, idx.truth[d.device], opts.Slack)
		r.FalseAlertsBy[cause]++
		if onMovement {
			r.MovementFalseCramps++
		}
		if opts.MaxDetails > 0 && len(r.FalseAlertList) < opts.MaxDetails {
			r.FalseAlertList = append(r.FalseAlertList, Detail{
				Device: d.device, Side: d.side, Muscle: d.muscle, Onset: d.onset,
				DurationS: d.end.Sub(d.onset).Seconds(), ConfirmedAt: d.ongoing.ConfirmedAt,
				Overlapped: cause,
			})
		}
	}
	r.CrampSensitivity = ratio(r.CrampsDetected, r.Cramps)
	r.CrampPrecision = ratio(r.CrampsDetected, r.CrampDetections)
	r.FalseAlertsPerNight = ratio(r.FalseAlerts, r.Nights)
	r.AlertLatencyMedianS = quantile(0.5, latencies)
	r.AlertLatencyP95S = quantile(0.95, latencies)
	r.AlertLatencyMaxS = quantile(1, latencies)
	r.DurationErrorMedianS = quantile(0.5, durErrs)
	r.DurationErrorP95S = quantile(0.95, durErrs)
}

// attribute names what a false alert overlapped most on its leg (within
// slack), and whether it overlapped a movement there.
func attribute(d *detection, truth []firmwaresim.Truth, devTruth []int, slack time.Duration) (cause string, onMovement bool) {
	a0, a1 := d.onset.Add(-slack), d.end.Add(slack)
	best := time.Duration(-1)
	otherLegCramp := false
	for _, ti := range devTruth {
		t := &truth[ti]
		ov, ok := overlap(a0, a1, t.Onset, t.End)
		if !ok {
			continue
		}
		if !sideOK(t.Side, d.side) {
			if t.Kind == string(detect.KindCramp) {
				otherLegCramp = true
			}
			continue
		}
		if t.Kind == string(detect.KindMovement) {
			onMovement = true
		}
		if ov > best {
			best = ov
			cause = t.Kind
			if t.Kind == string(detect.KindArtifact) {
				cause += ":" + t.Cause
			}
		}
	}
	switch {
	case cause != "":
	case otherLegCramp:
		cause = "cramp_other_leg"
	default:
		cause = "nothing"
	}
	return cause, onMovement
}

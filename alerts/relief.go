package alerts

import (
	"slices"
	"sort"
	"time"

	"github.com/crampwatch/crampwatch/wire"
)

// CrampOutcome is what happened to one cramp: whether and when the wearer
// was alerted, whether they answered, how long until relief and what the
// diary says helped. Times are sample times; seconds are 0 when unknown
// (check the flags).
type CrampOutcome struct {
	Device  string       `json:"device"`
	EventID string       `json:"event_id"`
	AlertID string       `json:"alert_id,omitempty"`
	Channel wire.Channel `json:"-"`
	Muscle  string       `json:"muscle"`
	Side    string       `json:"side"`
	Night   string       `json:"night"` // YYYY-MM-DD of the evening the night began
	Onset   time.Time    `json:"onset"`
	End     time.Time    `json:"end,omitzero"`
	// Ended is false while the cramp is still going on.
	Ended     bool    `json:"ended"`
	DurationS float64 `json:"duration_s"`
	// Alerted says a buzzing message covered this cramp, first at AlertAt.
	Alerted bool      `json:"alerted"`
	AlertAt time.Time `json:"alert_at,omitzero"`
	// Suppressed is why the cramp's own gentle alert was not sent (e.g.
	// concurrent, cooldown, hourly_cap), empty if it was.
	Suppressed   string `json:"suppressed,omitempty"`
	Escalated    bool   `json:"escalated"`
	TENSPrompted bool   `json:"tens_prompted"`
	// Acked says the wearer answered the alert; AckAction is the last answer
	// and AckAfterS the time from the first message to the first answer.
	Acked     bool    `json:"acked"`
	AckAction string  `json:"ack_action,omitempty"`
	AckAfterS float64 `json:"ack_after_s,omitempty"`
	// ReliefAfterAlertS is End-AlertAt: how long the cramp went on after the
	// wearer was told. Valid when Alerted and Ended.
	ReliefAfterAlertS float64 `json:"relief_after_alert_s,omitempty"`
	// Diary is the linked diary entry's content; HasDiary says there is one.
	HasDiary bool     `json:"has_diary"`
	Pain     *int     `json:"pain,omitempty"`
	Helped   []Remedy `json:"helped,omitempty"`
}

// outcomes builds the device's cramp outcomes, oldest onset first.
func (p *policy) outcomes(device string) []CrampOutcome {
	d := p.devs[device]
	if d == nil {
		return nil
	}
	out := make([]CrampOutcome, 0, len(d.crampOrder))
	for _, c := range d.crampOrder {
		ev := c.ev
		o := CrampOutcome{
			Device: device, EventID: c.id, Channel: ev.Channel,
			Muscle: ev.Channel.Muscle.String(), Side: ev.Channel.Side.String(),
			Night: p.night(ev.Onset), Onset: ev.Onset, Ended: c.ended,
			Suppressed: c.suppressed,
		}
		if c.ended {
			o.End, o.DurationS = ev.End, ev.DurationS
		}
		if !c.alertAt.IsZero() {
			o.Alerted, o.AlertAt = true, c.alertAt
			if c.ended && ev.End.After(c.alertAt) {
				o.ReliefAfterAlertS = ev.End.Sub(c.alertAt).Seconds()
			}
		}
		if ep := c.ep; ep != nil {
			o.AlertID = ep.id
			o.Escalated = ep.escalated
			o.TENSPrompted = ep.tensSent
			if ep.ackAction != "" {
				o.Acked, o.AckAction = true, ep.ackAction
				o.AckAfterS = ep.ackAt.Sub(ep.firstMsg).Seconds()
			}
		}
		if c.diary != nil {
			o.HasDiary = true
			o.Pain = c.diary.Pain
			o.Helped = slices.Clone(c.diary.Helped)
		}
		out = append(out, o)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Onset.Before(out[j].Onset) })
	return out
}

// ReliefSummary aggregates cramp outcomes of one wearer over nights.
type ReliefSummary struct {
	Cramps  int `json:"cramps"`
	Ended   int `json:"ended"`
	Alerted int `json:"alerted"`
	Acked   int `json:"acked"`
	// MedianDurationS is over ended cramps; MedianReliefS over ended,
	// alerted ones. 0 when there are none.
	MedianDurationS float64        `json:"median_duration_s"`
	MedianReliefS   float64        `json:"median_relief_after_alert_s"`
	Nights          []NightRelief  `json:"nights"`
	Remedies        []RemedyEffect `json:"remedies"`
}

// NightRelief is one night of a ReliefSummary.
type NightRelief struct {
	Night           string  `json:"night"`
	Cramps          int     `json:"cramps"`
	Alerted         int     `json:"alerted"`
	Acked           int     `json:"acked"`
	MedianDurationS float64 `json:"median_duration_s"`
	MedianReliefS   float64 `json:"median_relief_after_alert_s"`
}

// RemedyEffect compares the cramps for which the diary says a remedy helped
// with the other cramps that have a diary entry. A negative DifferenceS
// means the remedy goes with shorter cramps. It is an association in the
// wearer's own records, not proof that the remedy works.
type RemedyEffect struct {
	Remedy Remedy `json:"remedy"`
	// WithCount counts ended cramps whose diary lists the remedy;
	// WithoutCount those whose diary does not.
	WithCount              int     `json:"with"`
	WithoutCount           int     `json:"without"`
	MedianDurationWithS    float64 `json:"median_duration_with_s"`
	MedianDurationWithoutS float64 `json:"median_duration_without_s"`
	// DifferenceS is MedianDurationWithS-MedianDurationWithoutS, valid when Comparable.
	DifferenceS float64 `json:"difference_s"`
	Comparable  bool    `json:"comparable"` // both groups non-empty
	// MedianReliefWithS is the median time from alert to relief when the remedy helped.
	MedianReliefWithS float64 `json:"median_relief_with_s"`
}

// Summarize aggregates outcomes (of one wearer) per night and per remedy.
// Remedies are listed by DifferenceS, the ones going with the shortest
// cramps first; remedies never mentioned are left out.
func Summarize(outcomes []CrampOutcome) ReliefSummary {
	var s ReliefSummary
	var dur, relief []float64
	nights := map[string]*nightAcc{}
	var order []string
	for _, o := range outcomes {
		s.Cramps++
		n := nights[o.Night]
		if n == nil {
			n = &nightAcc{NightRelief: NightRelief{Night: o.Night}}
			nights[o.Night] = n
			order = append(order, o.Night)
		}
		n.Cramps++
		if o.Alerted {
			s.Alerted++
			n.Alerted++
		}
		if o.Acked {
			s.Acked++
			n.Acked++
		}
		if !o.Ended {
			continue
		}
		s.Ended++
		dur = append(dur, o.DurationS)
		n.dur = append(n.dur, o.DurationS)
		if o.Alerted {
			relief = append(relief, o.ReliefAfterAlertS)
			n.relief = append(n.relief, o.ReliefAfterAlertS)
		}
	}
	s.MedianDurationS, s.MedianReliefS = median(dur), median(relief)
	sort.Strings(order)
	for _, k := range order {
		n := nights[k]
		n.MedianDurationS, n.MedianReliefS = median(n.dur), median(n.relief)
		s.Nights = append(s.Nights, n.NightRelief)
	}
	s.Remedies = remedyEffects(outcomes)
	return s
}

type nightAcc struct {
	NightRelief
	dur, relief []float64
}

func remedyEffects(outcomes []CrampOutcome) []RemedyEffect {
	var out []RemedyEffect
	for _, r := range remedies {
		var with, without, reliefWith []float64
		mentioned := false
		for _, o := range outcomes {
			if !o.HasDiary || !o.Ended {
				continue
			}
			if slices.Contains(o.Helped, r) {
				mentioned = true
				with = append(with, o.DurationS)
				if o.Alerted {
					reliefWith = append(reliefWith, o.ReliefAfterAlertS)
				}
			} else {
				without = append(without, o.DurationS)
			}
		}
		if !mentioned {
			continue
		}
		e := RemedyEffect{
			Remedy: r, WithCount: len(with), WithoutCount: len(without),
			MedianDurationWithS: median(with), MedianDurationWithoutS: median(without),
			MedianReliefWithS: median(reliefWith),
			Comparable:        len(with) > 0 && len(without) > 0,
		}
		if e.Comparable {
			e.DifferenceS = e.MedianDurationWithS - e.MedianDurationWithoutS
		}
		out = append(out, e)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Comparable != out[j].Comparable {
			return out[i].Comparable
		}
		return out[i].DifferenceS < out[j].DifferenceS
	})
	return out
}

// median of xs (not modified); 0 for none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	m := len(s) / 2
	if len(s)%2 == 1 {
		return s[m]
	}
	return (s[m-1] + s[m]) / 2
}

package store

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/influxdata/influxdb-client-go/v2/api/write"

	"github.com/crampwatch/crampwatch/alerts"
	"github.com/crampwatch/crampwatch/wire"
)

var (
	alertOnset = time.UnixMicro(1763946000000000).UTC()
	hamRight   = wire.Channel{Muscle: wire.Hamstring, Side: wire.Right}
)

// line encodes a point the way the Influx sink will send it.
func line(t *testing.T, p *write.Point) string {
	t.Helper()
	b, err := appendPoint(nil, p, time.Unix(0, 0))
	if err != nil {
		t.Fatalf("appendPoint: %v", err)
	}
	return strings.TrimSuffix(string(b), "\n")
}

func TestAlertPoints(t *testing.T) {
	pain := 7
	tens := alerts.TENSConfig{Preset: "calf night", MinMA: 8, MaxMA: 20, MaxDuration: 15 * time.Minute}
	for _, tc := range []struct {
		name string
		p    *write.Point
		want string
	}{
		{"gentle alert", AlertPoint(alerts.AlertRecord{
			Device: "dev-1", Type: alerts.TypeAlert, Outcome: alerts.OutcomeSent, AlertID: "al-e1", EventID: "e1",
			Channel: hamRight, Onset: alertOnset, Time: alertOnset.Add(2500 * time.Millisecond), LatencyS: 2.5,
		}), `alerts,device=dev-1,muscle=hamstring,outcome=sent,side=right,type=alert alert_id="al-e1",event_id="e1",latency_s=2.5,onset_us=1763946000000000i 1763946002500000`},
		{"suppressed", AlertPoint(alerts.AlertRecord{
			Device: "dev-1", Type: alerts.TypeEscalation, Outcome: alerts.OutcomeSuppressed, Reason: alerts.SuppressQuietHours,
			AlertID: "al-e1", EventID: "e1", Channel: hamRight, Onset: alertOnset, Time: alertOnset.Add(time.Minute), LatencyS: 60,
		}), `alerts,device=dev-1,muscle=hamstring,outcome=suppressed,side=right,type=escalation alert_id="al-e1",event_id="e1",latency_s=60,onset_us=1763946000000000i,reason="quiet_hours" 1763946060000000`},
		{"tens prompt", AlertPoint(alerts.AlertRecord{
			Device: "dev-1", Type: alerts.TypeTENSPrompt, Outcome: alerts.OutcomeSent, AlertID: "al-e1", EventID: "e1",
			Channel: hamRight, Onset: alertOnset, Time: alertOnset.Add(2 * time.Minute), LatencyS: 120, TENS: tens,
		}), `alerts,device=dev-1,muscle=hamstring,outcome=sent,side=right,type=tens_prompt alert_id="al-e1",event_id="e1",latency_s=120,max_duration_s=900,max_ma=20,min_ma=8,onset_us=1763946000000000i,preset="calf night",start_ma=8 1763946120000000`},
		{"ended", AlertPoint(alerts.AlertRecord{
			Device: "dev-1", Type: alerts.TypeEnded, Outcome: alerts.OutcomeSent, AlertID: "al-e1", EventID: "e1",
			Channel: hamRight, Onset: alertOnset, Time: alertOnset.Add(90 * time.Second), LatencyS: 90, DurationS: 90, Acked: true,
		}), `alerts,device=dev-1,muscle=hamstring,outcome=sent,side=right,type=ended acked=t,alert_id="al-e1",duration_s=90,event_id="e1",latency_s=90,onset_us=1763946000000000i 1763946090000000`},
		{"ack", AckPoint(alerts.AckRecord{
			Device: "dev-1", AlertID: "al-e1", EventID: "e1", Action: alerts.ActionSnooze, Channel: hamRight,
			Onset: alertOnset, Time: alertOnset.Add(20 * time.Second), LatencyS: 20, SinceAlertS: 17.5,
		}), `acks,action=snooze,device=dev-1,muscle=hamstring,side=right alert_id="al-e1",event_id="e1",latency_s=20,onset_us=1763946000000000i,since_alert_s=17.5 1763946020000000`},
		{"linked diary", DiaryPoint(alerts.DiaryRecord{
			Device: "dev-1", Time: alertOnset.Add(6 * time.Hour), Night: "2025-11-23",
			Entry:  alerts.DiaryEntry{Pain: &pain, Helped: []alerts.Remedy{alerts.RemedyStretch, alerts.RemedyHeat}, Note: `woke "twice"`},
			Linked: true, AlertID: "al-e1", EventID: "e1", Channel: hamRight, Onset: alertOnset, OffsetS: 21600,
		}), `diary,device=dev-1,muscle=hamstring,side=right alert_id="al-e1",event_id="e1",helped="stretch,heat",helped_heat=t,helped_magnesium=f,helped_massage=f,helped_medication=f,helped_stretch=t,helped_tens=f,helped_walk=f,helped_water=f,linked=t,night="2025-11-23",note="woke \"twice\"",offset_s=21600,onset_us=1763946000000000i,pain=7i 1763967600000000`},
		{"unlinked diary", DiaryPoint(alerts.DiaryRecord{
			Device: "dev-1", Time: alertOnset, Night: "2025-11-23", Entry: alerts.DiaryEntry{Note: "slept well"},
		}), `diary,device=dev-1 helped_heat=f,helped_magnesium=f,helped_massage=f,helped_medication=f,helped_stretch=f,helped_tens=f,helped_walk=f,helped_water=f,linked=f,night="2025-11-23",note="slept well" 1763946000000000`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := line(t, tc.p); got != tc.want {
				t.Errorf("got\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

type pointSink struct{ points []*write.Point }

func (s *pointSink) WritePoint(p *write.Point) { s.points = append(s.points, p) }

func TestAlertRecorder(t *testing.T) {
	var sink pointSink
	r := NewAlertRecorder(&sink)
	ctx := context.Background()
	if err := r.RecordAlert(ctx, alerts.AlertRecord{Device: "d", Type: alerts.TypeAlert, Outcome: alerts.OutcomeSent, Time: alertOnset}); err != nil {
		t.Fatal(err)
	}
	if err := r.RecordAck(ctx, alerts.AckRecord{Device: "d", Action: alerts.ActionOK, Time: alertOnset}); err != nil {
		t.Fatal(err)
	}
	if err := r.RecordDiary(ctx, alerts.DiaryRecord{Device: "d", Time: alertOnset, Night: "2025-11-23"}); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range sink.points {
		names = append(names, p.Name())
		line(t, p) // every point must encode
	}
	if strings.Join(names, " ") != "alerts acks diary" {
		t.Errorf("measurements %v", names)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := r.RecordAlert(cancelled, alerts.AlertRecord{}); err == nil || len(sink.points) != 3 {
		t.Error("wrote after the context ended")
	}
}

package store

import (
	"context"
	"strings"

	"github.com/influxdata/influxdb-client-go/v2/api/write"

	"github.com/crampwatch/crampwatch/alerts"
	"github.com/crampwatch/crampwatch/wire"
)

// Measurements of the wearer's loop, documented in docs/alerts.md.
const (
	MeasurementAlerts = "alerts" // every alert decision: sent or suppressed
	MeasurementAcks   = "acks"   // every accepted acknowledgement
	MeasurementDiary  = "diary"  // every accepted diary entry
)

// PointWriter queues a point for InfluxDB; *Influx implements it.
type PointWriter interface {
	WritePoint(*write.Point)
}

// AlertRecorder is the alerts.Recorder that keeps alert decisions,
// acknowledgements and diary entries in InfluxDB. Writes are queued with
// event priority by the Influx sink, so they survive an InfluxDB outage as
// long as the sink's event queue does.
type AlertRecorder struct {
	w PointWriter
}

// NewAlertRecorder returns a recorder writing through w.
func NewAlertRecorder(w PointWriter) *AlertRecorder { return &AlertRecorder{w: w} }

var _ alerts.Recorder = (*AlertRecorder)(nil)

// RecordAlert writes one point of measurement "alerts".
func (r *AlertRecorder) RecordAlert(ctx context.Context, a alerts.AlertRecord) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r.w.WritePoint(AlertPoint(a))
	return nil
}

// RecordAck writes one point of measurement "acks".
func (r *AlertRecorder) RecordAck(ctx context.Context, a alerts.AckRecord) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r.w.WritePoint(AckPoint(a))
	return nil
}

// RecordDiary writes one point of measurement "diary".
func (r *AlertRecorder) RecordDiary(ctx context.Context, d alerts.DiaryRecord) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r.w.WritePoint(DiaryPoint(d))
	return nil
}

// channelTags adds the muscle and side tags when the channel is known; an
// empty tag value is invalid line protocol, so unknown ones are left out.
func channelTags(tags map[string]string, c wire.Channel) {
	if c.Muscle != 0 {
		tags["muscle"] = c.Muscle.String()
	}
	if c.Side != 0 {
		tags["side"] = c.Side.String()
	}
}

// AlertPoint is the "alerts" point of a record: timestamp = the decision's
// sample time; tags device, type, outcome, muscle, side. The type and
// outcome tags keep two decisions at the same instant (an escalation and a
// TENS prompt, say) from overwriting each other.
func AlertPoint(a alerts.AlertRecord) *write.Point {
	tags := map[string]string{"device": a.Device, "type": a.Type, "outcome": a.Outcome}
	channelTags(tags, a.Channel)
	fields := map[string]any{
		"alert_id":  a.AlertID,
		"event_id":  a.EventID,
		"latency_s": a.LatencyS,
		"onset_us":  a.Onset.UnixMicro(),
	}
	if a.Reason != "" {
		fields["reason"] = a.Reason
	}
	if a.Type == alerts.TypeEnded {
		fields["duration_s"] = a.DurationS
		fields["acked"] = a.Acked
	}
	if a.Type == alerts.TypeTENSPrompt && a.Outcome == alerts.OutcomeSent {
		fields["preset"] = a.TENS.Preset
		fields["min_ma"] = a.TENS.MinMA
		fields["max_ma"] = a.TENS.MaxMA
		start := a.TENS.StartMA
		if start == 0 {
			start = a.TENS.MinMA
		}
		fields["start_ma"] = start
		fields["max_duration_s"] = a.TENS.MaxDuration.Seconds()
	}
	return write.NewPoint(MeasurementAlerts, tags, fields, a.Time)
}

// AckPoint is the "acks" point of a record: timestamp = when the ack was
// applied (device sample clock); tags device, action, muscle, side.
func AckPoint(a alerts.AckRecord) *write.Point {
	tags := map[string]string{"device": a.Device, "action": a.Action}
	channelTags(tags, a.Channel)
	return write.NewPoint(MeasurementAcks, tags, map[string]any{
		"alert_id":      a.AlertID,
		"event_id":      a.EventID,
		"latency_s":     a.LatencyS,
		"since_alert_s": a.SinceAlertS,
		"onset_us":      a.Onset.UnixMicro(),
	}, a.Time)
}

// DiaryPoint is the "diary" point of a record: timestamp = the entry's
// time; tags device, muscle, side (of the linked cramp, left out when
// unlinked). Every remedy has a boolean field helped_<remedy>, so Flux can
// average them without knowing which ones a wearer ever used.
func DiaryPoint(d alerts.DiaryRecord) *write.Point {
	tags := map[string]string{"device": d.Device}
	channelTags(tags, d.Channel)
	fields := map[string]any{
		"night":  d.Night,
		"linked": d.Linked,
	}
	if d.Entry.Pain != nil {
		fields["pain"] = int64(*d.Entry.Pain)
	}
	names := make([]string, 0, len(d.Entry.Helped))
	for _, r := range d.Entry.Helped {
		names = append(names, string(r))
	}
	if len(names) > 0 {
		fields["helped"] = strings.Join(names, ",")
	}
	for _, r := range alerts.AllRemedies() {
		helped := false
		for _, h := range d.Entry.Helped {
			helped = helped || h == r
		}
		fields["helped_"+string(r)] = helped
	}
	if d.Entry.Note != "" {
		fields["note"] = d.Entry.Note
	}
	if d.Linked {
		fields["alert_id"] = d.AlertID
		fields["event_id"] = d.EventID
		fields["onset_us"] = d.Onset.UnixMicro()
		fields["offset_s"] = d.OffsetS
	}
	return write.NewPoint(MeasurementDiary, tags, fields, d.Time)
}

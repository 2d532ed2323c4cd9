package dashboards

import (
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

type promQueryBuilder = prometheus.DataqueryBuilder

// sel restricts a PromQL selector to the chosen service instances.
const sel = `instance=~"$instance"`

// Service is the operator's view of the crampwatch daemon, from its
// Prometheus metrics: throughput, rejections, lag, events, sinks, alerts.
func Service() *dashboard.DashboardBuilder {
	q := `label_values(crampwatch_ingest_frames_total, instance)`
	return dashboard.NewDashboardBuilder("crampwatch · Service").
		Uid("crampwatch-service").
		Description("The crampwatch service from its Prometheus metrics: frames in and rejected by reason, lost frames, lag, queues, detected events, sink writes and errors, alerts and their latency.").
		Tags([]string{"crampwatch", "operator"}).
		Time("now-6h", "now").
		Refresh("30s").
		Timezone("browser").
		Tooltip(dashboard.DashboardCursorSyncCrosshair).
		Link(dashboardLinks()).
		WithVariable(dashboard.NewQueryVariableBuilder("instance").
			Label("Instance").
			Description("crampwatch service instances scraped by Prometheus.").
			Datasource(promDS()).
			Query(dashboard.StringOrMap{String: &q}).
			Definition(q).
			Refresh(dashboard.VariableRefreshOnTimeRangeChanged).
			Sort(dashboard.VariableSortNaturalAsc).
			Multi(true).IncludeAll(true).AllValue(".*")).
		WithRow(row("Ingest")).
		WithPanel(promStat("Devices", "Devices the ingest router currently keeps state for (heard from recently).",
			`sum(crampwatch_ingest_devices{`+sel+`})`, unitCount)).
		WithPanel(promStat("Frames in", "Frames per second delivered in order to the detectors, all streams.",
			`sum(rate(crampwatch_ingest_frames_total{`+sel+`}[$__rate_interval]))`, unitPerSecond)).
		WithPanel(promStat("Rejected", "Malformed or unacceptable messages per second, all reasons. Should be 0.",
			`sum(rate(crampwatch_ingest_rejected_total{`+sel+`}[$__rate_interval])) or vector(0)`, unitPerSecond)).
		WithPanel(promStat("Lag p95", "95th percentile of the delay from a frame's last sample to its decoding.",
			`histogram_quantile(0.95, sum by (le) (rate(crampwatch_ingest_lag_seconds_bucket{`+sel+`}[$__rate_interval])))`, unitSeconds)).
		WithPanel(promStat("Sink errors", "Failed write attempts per second over all sinks. Should be 0; see the panel below for which sink.",
			`sum(rate(crampwatch_sink_errors_total{`+sel+`}[$__rate_interval])) or vector(0)`, unitPerSecond)).
		WithPanel(promStat("Alert latency p95", "95th percentile of the time from cramp onset to the wearer's first alert.",
			`histogram_quantile(0.95, sum by (le) (rate(crampwatch_alert_latency_seconds_bucket{type="alert", `+sel+`}[$__rate_interval])))`, unitSeconds)).
		WithPanel(promSeries("Frames in by stream", "Frames per second delivered to the detectors, by stream (emg, imu, status).",
			unitPerSecond, promQL("A", `sum by (stream) (rate(crampwatch_ingest_frames_total{`+sel+`}[$__rate_interval]))`, "{{stream}}"))).
		WithPanel(promSeries("Rejected by reason", "Messages rejected per second, by reason (bad_json, oversize, unknown_channel, ...). Each reason names what a device sent wrong.",
			unitPerSecond, promQL("A", `sum by (reason) (rate(crampwatch_ingest_rejected_total{`+sel+`}[$__rate_interval]))`, "{{reason}}"))).
		WithPanel(promSeries("Lost, duplicate and dropped frames", "Frames missing by sequence number, duplicates dropped (QoS 1 redelivery), late frames, and messages dropped because a shard queue was full.",
			unitPerSecond,
			promQL("A", `sum(rate(crampwatch_ingest_lost_frames_total{`+sel+`}[$__rate_interval]))`, "lost"),
			promQL("B", `sum(rate(crampwatch_ingest_duplicate_frames_total{`+sel+`}[$__rate_interval]))`, "duplicate"),
			promQL("C", `sum(rate(crampwatch_ingest_late_frames_total{`+sel+`}[$__rate_interval]))`, "late"),
			promQL("D", `sum(rate(crampwatch_ingest_queue_dropped_total{`+sel+`}[$__rate_interval]))`, "queue full"))).
		WithPanel(promSeries("Ingest lag", "Delay from a frame's last sample (device clock) to its decoding: median, 95th and 99th percentile.",
			unitSeconds,
			promQL("A", `histogram_quantile(0.5, sum by (le) (rate(crampwatch_ingest_lag_seconds_bucket{`+sel+`}[$__rate_interval])))`, "p50"),
			promQL("B", `histogram_quantile(0.95, sum by (le) (rate(crampwatch_ingest_lag_seconds_bucket{`+sel+`}[$__rate_interval])))`, "p95"),
			promQL("C", `histogram_quantile(0.99, sum by (le) (rate(crampwatch_ingest_lag_seconds_bucket{`+sel+`}[$__rate_interval])))`, "p99"))).
		WithPanel(promSeries("Queue depth", "Messages waiting in the ingest shard queues and points waiting in each sink's queue. A queue that only grows is a backlog.",
			unitCount,
			promQL("A", `sum(crampwatch_ingest_queue_depth{`+sel+`})`, "ingest"),
			promQL("B", `sum by (sink) (crampwatch_sink_queue_depth{`+sel+`})`, "sink {{sink}}"))).
		WithRow(row("Detection and sinks")).
		WithPanel(promSeries("Events", "Detected events in the past hour (rolling) by kind and state: a cramp counts once when confirmed (ongoing) and once when it ends.",
			unitCount, promQL("A", `sum by (kind, state) (increase(crampwatch_events_total{`+sel+`}[1h]))`, "{{kind}} {{state}}")).
			Overrides(kindPromOverrides())).
		WithPanel(promSeries("Sink writes", "Points written per second by sink (influxdb, journal, mqtt) and measurement.",
			unitPerSecond, promQL("A", `sum by (sink, measurement) (rate(crampwatch_sink_points_written_total{`+sel+`}[$__rate_interval]))`, "{{sink}} {{measurement}}"))).
		WithPanel(promSeries("Sink errors and drops", "Failed write attempts and points given up, per second, by sink and measurement. Errors are retried; drops are data lost.",
			unitPerSecond,
			promQL("A", `sum by (sink, measurement) (rate(crampwatch_sink_errors_total{`+sel+`}[$__rate_interval]))`, "error {{sink}} {{measurement}}"),
			promQL("B", `sum by (sink, measurement) (rate(crampwatch_sink_dropped_total{`+sel+`}[$__rate_interval]))`, "dropped {{sink}} {{measurement}}"))).
		WithPanel(promSeries("InfluxDB spool", "Bytes held in the on-disk spool while InfluxDB is down or catching up, and the spool's limit. /readyz says degraded while it holds data and failed once it is full; it should be empty most of the time.",
			unitBytes,
			promQL("A", `sum by (sink) (crampwatch_sink_spool_bytes{`+sel+`})`, "spooled {{sink}}"),
			promQL("B", `max by (sink) (crampwatch_sink_spool_limit_bytes{`+sel+`})`, "limit {{sink}}"))).
		WithRow(row("Alerts")).
		WithPanel(promSeries("Alert messages", "Messages to wearers per hour by type (alert, escalation, tens_prompt, ended), and messages held back by reason (cooldown, hourly cap, quiet hours, ...).",
			unitCount,
			promQL("A", `sum by (type) (increase(crampwatch_alert_messages_total{`+sel+`}[1h]))`, "sent {{type}}"),
			promQL("B", `sum by (type, reason) (increase(crampwatch_alert_suppressed_total{`+sel+`}[1h]))`, "suppressed {{type}} ({{reason}})"))).
		WithPanel(promSeries("Alert latency", "Time from cramp onset to the gentle alert (sample time): median and 95th percentile. The target is a median under 5 s.",
			unitSeconds,
			promQL("A", `histogram_quantile(0.5, sum by (le) (rate(crampwatch_alert_latency_seconds_bucket{type="alert", `+sel+`}[$__rate_interval])))`, "p50"),
			promQL("B", `histogram_quantile(0.95, sum by (le) (rate(crampwatch_alert_latency_seconds_bucket{type="alert", `+sel+`}[$__rate_interval])))`, "p95"))).
		WithPanel(promSeries("Acknowledgements and diary", "Wearer answers per hour: acknowledgements by action, diary entries, and rejected ones by reason.",
			unitCount,
			promQL("A", `sum by (action) (increase(crampwatch_alert_acks_total{`+sel+`}[1h]))`, "ack {{action}}"),
			promQL("B", `sum(increase(crampwatch_diary_entries_total{`+sel+`}[1h]))`, "diary"),
			promQL("C", `sum by (reason) (increase(crampwatch_alert_acks_rejected_total{`+sel+`}[1h]))`, "ack rejected {{reason}}"),
			promQL("D", `sum by (reason) (increase(crampwatch_diary_rejected_total{`+sel+`}[1h]))`, "diary rejected {{reason}}"))).
		WithPanel(promSeries("Alert deliveries", "Outbound deliveries per second by channel (mqtt, webhook, record, discovery) and result (ok, error, dropped). mqtt dropped is a wearer message lost: it should never be above 0.",
			unitPerSecond, promQL("A", `sum by (channel, result) (rate(crampwatch_alert_deliveries_total{`+sel+`}[$__rate_interval]))`, "{{channel}} {{result}}"))).
		WithPanel(promSeries("Discovery backlog and saved alert state", "Home Assistant discovery configs waiting (they yield to wearer messages), and per-device alert state files saved, loaded and rejected at restarts (--state-dir). Rejected means a wearer's alert state started afresh.",
			unitCount,
			promQL("A", `sum(crampwatch_alert_discovery_pending{`+sel+`})`, "discovery pending"),
			promQL("B", `sum by (result) (increase(crampwatch_alert_state_devices_total{`+sel+`}[1h]))`, "alert state {{result}}")))
}

func promStat(title, desc, expr, unit string) *stat.PanelBuilder {
	return stat.NewPanelBuilder().
		Title(title).
		Description(desc).
		Datasource(promDS()).
		WithTarget(promQL("A", expr, title)).
		Unit(unit).Decimals(2).
		ColorScheme(dashboard.NewFieldColorBuilder().Mode(dashboard.FieldColorModeIdFixed).FixedColor("text")).
		ColorMode(common.BigValueColorModeValue).
		GraphMode(common.BigValueGraphModeArea).
		ReduceOptions(reduce("lastNotNull")).
		Height(4).Span(4)
}

func promSeries(title, desc, unit string, targets ...*promQueryBuilder) *timeseries.PanelBuilder {
	p := timeseries.NewPanelBuilder().
		Title(title).
		Description(desc).
		Datasource(promDS()).
		Unit(unit).Min(0).
		ColorScheme(classicPalette()).
		LineWidth(1).FillOpacity(10).
		Legend(legendList()).Tooltip(tooltipMulti()).
		Height(8).Span(12)
	for _, t := range targets {
		p = p.WithTarget(t)
	}
	return p
}

// kindPromOverrides colours event series "<kind> <state>" by kind.
func kindPromOverrides() []cogOverride {
	return []cogOverride{
		byRegexp("^cramp .*", colorProp(colorCramp)),
		byRegexp("^plm .*", colorProp(colorPLM)),
		byRegexp("^movement .*", colorProp(colorMovement)),
		byRegexp("^artifact .*", colorProp(colorArtifact)),
	}
}

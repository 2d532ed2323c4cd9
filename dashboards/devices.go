package dashboards

import (
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/statetimeline"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// Devices is the health of the wearers' sensors: battery, lost frames,
// electrode contact, signal quality and when each was last heard from.
func Devices() *dashboard.DashboardBuilder {
	return dashboard.NewDashboardBuilder("crampwatch · Devices").
		Uid("crampwatch-devices").
		Description("Sensor health per device: last seen, battery, lost and rejected frames, electrode lead-off, resting EMG level as a signal-quality measure, artifacts and lag.").
		Tags([]string{"crampwatch", "operator"}).
		Time("now-24h", "now").
		Refresh("1m").
		Timezone("browser").
		Tooltip(dashboard.DashboardCursorSyncCrosshair).
		Link(dashboardLinks()).
		WithVariable(deviceVariable(true)).
		WithRow(row("Status")).
		WithPanel(newTable().
			Title("Last seen").
			Description("Newest health report per device: when it was made (device clock), battery (-1: never reported), firmware, channels in lead-off, frames accepted and lost since the service started, and lag from sample time to processing.").
			Datasource(influxDS()).
			WithTarget(InfluxQL(`SELECT last("battery_pct") AS "battery_pct", "firmware", "lead_off_channels", "frames_in", "frames_lost", "lag_s" FROM "device_health" WHERE ` +
				deviceFilter + ` AND $timeFilter GROUP BY "device"`).Table()).
			Unit(unitNone).
			Overrides([]cogOverride{
				byName("Time", displayNameProp("Last seen"), unitProp(unitFromNow)),
				byName("device", displayNameProp("Device")),
				byName("battery_pct", displayNameProp("Battery"), unitProp(unitPercent), decimalsProp(0),
					dashboard.DynamicConfigValue{Id: "thresholds", Value: map[string]any{"mode": "absolute", "steps": []map[string]any{
						{"value": nil, "color": "red"}, {"value": 15, "color": "orange"}, {"value": 30, "color": "green"},
					}}},
					dashboard.DynamicConfigValue{Id: "custom.cellOptions", Value: map[string]any{"type": "color-text"}}),
				byName("lead_off_channels", displayNameProp("Lead-off")),
				byName("frames_in", displayNameProp("Frames in"), unitProp(unitCount)),
				byName("frames_lost", displayNameProp("Frames lost"), unitProp(unitCount)),
				byName("lag_s", displayNameProp("Lag"), unitProp(unitSeconds), decimalsProp(1)),
			}).
			Height(7).Span(24)).
		WithPanel(timeseries.NewPanelBuilder().
			Title("Battery").
			Description("Battery charge reported in each device's status messages. Below 15 % a device may not last the night.").
			Datasource(influxDS()).
			WithTarget(InfluxQL(`SELECT last("battery_pct") AS "battery" FROM "device_health" WHERE ` + deviceFilter +
				` AND "battery_pct" >= 0 AND $timeFilter GROUP BY time($__interval), "device" fill(null)`).
				Alias("$tag_device")).
			Unit(unitPercent).Decimals(0).Min(0).Max(100).
			Thresholds(thresholds("red", step{15, "orange"}, step{30, "transparent"})).
			ThresholdsStyle(common.NewGraphThresholdsStyleConfigBuilder().Mode(common.GraphThresholdsStyleModeDashedAndArea)).
			ColorScheme(classicPalette()).
			LineWidth(2).FillOpacity(0).
			Legend(legendTable("lastNotNull", "min")).Tooltip(tooltipMulti()).
			Height(8).Span(12)).
		WithPanel(statetimeline.NewPanelBuilder().
			Title("Electrode contact").
			Description("Per device: green while every EMG electrode has contact, red while one or more channels report lead-off (the detector then ignores those channels). The table above names the channels.").
			Datasource(influxDS()).
			WithTarget(InfluxQL(`SELECT max("lead_off") AS "lead_off" FROM "device_health" WHERE ` + deviceFilter +
				` AND $timeFilter GROUP BY time($__interval), "device" fill(previous)`).
				Alias("$tag_device")).
			Unit(unitCount).
			Mappings([]dashboard.ValueMapping{
				valueText("0", "contact", "green"),
				rangeText(1, 64, "lead-off", "red"),
			}).
			ShowValue(common.VisibilityModeNever).
			MergeValues(true).
			Legend(common.NewVizLegendOptionsBuilder().ShowLegend(false)).
			Height(8).Span(12)).
		WithRow(row("Data path")).
		WithPanel(timeseries.NewPanelBuilder().
			Title("Lost, duplicated and rejected frames").
			Description("Frames per interval that never arrived (gaps in sequence numbers), arrived twice (QoS 1 redelivery, dropped) or were rejected as malformed, per device. A few lost frames are normal on Wi-Fi/BLE links; steady loss means a weak link.").
			Datasource(influxDS()).
			WithTarget(InfluxQL(`SELECT non_negative_difference(last("frames_lost")) AS "lost", non_negative_difference(last("frames_dup")) AS "duplicate", non_negative_difference(last("rejected")) AS "rejected" FROM "device_health" WHERE ` +
				deviceFilter + ` AND $timeFilter GROUP BY time($__interval), "device" fill(none)`).
				Alias("$tag_device $col")).
			Unit(unitCount).Decimals(0).Min(0).
			DrawStyle(common.GraphDrawStyleBars).FillOpacity(60).LineWidth(1).
			ColorScheme(classicPalette()).
			Overrides([]cogOverride{
				byRegexp(".* lost$", colorProp("red")),
				byRegexp(".* duplicate$", colorProp("blue")),
				byRegexp(".* rejected$", colorProp("orange")),
			}).
			Legend(legendList()).Tooltip(tooltipMulti()).
			Height(8).Span(12)).
		WithPanel(timeseries.NewPanelBuilder().
			Title("Frame loss").
			Description("Share of frames lost per interval and device: lost / (accepted + lost). Above 1 % the detector starts to see gaps as artifacts.").
			Datasource(influxDS()).
			WithTarget(InfluxQL(`SELECT 100 * non_negative_difference(last("frames_lost")) / (non_negative_difference(last("frames_in")) + non_negative_difference(last("frames_lost"))) AS "loss" FROM "device_health" WHERE ` +
				deviceFilter + ` AND $timeFilter GROUP BY time($__interval), "device" fill(none)`).
				Alias("$tag_device")).
			Unit(unitPercent).Decimals(2).Min(0).
			Thresholds(thresholds("green", step{1, "orange"}, step{5, "red"})).
			ThresholdsStyle(common.NewGraphThresholdsStyleConfigBuilder().Mode(common.GraphThresholdsStyleModeDashed)).
			ColorScheme(classicPalette()).
			LineWidth(1).FillOpacity(10).
			Legend(legendTable("mean", "max")).Tooltip(tooltipMulti()).
			Height(8).Span(12)).
		WithPanel(timeseries.NewPanelBuilder().
			Title("Lag").
			Description("Worst delay per interval between a frame's last sample (device clock) and its processing by the service. Growing lag means a backlog (broker, network or service) or a device clock that drifts.").
			Datasource(influxDS()).
			WithTarget(InfluxQL(`SELECT max("lag_s") AS "lag" FROM "device_health" WHERE ` + deviceFilter +
				` AND $timeFilter GROUP BY time($__interval), "device" fill(null)`).
				Alias("$tag_device")).
			Unit(unitSeconds).Decimals(1).
			Thresholds(thresholds("green", step{2, "orange"}, step{10, "red"})).
			ThresholdsStyle(common.NewGraphThresholdsStyleConfigBuilder().Mode(common.GraphThresholdsStyleModeDashed)).
			ColorScheme(classicPalette()).
			LineWidth(1).FillOpacity(0).
			Legend(legendTable("mean", "max")).Tooltip(tooltipMulti()).
			Height(8).Span(12)).
		WithRow(row("Signal quality")).
		WithPanel(timeseries.NewPanelBuilder().
			Title("Resting EMG level").
			Description("The detector's resting baseline per device and channel, in µV: the noise floor the muscle sits on when relaxed. Healthy skin contact gives a few µV; a baseline that creeps up over the night means drying gel, a loose electrode or mains interference.").
			Datasource(influxDS()).
			WithTarget(InfluxQL(`SELECT mean("baseline_uv") AS "baseline" FROM "envelope" WHERE ` + deviceFilter +
				` AND $timeFilter GROUP BY time($__interval), "device", "channel" fill(null)`).
				Alias("$tag_device $tag_channel")).
			Unit(unitMicrovolt).Decimals(1).Min(0).
			Thresholds(thresholds("green", step{15, "orange"}, step{40, "red"})).
			ThresholdsStyle(common.NewGraphThresholdsStyleConfigBuilder().Mode(common.GraphThresholdsStyleModeDashed)).
			ColorScheme(classicPalette()).
			LineWidth(1).FillOpacity(0).
			Legend(legendTable("mean", "max")).Tooltip(tooltipMulti()).
			Height(8).Span(12)).
		WithPanel(timeseries.NewPanelBuilder().
			Title("Artifacts").
			Description("Artifact episodes (lead-off, flat line, saturation, mains hum, gaps) starting per interval, per device. The table next to it says which cause.").
			Datasource(influxDS()).
			WithTarget(InfluxQL(`SELECT count("duration_s") AS "artifacts" FROM "events" WHERE ` + deviceFilter +
				` AND "kind" = 'artifact' AND $timeFilter GROUP BY time($__interval), "device" fill(0)`).
				Alias("$tag_device")).
			Interval("1m").
			Unit(unitCount).Decimals(0).Min(0).
			DrawStyle(common.GraphDrawStyleBars).FillOpacity(60).LineWidth(1).
			ColorScheme(classicPalette()).
			Legend(legendList()).Tooltip(tooltipMulti()).
			Height(8).Span(6)).
		WithPanel(newTable().
			Title("Recent artifacts").
			Description("The newest artifact episodes with their cause (lead_off, flat_line, saturation, mains_hum, gap), channel and length.").
			Datasource(influxDS()).
			WithTarget(InfluxQL(`SELECT "device", "cause", "muscle", "side", "duration_s" FROM "events" WHERE ` + deviceFilter +
				` AND "kind" = 'artifact' AND $timeFilter ORDER BY time DESC LIMIT 200`).Table()).
			Unit(unitNone).
			Overrides([]cogOverride{
				byName("Time", unitProp(unitDateTime)),
				byName("duration_s", displayNameProp("Duration"), unitProp(unitSeconds), decimalsProp(1)),
			}).
			Height(8).Span(6))
}

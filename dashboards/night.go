package dashboards

import (
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/statetimeline"
	"github.com/grafana/grafana-foundation-sdk/go/table"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// Night is one wearer's night: muscle activity with the detected cramps laid
// over it, leg motion, the timeline and table of events, and what the
// wearer was told and answered.
func Night() *dashboard.DashboardBuilder {
	return dashboard.NewDashboardBuilder("crampwatch · Night").
		Uid("crampwatch-night").
		Description("One wearer's night: EMG envelope per muscle and leg with cramps (red regions) and PLMs (orange marks), leg motion, the event timeline and table, alerts, acknowledgements and diary entries.").
		Tags([]string{"crampwatch", "wearer"}).
		Time("now-12h", "now").
		Refresh("1m").
		Timezone("browser").
		Tooltip(dashboard.DashboardCursorSyncCrosshair).
		Link(dashboardLinks()).
		WithVariable(deviceVariable(false)).
		Annotation(builtInAnnotations()).
		Annotation(crampAnnotation()).
		Annotation(plmAnnotation()).
		WithRow(row("Summary")).
		WithPanel(countStat("Cramps", "Cramps detected in the selected time range (each cramp counted once, whether still ongoing or ended).",
			"cramp", colorCramp)).
		WithPanel(stat.NewPanelBuilder().
			Title("Longest cramp").
			Description("Duration of the longest cramp in the selected range, from onset to the end of the contraction.").
			Datasource(influxDS()).
			WithTarget(InfluxQL(`SELECT max("duration_s") AS "longest" FROM "events" WHERE ` + deviceFilter + ` AND "kind" = 'cramp' AND $timeFilter`)).
			Unit(unitSeconds).Decimals(0).
			ColorScheme(fixedColor(colorCramp)).ColorMode(common.BigValueColorModeValue).
			GraphMode(common.BigValueGraphModeNone).ReduceOptions(reduce("lastNotNull")).
			NoValue("none").
			Height(4).Span(4)).
		WithPanel(stat.NewPanelBuilder().
			Title("Total cramp time").
			Description("Sum of the durations of all cramps in the selected range.").
			Datasource(influxDS()).
			WithTarget(InfluxQL(`SELECT sum("duration_s") AS "total" FROM "events" WHERE ` + deviceFilter + ` AND "kind" = 'cramp' AND $timeFilter`)).
			Unit(unitSeconds).Decimals(0).
			ColorScheme(fixedColor(colorCramp)).ColorMode(common.BigValueColorModeValue).
			GraphMode(common.BigValueGraphModeNone).ReduceOptions(reduce("lastNotNull")).
			NoValue("0").
			Height(4).Span(4)).
		WithPanel(stat.NewPanelBuilder().
			Title("Median alert latency").
			Description("Median time from a cramp's onset to its confirmation, which is when the wearer's alert is sent. The detector aims at under 5 s.").
			Datasource(influxDS()).
			WithTarget(InfluxQL(`SELECT median("latency_s") AS "latency" FROM "events" WHERE ` + deviceFilter + ` AND "kind" = 'cramp' AND $timeFilter`)).
			Unit(unitSeconds).Decimals(1).
			Thresholds(thresholds("green", step{5, "orange"}, step{10, "red"})).
			ColorScheme(dashboard.NewFieldColorBuilder().Mode(dashboard.FieldColorModeIdThresholds)).
			ColorMode(common.BigValueColorModeValue).
			GraphMode(common.BigValueGraphModeNone).ReduceOptions(reduce("lastNotNull")).
			NoValue("no cramps").
			Height(4).Span(4)).
		WithPanel(countStat("PLMs", "Periodic limb movements (WASM 2016 scoring: 0.5-10 s movements, 4 or more in a row, 10-90 s apart).",
			"plm", colorPLM)).
		WithPanel(countStat("Artifacts", "Stretches of unusable signal: electrode lead-off, flat line, saturation, mains hum or sensor gaps. Many artifacts mean the electrodes need attention.",
			"artifact", colorArtifact)).
		WithRow(row("Muscles and legs")).
		WithPanel(envelopePanel("left")).
		WithPanel(envelopePanel("right")).
		WithPanel(timeseries.NewPanelBuilder().
			Title("Leg motion (IMU activity)").
			Description("Peak movement energy of each IMU site per interval (high-passed acceleration, RMS, in g). Turning over shows as a tall spike on both legs; a cramp usually keeps the leg still.").
			Datasource(influxDS()).
			WithTarget(InfluxQL(`SELECT max("activity_g") AS "activity" FROM "motion" WHERE ` + deviceFilter + ` AND $timeFilter GROUP BY time($__interval), "site" fill(null)`).
				Alias("$tag_site")).
			Unit(unitG).Decimals(2).Min(0).
			ColorScheme(classicPalette()).
			LineWidth(1).FillOpacity(10).
			Legend(legendList()).Tooltip(tooltipMulti()).
			Height(7).Span(12)).
		WithPanel(timeseries.NewPanelBuilder().
			Title("Shank tilt").
			Description("Change of each shank's orientation from its resting orientation, in degrees. A cramp can pull the foot down a few degrees; getting up changes it a lot.").
			Datasource(influxDS()).
			WithTarget(InfluxQL(`SELECT mean("tilt_deg") AS "tilt" FROM "motion" WHERE ` + deviceFilter + ` AND $timeFilter GROUP BY time($__interval), "site" fill(null)`).
				Alias("$tag_site")).
			Unit(unitDegree).Decimals(0).Min(0).
			ColorScheme(classicPalette()).
			LineWidth(1).FillOpacity(0).
			Legend(legendList()).Tooltip(tooltipMulti()).
			Height(7).Span(12)).
		WithRow(row("Events")).
		WithPanel(statetimeline.NewPanelBuilder().
			Title("Event timeline").
			Description("When each kind of event began: a coloured block marks every interval (at least 10 s) in which a cramp, PLM, movement or artifact started. Exact onsets, ends and durations are in the table below and in the red cramp regions above.").
			Datasource(influxDS()).
			Interval("10s").
			WithTarget(InfluxQL(`SELECT count("duration_s") AS "events" FROM "events" WHERE ` + deviceFilter + ` AND $timeFilter GROUP BY time($__interval), "kind" fill(0)`).
				Alias("$tag_kind")).
			Unit(unitCount).
			Mappings([]dashboard.ValueMapping{
				valueText("0", " ", "transparent"),
				rangeText(1, 1e9, "event", ""),
			}).
			Overrides(kindOverrides()).
			ShowValue(common.VisibilityModeNever).
			MergeValues(true).
			RowHeight(0.8).
			Legend(common.NewVizLegendOptionsBuilder().ShowLegend(false)).
			Height(6).Span(24)).
		WithPanel(eventTable()).
		WithRow(row("Wearer's loop")).
		WithPanel(alertsTable()).
		WithPanel(acksTable()).
		WithPanel(diaryTable())
}

// countStat is a big number of events of one kind in the selected range.
func countStat(title, desc, kind, color string) *stat.PanelBuilder {
	return stat.NewPanelBuilder().
		Title(title).
		Description(desc).
		Datasource(influxDS()).
		WithTarget(InfluxQL(`SELECT count("duration_s") AS "count" FROM "events" WHERE ` + deviceFilter + ` AND "kind" = '` + kind + `' AND $timeFilter`)).
		Unit(unitCount).Decimals(0).
		ColorScheme(fixedColor(color)).ColorMode(common.BigValueColorModeValue).
		GraphMode(common.BigValueGraphModeNone).ReduceOptions(reduce("lastNotNull")).
		NoValue("0").
		Height(4).Span(4)
}

// envelopePanel shows the RMS envelope of every muscle on one leg with its
// resting baseline, on a log scale so rest (a few µV) and cramps (hundreds)
// are both readable.
func envelopePanel(side string) *timeseries.PanelBuilder {
	return timeseries.NewPanelBuilder().
		Title("EMG envelope, " + side + " leg").
		Description("Band-passed EMG RMS per muscle on the " + side + " leg (peak per interval, solid) and the detector's resting baseline (dashed), in µV on a log scale. " +
			"Red regions are cramps from onset to end, orange marks are PLMs. A cramp shows as a sustained rise of tens to hundreds of times the baseline.").
		Datasource(influxDS()).
		WithTarget(InfluxQL(`SELECT max("rms_uv") AS "RMS", mean("baseline_uv") AS "baseline" FROM "envelope" WHERE ` + deviceFilter +
			` AND "side" = '` + side + `' AND $timeFilter GROUP BY time($__interval), "muscle" fill(null)`).
			Alias("$tag_muscle $col")).
		Unit(unitMicrovolt).Decimals(1).
		ScaleDistribution(common.NewScaleDistributionConfigBuilder().Type(common.ScaleDistributionLog).Log(10)).
		AxisSoftMin(1).
		ColorScheme(classicPalette()).
		LineWidth(1).FillOpacity(0).
		Overrides(append(
			[]cogOverride{byRegexp(".*baseline$", append(dashedProp(), colorProp("#8e8e8e"))...)},
			byRegexp("^calf RMS$", colorProp("dark-red")),
			byRegexp("^hamstring RMS$", colorProp("dark-blue")),
			byRegexp("^quadriceps RMS$", colorProp("dark-green")),
			byRegexp("^tibialis RMS$", colorProp("dark-purple")),
		)).
		Legend(legendTable("max", "mean")).Tooltip(tooltipMulti()).
		Height(9).Span(12)
}

func eventTable() *table.PanelBuilder {
	return newTable().
		Title("Events").
		Description("Every detected event, newest first. An ongoing cramp is one that was confirmed (the alert went out) but has not ended yet; its duration grows until it ends. " +
			"Latency is onset to confirmation; confidence is the detector's 0-100 % margin of evidence; cause says what an artifact was.").
		Datasource(influxDS()).
		WithTarget(InfluxQL(`SELECT "kind", "state", "muscle", "side", "duration_s", "peak_uv", "mean_uv", "median_freq_hz", "confidence", "latency_s", "cause" FROM "events" WHERE ` +
			deviceFilter + ` AND $timeFilter ORDER BY time DESC LIMIT 1000`).Table()).
		Unit(unitNone).
		Overrides([]cogOverride{
			byName("Time", displayNameProp("Onset"), unitProp(unitDateTime)),
			byName("duration_s", displayNameProp("Duration"), unitProp(unitSeconds), decimalsProp(1)),
			byName("peak_uv", displayNameProp("Peak"), unitProp(unitMicrovolt), decimalsProp(0)),
			byName("mean_uv", displayNameProp("Mean"), unitProp(unitMicrovolt), decimalsProp(0)),
			byName("median_freq_hz", displayNameProp("Median frequency"), unitProp(unitHertz), decimalsProp(0)),
			byName("confidence", displayNameProp("Confidence"), unitProp(unitRatio), decimalsProp(0)),
			byName("latency_s", displayNameProp("Alert latency"), unitProp(unitSeconds), decimalsProp(1)),
			byName("kind", displayNameProp("Kind"), dashboard.DynamicConfigValue{Id: "mappings", Value: []dashboard.ValueMapping{
				valueText("cramp", "cramp", colorCramp), valueText("plm", "PLM", colorPLM),
				valueText("movement", "movement", colorMovement), valueText("artifact", "artifact", colorArtifact),
			}}, dashboard.DynamicConfigValue{Id: "custom.cellOptions", Value: map[string]any{"type": "color-text"}}),
		}).
		Height(10).Span(24)
}

package dashboards

import (
	"github.com/grafana/grafana-foundation-sdk/go/barchart"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/piechart"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// nightGroup cuts time into nights from noon to noon in the chosen time
// zone, so a night that crosses midnight is counted once.
const nightGroup = `time(1d, 12h)`

// nightTZ applies the chosen time zone to the night buckets.
const nightTZ = ` tz('$tz')`

// Trends follows one or more wearers over weeks: how often and how long they
// cramp, when in the night, how restless their legs are, and what helped.
func Trends() *dashboard.DashboardBuilder {
	return dashboard.NewDashboardBuilder("crampwatch · Trends").
		Uid("crampwatch-trends").
		Description("Cramps and PLMs night by night over weeks, for clinicians and wearers: frequency, duration, time of night, PLM index and what helped.").
		Tags([]string{"crampwatch", "clinician"}).
		Time("now-90d", "now").
		Timezone("browser").
		Tooltip(dashboard.DashboardCursorSyncCrosshair).
		Link(dashboardLinks()).
		WithVariable(deviceVariable(true)).
		WithVariable(tzVariable()).
		WithRow(row("Cramps")).
		WithPanel(timeseries.NewPanelBuilder().
			Title("Cramps per night").
			Description("Number of cramps in each night (noon to noon in the chosen time zone), per device. Nights without a recording show as 0.").
			Datasource(influxDS()).
			WithTarget(InfluxQL(`SELECT count("duration_s") AS "cramps" FROM "events" WHERE ` + deviceFilter +
				` AND "kind" = 'cramp' AND $timeFilter GROUP BY ` + nightGroup + `, "device" fill(0)` + nightTZ).
				Alias("$tag_device")).
			Unit(unitCount).Decimals(0).Min(0).
			DrawStyle(common.GraphDrawStyleBars).FillOpacity(80).LineWidth(1).
			ColorScheme(classicPalette()).
			Legend(legendList()).Tooltip(tooltipMulti()).
			Height(8).Span(12)).
		WithPanel(timeseries.NewPanelBuilder().
			Title("Total and longest cramp per night").
			Description("Per night and device: the summed duration of all cramps (bars) and the longest single cramp (points).").
			Datasource(influxDS()).
			WithTarget(InfluxQL(`SELECT sum("duration_s") AS "total", max("duration_s") AS "longest" FROM "events" WHERE ` + deviceFilter +
				` AND "kind" = 'cramp' AND $timeFilter GROUP BY ` + nightGroup + `, "device" fill(none)` + nightTZ).
				Alias("$tag_device $col")).
			Unit(unitSeconds).Decimals(0).Min(0).
			DrawStyle(common.GraphDrawStyleBars).FillOpacity(60).LineWidth(1).
			ColorScheme(classicPalette()).
			Overrides([]cogOverride{byRegexp(".*longest$",
				dashboard.DynamicConfigValue{Id: "custom.drawStyle", Value: "points"},
				dashboard.DynamicConfigValue{Id: "custom.pointSize", Value: 8},
			)}).
			Legend(legendList()).Tooltip(tooltipMulti()).
			Height(8).Span(12)).
		WithPanel(barchart.NewPanelBuilder().
			Title("Time of night").
			Description("Cramp onsets by hour of the day (in the dashboard's time zone) over the whole range: when in the night cramps strike. Hours without a cramp are left out.").
			Datasource(influxDS()).
			WithTarget(InfluxQL(`SELECT "duration_s" FROM "events" WHERE ` + deviceFilter +
				` AND "kind" = 'cramp' AND $timeFilter`).Table()).
			Transformations([]dashboard.DataTransformerConfig{
				{Id: "formatTime", Options: map[string]any{"timeField": "Time", "outputFormat": "HH", "useTimezone": true}},
				{Id: "groupBy", Options: map[string]any{"fields": map[string]any{
					"Time":       map[string]any{"aggregations": []string{}, "operation": "groupby"},
					"duration_s": map[string]any{"aggregations": []string{"count"}, "operation": "aggregate"},
				}}},
				{Id: "sortBy", Options: map[string]any{"sort": []map[string]any{{"field": "Time"}}}},
				{Id: "organize", Options: map[string]any{"renameByName": map[string]string{"Time": "hour", "duration_s (count)": "cramps"}}},
			}).
			XField("hour").
			Unit(unitCount).Decimals(0).Min(0).
			ColorScheme(fixedColor(colorCramp)).
			ShowValue(common.VisibilityModeAuto).
			Legend(common.NewVizLegendOptionsBuilder().ShowLegend(false)).
			Height(8).Span(12)).
		WithPanel(piechart.NewPanelBuilder().
			Title("Cramps by muscle").
			Description("Share of cramps per muscle and leg over the whole range.").
			Datasource(influxDS()).
			WithTarget(InfluxQL(`SELECT count("duration_s") AS "cramps" FROM "events" WHERE ` + deviceFilter +
				` AND "kind" = 'cramp' AND $timeFilter GROUP BY "muscle", "side"`).
				Alias("$tag_muscle $tag_side")).
			Unit(unitCount).Decimals(0).
			PieType(piechart.PieChartTypeDonut).
			DisplayLabels([]piechart.PieChartLabels{piechart.PieChartLabelsName, piechart.PieChartLabelsPercent}).
			ReduceOptions(reduce("sum")).
			ColorScheme(classicPalette()).
			Height(8).Span(6)).
		WithPanel(timeseries.NewPanelBuilder().
			Title("Alert latency per night").
			Description("Median time per night from cramp onset to confirmation, i.e. how long the wearer waited for the alert. Target: under 5 s.").
			Datasource(influxDS()).
			WithTarget(InfluxQL(`SELECT median("latency_s") AS "latency" FROM "events" WHERE ` + deviceFilter +
				` AND "kind" = 'cramp' AND $timeFilter GROUP BY ` + nightGroup + `, "device" fill(none)` + nightTZ).
				Alias("$tag_device")).
			Unit(unitSeconds).Decimals(1).Min(0).
			DrawStyle(common.GraphDrawStylePoints).PointSize(8).
			Thresholds(thresholds("green", step{5, "orange"}, step{10, "red"})).
			ThresholdsStyle(common.NewGraphThresholdsStyleConfigBuilder().Mode(common.GraphThresholdsStyleModeDashed)).
			ColorScheme(classicPalette()).
			Legend(legendList()).Tooltip(tooltipMulti()).
			Height(8).Span(6)).
		WithRow(row("Restless legs")).
		WithPanel(timeseries.NewPanelBuilder().
			Title("PLM index").
			Description("Periodic limb movements per hour of recording, per night, over all selected devices. Hours of recording are summed from the device's health reports (gaps over 2 minutes excluded). " +
				"Above 15 per hour is usually considered clinically significant in adults.").
			Datasource(influxDS()).
			WithTarget(InfluxQL(`SELECT count("duration_s") AS "plms" FROM "events" WHERE ` + deviceFilter +
				` AND "kind" = 'plm' AND $timeFilter GROUP BY ` + nightGroup + ` fill(0)` + nightTZ).
				Alias("plms")).
			WithTarget(InfluxQL(`SELECT sum("gap") / 3600 AS "hours" FROM (SELECT elapsed("frames_in", 1s) AS "gap" FROM "device_health" WHERE ` + deviceFilter +
				` AND $timeFilter GROUP BY "device") WHERE "gap" <= 120 AND $timeFilter GROUP BY ` + nightGroup + ` fill(none)` + nightTZ).
				Alias("hours").RefID("B")).
			Transformations([]dashboard.DataTransformerConfig{
				{Id: "joinByField", Options: map[string]any{"byField": "Time", "mode": "outer"}},
				{Id: "calculateField", Options: map[string]any{
					"mode":          "binary",
					"binary":        map[string]any{"left": "plms", "operator": "/", "right": "hours"},
					"alias":         "PLM index",
					"replaceFields": true,
				}},
			}).
			Unit("suffix: /h").Decimals(1).Min(0).
			DrawStyle(common.GraphDrawStyleBars).FillOpacity(70).LineWidth(1).
			Thresholds(thresholds("green", step{5, "orange"}, step{15, "red"})).
			ColorScheme(dashboard.NewFieldColorBuilder().Mode(dashboard.FieldColorModeIdThresholds)).
			ThresholdsStyle(common.NewGraphThresholdsStyleConfigBuilder().Mode(common.GraphThresholdsStyleModeDashed)).
			Legend(legendList()).Tooltip(tooltipMulti()).
			Height(8).Span(12)).
		WithPanel(timeseries.NewPanelBuilder().
			Title("PLMs and movements per night").
			Description("Periodic limb movements and voluntary movements (turning over, getting up) per night and device.").
			Datasource(influxDS()).
			WithTarget(InfluxQL(`SELECT count("duration_s") AS "n" FROM "events" WHERE ` + deviceFilter +
				` AND ("kind" = 'plm' OR "kind" = 'movement') AND $timeFilter GROUP BY ` + nightGroup + `, "kind", "device" fill(0)` + nightTZ).
				Alias("$tag_device $tag_kind")).
			Unit(unitCount).Decimals(0).Min(0).
			DrawStyle(common.GraphDrawStyleBars).FillOpacity(60).LineWidth(1).
			ColorScheme(classicPalette()).
			Overrides([]cogOverride{
				byRegexp(".* plm$", colorProp(colorPLM)),
				byRegexp(".* movement$", colorProp(colorMovement)),
			}).
			Legend(legendList()).Tooltip(tooltipMulti()).
			Height(8).Span(12)).
		WithRow(row("What helped")).
		WithPanel(remediesPanel()).
		WithPanel(painPanel())
}

// remediesPanel compares what helped with how long the cramp lasted. The
// diary entry names the cramp (event_id) but not its duration, and InfluxQL
// cannot join measurements, so the panel fetches both tables and Grafana
// joins them on event_id, then averages the duration per answer ("stretch",
// "stretch,heat", ...).
func remediesPanel() *barchart.PanelBuilder {
	return barchart.NewPanelBuilder().
		Title("Cramp duration by what helped").
		Description("Mean duration of the cramps, grouped by what the wearer's diary entry said helped (a combination such as stretch,heat is its own bar), over the selected range and devices. " +
			"Shorter bars went with shorter cramps; the tooltip shows how many cramps each bar averages, and a bar of one or two cramps says little.").
		Datasource(influxDS()).
		WithTarget(InfluxQL(`SELECT "helped", "event_id" FROM "diary" WHERE ` + deviceFilter +
			` AND "linked" = true AND $timeFilter`).Table()).
		WithTarget(InfluxQL(`SELECT "duration_s", "event_id" FROM "events" WHERE ` + deviceFilter +
			` AND "kind" = 'cramp' AND $timeFilter`).Table().RefID("B")).
		Transformations([]dashboard.DataTransformerConfig{
			{Id: "joinByField", Options: map[string]any{"byField": "event_id", "mode": "inner"}},
			{Id: "groupBy", Options: map[string]any{"fields": map[string]any{
				"helped":     map[string]any{"aggregations": []string{}, "operation": "groupby"},
				"duration_s": map[string]any{"aggregations": []string{"mean", "count"}, "operation": "aggregate"},
			}}},
			{Id: "sortBy", Options: map[string]any{"sort": []map[string]any{{"field": "duration_s (mean)"}}}},
		}).
		XField("helped").
		Unit(unitSeconds).Decimals(0).Min(0).
		Orientation(common.VizOrientationHorizontal).
		ShowValue(common.VisibilityModeAlways).
		ColorScheme(fixedColor(colorDiary)).
		Overrides([]cogOverride{byName("duration_s (count)", unitProp(unitCount),
			dashboard.DynamicConfigValue{Id: "custom.hideFrom", Value: map[string]any{"viz": true, "legend": true, "tooltip": false}})}).
		Legend(common.NewVizLegendOptionsBuilder().ShowLegend(false)).
		Height(9).Span(12)
}

// painPanel follows the pain the wearer reported, night by night.
func painPanel() *timeseries.PanelBuilder {
	return timeseries.NewPanelBuilder().
		Title("Reported pain per night").
		Description("Mean and worst pain (0 none to 10 worst) of the diary entries per night and device.").
		Datasource(influxDS()).
		WithTarget(InfluxQL(`SELECT mean("pain") AS "mean", max("pain") AS "worst" FROM "diary" WHERE ` + deviceFilter +
			` AND $timeFilter GROUP BY ` + nightGroup + `, "device" fill(none)` + nightTZ).
			Alias("$tag_device $col")).
		Unit(unitNone).Decimals(1).Min(0).Max(10).
		DrawStyle(common.GraphDrawStylePoints).PointSize(8).
		Thresholds(thresholds("green", step{4, "orange"}, step{7, "red"})).
		ColorScheme(classicPalette()).
		Legend(legendList()).Tooltip(tooltipMulti()).
		Height(9).Span(12)
}

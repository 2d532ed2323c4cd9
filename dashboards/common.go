package dashboards

import (
	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/table"
)

// Data source uids. The provisioning files in deploy/grafana fix them, so the
// dashboards can refer to them without a data source variable.
const (
	InfluxUID     = "crampwatch-influxdb"
	PrometheusUID = "crampwatch-prometheus"
)

// PrometheusType is the Grafana plugin id of the Prometheus data source.
const PrometheusType = "prometheus"

// Units used by the panels. Grafana has no microvolt unit, so µV is a suffix.
const (
	unitMicrovolt = "suffix: µV"
	unitSeconds   = "s"
	unitCount     = "short"
	unitPercent   = "percent"
	unitG         = "accG"
	unitDegree    = "degree"
	unitHertz     = "hertz"
	unitRatio     = "percentunit"
	unitPerSecond = "cps"
	unitNone      = "none"
	unitFromNow   = "dateTimeFromNow"
	unitDateTime  = "dateTimeAsIso"
	unitBytes     = "bytes"
)

// Colours of the event kinds, the same on every panel so a cramp is always
// red and a PLM always orange.
const (
	colorCramp    = "red"
	colorPLM      = "orange"
	colorMovement = "blue"
	colorArtifact = "#8e8e8e"
	colorAlert    = "purple"
	colorAck      = "green"
	colorDiary    = "yellow"
)

// deviceFilter restricts a query to the wearers chosen in $device. The
// regex form works for one value, several, and All alike.
const deviceFilter = `"device" =~ /^$device$/`

func influxDS() common.DataSourceRef { return *ref(InfluxDBType, InfluxUID) }

func promDS() common.DataSourceRef { return *ref(PrometheusType, PrometheusUID) }

// promQL is a Prometheus range query with a legend.
func promQL(ref, expr, legend string) *prometheus.DataqueryBuilder {
	return prometheus.NewDataqueryBuilder().
		RefId(ref).
		Datasource(promDS()).
		Expr(expr).
		LegendFormat(legend).
		Range()
}

// thresholds builds absolute thresholds: base colour, then (value, colour) steps.
func thresholds(base string, steps ...step) *dashboard.ThresholdsConfigBuilder {
	ts := []dashboard.Threshold{{Value: nil, Color: base}}
	for _, s := range steps {
		v := s.at
		ts = append(ts, dashboard.Threshold{Value: &v, Color: s.color})
	}
	return dashboard.NewThresholdsConfigBuilder().Mode(dashboard.ThresholdsModeAbsolute).Steps(ts)
}

type step struct {
	at    float64
	color string
}

func fixedColor(c string) *dashboard.FieldColorBuilder {
	return dashboard.NewFieldColorBuilder().Mode(dashboard.FieldColorModeIdFixed).FixedColor(c)
}

func classicPalette() *dashboard.FieldColorBuilder {
	return dashboard.NewFieldColorBuilder().Mode(dashboard.FieldColorModeIdPaletteClassic)
}

// colorProp is an override property that fixes a series' colour.
func colorProp(c string) dashboard.DynamicConfigValue {
	return dashboard.DynamicConfigValue{Id: "color", Value: map[string]any{"mode": "fixed", "fixedColor": c}}
}

// unitProp is an override property that sets a field's unit.
func unitProp(u string) dashboard.DynamicConfigValue {
	return dashboard.DynamicConfigValue{Id: "unit", Value: u}
}

func displayNameProp(n string) dashboard.DynamicConfigValue {
	return dashboard.DynamicConfigValue{Id: "displayName", Value: n}
}

func decimalsProp(d int) dashboard.DynamicConfigValue {
	return dashboard.DynamicConfigValue{Id: "decimals", Value: d}
}

// dashedProp draws a series as a thin dashed line (baselines, references).
func dashedProp() []dashboard.DynamicConfigValue {
	return []dashboard.DynamicConfigValue{
		{Id: "custom.lineStyle", Value: map[string]any{"fill": "dash", "dash": []int{10, 10}}},
		{Id: "custom.lineWidth", Value: 1},
		{Id: "custom.fillOpacity", Value: 0},
	}
}

// kindOverrides colours the series named after event kinds.
func kindOverrides() []cog.Builder[dashboard.DashboardFieldConfigSourceOverrides] {
	var out []cog.Builder[dashboard.DashboardFieldConfigSourceOverrides]
	for _, k := range []struct{ name, color string }{
		{"cramp", colorCramp}, {"plm", colorPLM}, {"movement", colorMovement}, {"artifact", colorArtifact},
	} {
		out = append(out, dashboard.NewDashboardFieldConfigSourceOverridesBuilder().
			Matcher(dashboard.MatcherConfig{Id: "byName", Options: k.name}).
			Properties([]dashboard.DynamicConfigValue{colorProp(k.color)}))
	}
	return out
}

func byName(name string, props ...dashboard.DynamicConfigValue) cog.Builder[dashboard.DashboardFieldConfigSourceOverrides] {
	return dashboard.NewDashboardFieldConfigSourceOverridesBuilder().
		Matcher(dashboard.MatcherConfig{Id: "byName", Options: name}).
		Properties(props)
}

func byRegexp(re string, props ...dashboard.DynamicConfigValue) cog.Builder[dashboard.DashboardFieldConfigSourceOverrides] {
	return dashboard.NewDashboardFieldConfigSourceOverridesBuilder().
		Matcher(dashboard.MatcherConfig{Id: "byRegexp", Options: re}).
		Properties(props)
}

func legendList() *common.VizLegendOptionsBuilder {
	return common.NewVizLegendOptionsBuilder().
		DisplayMode(common.LegendDisplayModeList).
		Placement(common.LegendPlacementBottom).
		ShowLegend(true)
}

func legendTable(calcs ...string) *common.VizLegendOptionsBuilder {
	return common.NewVizLegendOptionsBuilder().
		DisplayMode(common.LegendDisplayModeTable).
		Placement(common.LegendPlacementBottom).
		ShowLegend(true).
		Calcs(calcs)
}

func tooltipMulti() *common.VizTooltipOptionsBuilder {
	return common.NewVizTooltipOptionsBuilder().Mode(common.TooltipDisplayModeMulti).Sort(common.SortOrderDescending)
}

func reduce(calc string) *common.ReduceDataOptionsBuilder {
	return common.NewReduceDataOptionsBuilder().Calcs([]string{calc}).Values(false)
}

// valueText maps an exact value to a text and colour (state timelines, tables).
func valueText(value, text, color string) dashboard.ValueMapping {
	return dashboard.ValueMapping{ValueMap: &dashboard.ValueMap{
		Type:    dashboard.MappingTypeValueToText,
		Options: map[string]dashboard.ValueMappingResult{value: {Text: &text, Color: &color}},
	}}
}

// rangeText maps [from, to] to a text and, when color is not empty, a colour.
func rangeText(from, to float64, text, color string) dashboard.ValueMapping {
	res := dashboard.ValueMappingResult{Text: &text}
	if color != "" {
		res.Color = &color
	}
	return dashboard.ValueMapping{RangeMap: &dashboard.RangeMap{
		Type:    dashboard.MappingTypeRangeToText,
		Options: dashboard.DashboardRangeMapOptions{From: &from, To: &to, Result: res},
	}}
}

func row(title string) *dashboard.RowBuilder {
	return dashboard.NewRowBuilder(title)
}

// deviceVariable is the wearer picker. multi allows several wearers (and
// All); the Night dashboard shows one wearer at a time.
func deviceVariable(multi bool) *dashboard.QueryVariableBuilder {
	q := `SHOW TAG VALUES FROM "device_health" WITH KEY = "device"`
	v := dashboard.NewQueryVariableBuilder("device").
		Label("Device").
		Description("The wearer's device id, as it publishes on MQTT (crampwatch/v1/<device>/...).").
		Datasource(influxDS()).
		Query(dashboard.StringOrMap{String: &q}).
		Definition(q).
		Refresh(dashboard.VariableRefreshOnTimeRangeChanged).
		Sort(dashboard.VariableSortNaturalAsc)
	if multi {
		// allValue keeps "All" a single regex instead of a huge alternation.
		v = v.Multi(true).IncludeAll(true).AllValue(".*")
	}
	return v
}

// tzVariable is the time zone nights are cut in (noon to noon local time).
func tzVariable() *dashboard.CustomVariableBuilder {
	values := "UTC,Europe/London,Europe/Berlin,Europe/Helsinki,America/New_York,America/Chicago,America/Denver,America/Los_Angeles,Asia/Tokyo,Australia/Sydney"
	utc := "UTC"
	return dashboard.NewCustomVariableBuilder("tz").
		Label("Time zone").
		Description("Time zone in which a night runs from noon to noon; pick the wearer's. Any IANA name can be typed.").
		Values(dashboard.StringOrMap{String: &values}).
		AllowCustomValue(true).
		Current(dashboard.VariableOption{Text: dashboard.StringOrArrayOfString{String: &utc}, Value: dashboard.StringOrArrayOfString{String: &utc}})
}

// newTable is a table panel without a footer. The footer's reducer list is
// spelled out because Grafana's schema requires it even when hidden.
func newTable() *table.PanelBuilder {
	return table.NewPanelBuilder().
		Footer(common.NewTableFooterOptionsBuilder().Show(false).Reducer([]string{}).CountRows(false)).
		CellHeight(common.TableCellHeightSm)
}

package dashboards

import (
	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/table"
)

// cogOverride is a field override builder, as panel builders take them.
type cogOverride = cog.Builder[dashboard.DashboardFieldConfigSourceOverrides]

// dashboardLinks puts every crampwatch dashboard in a drop-down, keeping
// the time range and the chosen device when switching.
func dashboardLinks() *dashboard.DashboardLinkBuilder {
	return dashboard.NewDashboardLinkBuilder("crampwatch").
		Type(dashboard.DashboardLinkTypeDashboards).
		Tags([]string{"crampwatch"}).
		AsDropdown(true).
		IncludeVars(true).
		KeepTime(true)
}

// builtInAnnotations keeps Grafana's own annotation layer (notes a user adds
// by hand), hidden from the toggles as Grafana does by default.
func builtInAnnotations() *dashboard.AnnotationQueryBuilder {
	return dashboard.NewAnnotationQueryBuilder().
		Name("Annotations & Alerts").
		Datasource(*ref("grafana", "-- Grafana --")).
		Enable(true).
		Hide(true).
		IconColor("rgba(0, 211, 255, 1)").
		Type("dashboard").
		BuiltIn(1)
}

// crampAnnotation draws every cramp as a region from onset to end (the
// ongoing report's end is the confirmation time, so a cramp still going on
// shows as far as it is known).
func crampAnnotation() *dashboard.AnnotationQueryBuilder {
	return dashboard.NewAnnotationQueryBuilder().
		Name("Cramps").
		Datasource(influxDS()).
		Enable(true).
		IconColor(colorCramp).
		Target(InfluxQL(`SELECT "end", "duration_s", "muscle", "side", "state" FROM "events" WHERE `+deviceFilter+
			` AND "kind" = 'cramp' AND $timeFilter`).
			Annotation("duration_s", "muscle,side,state", "end"))
}

// plmAnnotation marks each periodic limb movement at its onset.
func plmAnnotation() *dashboard.AnnotationQueryBuilder {
	return dashboard.NewAnnotationQueryBuilder().
		Name("PLMs").
		Datasource(influxDS()).
		Enable(true).
		IconColor(colorPLM).
		Target(InfluxQL(`SELECT "duration_s", "muscle", "side" FROM "events" WHERE `+deviceFilter+
			` AND "kind" = 'plm' AND $timeFilter`).
			Annotation("duration_s", "muscle,side", ""))
}

// alertsTable lists every message decision of the alert engine: gentle
// alerts, escalations, TENS prompts and ended notices, sent or suppressed.
func alertsTable() *table.PanelBuilder {
	return newTable().
		Title("Alerts and prompts").
		Description("Every alert decision for this wearer: gentle alert at confirmation, escalation if the cramp persists unanswered, TENS prompt (only with a clinician's preset), and the ended notice. " +
			"Suppressed messages were due but held back (cooldown, hourly cap, quiet hours, both legs in one alert). Latency is from cramp onset to the message.").
		Datasource(influxDS()).
		WithTarget(InfluxQL(`SELECT "type", "outcome", "reason", "muscle", "side", "latency_s", "alert_id" FROM "alerts" WHERE ` +
			deviceFilter + ` AND $timeFilter ORDER BY time DESC LIMIT 500`).Table()).
		Unit(unitNone).
		Overrides([]cogOverride{
			byName("Time", displayNameProp("Time"), unitProp(unitDateTime)),
			byName("latency_s", displayNameProp("Since onset"), unitProp(unitSeconds), decimalsProp(1)),
			byName("outcome", displayNameProp("Outcome"), dashboard.DynamicConfigValue{Id: "mappings", Value: []dashboard.ValueMapping{
				valueText("sent", "sent", colorAlert), valueText("suppressed", "suppressed", colorArtifact),
			}}, dashboard.DynamicConfigValue{Id: "custom.cellOptions", Value: map[string]any{"type": "color-text"}}),
		}).
		Height(9).Span(12)
}

// acksTable lists the wearer's acknowledgements of alerts and prompts.
func acksTable() *table.PanelBuilder {
	return newTable().
		Title("Acknowledgements").
		Description("The wearer's answers to alerts and prompts (ok, snooze, dismiss, tens_started, tens_declined) and how long after the first alert they came. An answer stops escalation.").
		Datasource(influxDS()).
		WithTarget(InfluxQL(`SELECT "action", "muscle", "side", "since_alert_s", "alert_id" FROM "acks" WHERE ` +
			deviceFilter + ` AND $timeFilter ORDER BY time DESC LIMIT 500`).Table()).
		Unit(unitNone).
		Overrides([]cogOverride{
			byName("Time", unitProp(unitDateTime)),
			byName("since_alert_s", displayNameProp("After alert"), unitProp(unitSeconds), decimalsProp(0)),
		}).
		Height(9).Span(12)
}

// diaryTable lists the wearer's symptom diary entries.
func diaryTable() *table.PanelBuilder {
	return newTable().
		Title("Diary").
		Description("Symptom diary entries: pain from 0 (none) to 10 (worst), what helped, the wearer's note, and how long after the linked cramp's onset the entry was made.").
		Datasource(influxDS()).
		WithTarget(InfluxQL(`SELECT "pain", "helped", "note", "offset_s", "night" FROM "diary" WHERE ` +
			deviceFilter + ` AND $timeFilter ORDER BY time DESC LIMIT 500`).Table()).
		Unit(unitNone).
		Overrides([]cogOverride{
			byName("Time", unitProp(unitDateTime)),
			byName("offset_s", displayNameProp("After onset"), unitProp(unitSeconds), decimalsProp(0)),
			byName("pain", displayNameProp("Pain (0-10)"), decimalsProp(0)),
		}).
		Height(8).Span(24)
}

// Package dashboards defines crampwatch's Grafana dashboards as code: Night
// (one wearer's night), Trends (weeks of nights), Devices (sensor health)
// and Service (the daemon's Prometheus metrics).
//
// The dashboards are built with the Grafana Foundation SDK; InfluxQLQuery
// adds the raw InfluxQL query type the SDK lacks. `go run ./dashboards/gen`
// writes them as JSON next to this file, where Grafana's file provisioning
// (deploy/grafana) picks them up. Tests check that the committed JSON is
// exactly the generator's output, decodes strictly into the SDK's model, and
// that every InfluxDB query runs against a real InfluxDB filled with a
// simulated night.
//
// InfluxDB panels use InfluxQL, which InfluxDB 1.8, 2.x (through a DBRP
// mapping) and 3.x all answer; the data source uid is fixed (InfluxUID), so
// the provisioning files decide which server it points at.
package dashboards

// Package deploy holds the files that run crampwatch as a stack with
// docker compose (docker-compose.yml at the repository root): Mosquitto's
// configuration, password-file entrypoint and per-device ACL, InfluxDB's
// first-run DBRP mapping, Prometheus' scrape configuration, Grafana's
// provisioning and the example environment file. It has no Go code of its
// own; its tests validate the compose file and those configurations.
package deploy

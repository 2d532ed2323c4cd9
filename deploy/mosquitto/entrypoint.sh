#!/bin/sh
# Writes Mosquitto's password file from the environment, then runs the
# broker. Users: "crampwatch" (the service), "simulator" (optional), and one
# user per device from MQTT_DEVICES ("id:password id:password ...").
set -eu

pw=/mosquitto/data/passwd
umask 077
mosquitto_passwd -c -b "$pw" crampwatch "${MQTT_SERVICE_PASSWORD:?MQTT_SERVICE_PASSWORD is not set}"
if [ -n "${MQTT_SIM_PASSWORD:-}" ]; then
	mosquitto_passwd -b "$pw" simulator "$MQTT_SIM_PASSWORD"
fi
for pair in ${MQTT_DEVICES:-}; do
	id=${pair%%:*}
	pass=${pair#*:}
	if [ -z "$id" ] || [ "$id" = "$pair" ] || [ -z "$pass" ]; then
		echo "MQTT_DEVICES: entry '$id' must be id:password" >&2
		exit 1
	fi
	mosquitto_passwd -b "$pw" "$id" "$pass"
done
chown -R mosquitto:mosquitto /mosquitto/data
exec /usr/sbin/mosquitto -c /mosquitto/config/mosquitto.conf

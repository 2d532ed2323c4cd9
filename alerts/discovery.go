package alerts

import (
	"github.com/crampwatch/crampwatch/wire"
)

// haDevice is the device block of a Home Assistant discovery config.
type haDevice struct {
	Identifiers  []string `json:"identifiers"`
	Name         string   `json:"name"`
	Manufacturer string   `json:"manufacturer"`
	Model        string   `json:"model"`
}

// haEvent is a Home Assistant MQTT discovery config for an "event" entity.
type haEvent struct {
	Name          string   `json:"name"`
	UniqueID      string   `json:"unique_id"`
	ObjectID      string   `json:"object_id"`
	StateTopic    string   `json:"state_topic"`
	EventTypes    []string `json:"event_types"`
	ValueTemplate string   `json:"value_template"`
	Icon          string   `json:"icon"`
	Device        haDevice `json:"device"`
}

// haValueTemplate turns an alert message into the JSON Home Assistant's
// event entity wants: an "event_type" key plus attributes.
const haValueTemplate = `{{ {"event_type": value_json.type, "alert_id": value_json.id, "muscle": value_json.muscle, ` +
	`"side": value_json.side, "hint": value_json.hint, "latency_s": value_json.latency_s} | to_json }}`

// DiscoveryTopic is where the retained discovery config of a device goes:
// {haPrefix}/event/crampwatch_{device}/cramp_alert/config.
func DiscoveryTopic(haPrefix, device string) string {
	return haPrefix + "/event/crampwatch_" + device + "/cramp_alert/config"
}

// DiscoveryConfig returns the retained Home Assistant discovery payload that
// makes the device's alert topic an "event" entity with the event types
// alert, escalation and ended.
func DiscoveryConfig(prefix, device string) []byte {
	return mustJSON(haEvent{
		Name:          "Cramp alert",
		UniqueID:      "crampwatch_" + device + "_cramp_alert",
		ObjectID:      "crampwatch_" + device + "_cramp_alert",
		StateTopic:    wire.Topic(prefix, device, wire.StreamAlert),
		EventTypes:    []string{TypeAlert, TypeEscalation, TypeEnded},
		ValueTemplate: haValueTemplate,
		Icon:          "mdi:human-handsdown",
		Device: haDevice{
			Identifiers:  []string{"crampwatch_" + device},
			Name:         "crampwatch " + device,
			Manufacturer: "crampwatch",
			Model:        "night cramp monitor",
		},
	})
}

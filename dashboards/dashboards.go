package dashboards

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

// Spec is one dashboard and the file it is written to.
type Spec struct {
	File  string // base name in the dashboards directory, e.g. "night.json"
	Build func() *dashboard.DashboardBuilder
}

// All returns every crampwatch dashboard, in the order they are documented.
func All() []Spec {
	return []Spec{
		{File: "night.json", Build: Night},
		{File: "trends.json", Build: Trends},
		{File: "devices.json", Build: Devices},
		{File: "service.json", Build: Service},
	}
}

// Render builds the dashboard and encodes it as indented JSON with a
// trailing newline, the form committed to the repository.
func (s Spec) Render() ([]byte, error) {
	d, err := s.Build().Build()
	if err != nil {
		return nil, fmt.Errorf("dashboard %s: %w", s.File, err)
	}
	// Grafana links to panels by id, so give every panel and row a stable,
	// unique one in layout order.
	id := uint32(1)
	for _, p := range d.Panels {
		switch {
		case p.Panel != nil:
			v := id
			p.Panel.Id = &v
		case p.RowPanel != nil:
			p.RowPanel.Id = id
		}
		id++
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	// Queries contain < and >; keep them readable in the committed files.
	enc.SetEscapeHTML(false)
	if err := enc.Encode(d); err != nil {
		return nil, fmt.Errorf("dashboard %s: encode: %w", s.File, err)
	}
	return buf.Bytes(), nil
}

package dashboards

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/grafana/grafana-foundation-sdk/go/barchart"
	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/cog/variants"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/piechart"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/statetimeline"
	"github.com/grafana/grafana-foundation-sdk/go/table"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

var registerOnce sync.Once

// registerVariants teaches the SDK's (process-wide) runtime the panel types
// and the InfluxQL query type, so strict decoding knows every target.
//
// SDK v0.0.18's generated strict decoders return an empty cog.BuildErrors as
// a non-nil error on success. Callers inside the SDK then drop the decoded
// value: every panel of a dashboard, every Prometheus target, every panel's
// options. The panel and query types used here are therefore registered
// with wrappers that treat an empty BuildErrors as success, and panels are
// decoded one by one (decodeStrict).
func registerVariants() {
	registerOnce.Do(func() {
		plugins.RegisterDefaultPlugins()
		rt := cog.NewRuntime()
		rt.RegisterDataqueryVariant(InfluxQLVariantConfig())
		rt.RegisterDataqueryVariant(fixDataquery(prometheus.VariantConfig()))
		for _, c := range []variants.PanelcfgConfig{
			timeseries.VariantConfig(), stat.VariantConfig(), table.VariantConfig(),
			statetimeline.VariantConfig(), barchart.VariantConfig(), piechart.VariantConfig(),
		} {
			rt.RegisterPanelcfgVariant(fixPanelcfg(c))
		}
	})
}

// fixDataquery makes a strict query decoder return its value on success;
// the strict pass has found no error, so the lenient decoder's value is the
// same one.
func fixDataquery(c variants.DataqueryConfig) variants.DataqueryConfig {
	strict := c.StrictDataqueryUnmarshaler
	c.StrictDataqueryUnmarshaler = func(raw []byte) (variants.Dataquery, error) {
		q, err := strict(raw)
		if err = noBuildErrors(err); err != nil || q != nil {
			return q, err
		}
		return c.DataqueryUnmarshaler(raw)
	}
	return c
}

// fixPanelcfg does the same for a panel type's options and field config.
func fixPanelcfg(c variants.PanelcfgConfig) variants.PanelcfgConfig {
	fix := func(strict, lenient func([]byte) (any, error)) func([]byte) (any, error) {
		if strict == nil {
			return nil
		}
		return func(raw []byte) (any, error) {
			v, err := strict(raw)
			if err = noBuildErrors(err); err != nil || v != nil {
				return v, err
			}
			return lenient(raw)
		}
	}
	c.StrictOptionsUnmarshaler = fix(c.StrictOptionsUnmarshaler, c.OptionsUnmarshaler)
	c.StrictFieldConfigUnmarshaler = fix(c.StrictFieldConfigUnmarshaler, c.FieldConfigUnmarshaler)
	return c
}

// decodeStrict decodes a dashboard strictly: the dashboard's own fields,
// variables and annotations through the SDK, then each panel on its own
// (see registerVariants for why).
func decodeStrict(raw []byte) (dashboard.Dashboard, error) {
	var d dashboard.Dashboard
	if err := noBuildErrors(d.UnmarshalJSONStrict(raw)); err != nil {
		return d, err
	}
	var top struct {
		Panels []json.RawMessage `json:"panels"`
	}
	if err := json.Unmarshal(raw, &top); err != nil {
		return d, err
	}
	d.Panels = nil
	var errs []error
	for i, rp := range top.Panels {
		var kind struct {
			Type string `json:"type"`
		}
		if err := json.Unmarshal(rp, &kind); err != nil {
			return d, err
		}
		if kind.Type == "row" {
			var r dashboard.RowPanel
			if err := noBuildErrors(r.UnmarshalJSONStrict(rp)); err != nil {
				errs = append(errs, fmt.Errorf("panels[%d]: %w", i, err))
			}
			if len(r.Panels) > 0 {
				errs = append(errs, fmt.Errorf("panels[%d]: collapsed rows are not supported here", i))
			}
			d.Panels = append(d.Panels, dashboard.PanelOrRowPanel{RowPanel: &r})
			continue
		}
		var p dashboard.Panel
		if err := noBuildErrors(p.UnmarshalJSONStrict(rp)); err != nil {
			errs = append(errs, fmt.Errorf("panels[%d]: %w", i, err))
		}
		d.Panels = append(d.Panels, dashboard.PanelOrRowPanel{Panel: &p})
	}
	return d, errors.Join(errs...)
}

// noBuildErrors turns the SDK's empty (typed nil) cog.BuildErrors into nil.
func noBuildErrors(err error) error {
	var be cog.BuildErrors
	if errors.As(err, &be) && len(be) == 0 {
		return nil
	}
	return err
}

// committed is a dashboard file as committed, strictly decoded.
type committed struct {
	spec Spec
	raw  []byte
	dash dashboard.Dashboard
}

func loadCommitted(t *testing.T) []committed {
	t.Helper()
	registerVariants()
	var out []committed
	for _, s := range All() {
		raw, err := os.ReadFile(s.File)
		if err != nil {
			t.Fatalf("%s: %v (run: go run ./dashboards/gen)", s.File, err)
		}
		d, err := decodeStrict(raw)
		if err != nil {
			t.Fatalf("%s: strict decode into the SDK's dashboard model: %v", s.File, err)
		}
		out = append(out, committed{spec: s, raw: raw, dash: d})
	}
	return out
}

// panels returns every panel of d, including those inside rows.
func panels(d dashboard.Dashboard) []dashboard.Panel {
	var out []dashboard.Panel
	for _, p := range d.Panels {
		if p.Panel != nil {
			out = append(out, *p.Panel)
		}
		if p.RowPanel != nil {
			out = append(out, p.RowPanel.Panels...)
		}
	}
	return out
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func TestCommittedJSONIsGeneratorOutput(t *testing.T) {
	for _, s := range All() {
		want, err := s.Render()
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(s.File)
		if err != nil {
			t.Fatalf("%s: %v (run: go run ./dashboards/gen)", s.File, err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from the generator's output: run `go run ./dashboards/gen` and commit the JSON", s.File)
		}
	}
}

func TestDashboardsStrictAndComplete(t *testing.T) {
	uids := map[string]string{}
	for _, c := range loadCommitted(t) {
		d := c.dash
		name := c.spec.File
		uid := str(d.Uid)
		if uid == "" || str(d.Title) == "" || str(d.Description) == "" {
			t.Errorf("%s: uid, title and description are required", name)
		}
		if other, dup := uids[uid]; dup {
			t.Errorf("%s: uid %q already used by %s", name, uid, other)
		}
		uids[uid] = name

		ps := panels(d)
		if len(ps) < 4 {
			t.Errorf("%s: only %d panels", name, len(ps))
		}
		ids := map[uint32]bool{}
		for _, p := range ps {
			title := str(p.Title)
			where := name + ": panel " + title
			if title == "" {
				t.Errorf("%s: panel of type %s has no title", name, p.Type)
			}
			if p.Id == nil || ids[*p.Id] {
				t.Errorf("%s: missing or duplicate id", where)
			} else {
				ids[*p.Id] = true
			}
			if len(strings.TrimSpace(str(p.Description))) < 20 {
				t.Errorf("%s: needs a description that says what it shows", where)
			}
			if p.Datasource == nil || p.Datasource.Uid == nil || p.Datasource.Type == nil {
				t.Errorf("%s: no datasource", where)
			} else if u := *p.Datasource.Uid; u != InfluxUID && u != PrometheusUID {
				t.Errorf("%s: datasource uid %q is not one of the provisioned ones", where, u)
			}
			if p.FieldConfig == nil || str(p.FieldConfig.Defaults.Unit) == "" {
				t.Errorf("%s: no unit", where)
			}
			if p.Options == nil {
				t.Errorf("%s: options of panel type %q did not decode (type not registered?)", where, p.Type)
			}
			if len(p.Targets) == 0 {
				t.Errorf("%s: no query", where)
			}
			for _, target := range p.Targets {
				checkTarget(t, where, p, target)
			}
		}
		for _, a := range d.Annotations.List {
			if a.BuiltIn != nil && *a.BuiltIn == 1 {
				continue
			}
			q, ok := a.Target.(*InfluxQLQuery)
			if !ok {
				t.Errorf("%s: annotation %q: target is %T, want an InfluxQL query", name, a.Name, a.Target)
				continue
			}
			if !q.FromAnnotations || !strings.Contains(q.Query, "$timeFilter") {
				t.Errorf("%s: annotation %q: not an annotation query over $timeFilter", name, a.Name)
			}
			if a.Datasource == nil || str(a.Datasource.Uid) != InfluxUID {
				t.Errorf("%s: annotation %q: wrong datasource", name, a.Name)
			}
		}
		for _, v := range d.Templating.List {
			if v.Type == dashboard.VariableTypeQuery && (v.Datasource == nil || v.Datasource.Uid == nil) {
				t.Errorf("%s: variable %s has no datasource", name, v.Name)
			}
		}
	}
}

func checkTarget(t *testing.T, where string, p dashboard.Panel, target any) {
	t.Helper()
	switch q := target.(type) {
	case *InfluxQLQuery:
		if str(p.Datasource.Type) != InfluxDBType {
			t.Errorf("%s: InfluxQL query on a %s panel", where, str(p.Datasource.Type))
		}
		if q.Datasource == nil || str(q.Datasource.Uid) != InfluxUID {
			t.Errorf("%s: query %s has the wrong datasource", where, q.RefID)
		}
		// Every panel query is bounded by the dashboard's time range and
		// restricted to the chosen wearers; anything else would scan the
		// whole database.
		if !strings.Contains(q.Query, "$timeFilter") {
			t.Errorf("%s: query %s lacks $timeFilter: %s", where, q.RefID, q.Query)
		}
		if !strings.Contains(q.Query, deviceFilter) {
			t.Errorf("%s: query %s is not filtered by $device: %s", where, q.RefID, q.Query)
		}
	case *prometheus.Dataquery:
		if str(p.Datasource.Type) != PrometheusType {
			t.Errorf("%s: PromQL on a %s panel", where, str(p.Datasource.Type))
		}
		if !strings.Contains(q.Expr, "crampwatch_") || !strings.Contains(q.Expr, `instance=~"$instance"`) {
			t.Errorf("%s: PromQL %s must use crampwatch metrics of the chosen instances: %s", where, str(q.RefId), q.Expr)
		}
	default:
		t.Errorf("%s: target of unexpected type %T (unknown queries are not checked strictly)", where, target)
	}
}

// TestStrictDecodeRejects makes sure the strict decoding above really is
// strict: each mutation of a committed dashboard must be refused.
func TestStrictDecodeRejects(t *testing.T) {
	registerVariants()
	raw, err := os.ReadFile("night.json")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := decodeStrict(raw); err != nil {
		t.Fatalf("unmodified night.json: %v", err)
	}
	tests := []struct {
		name, old, new string
	}{
		{"unknown dashboard field", `"uid": "crampwatch-night",`, `"uid": "crampwatch-night", "bogus": 1,`},
		{"unknown panel field", `"title": "Cramps",`, `"title": "Cramps", "colour": "red",`},
		{"unknown InfluxQL field", `"rawQuery": true,`, `"rawQuery": true, "querry": "x",`},
		{"InfluxQL not raw", `"rawQuery": true,`, `"rawQuery": false,`},
		{"unknown stat option", `"graphMode": "none",`, `"graphMode": "none", "sparkle": true,`},
		{"wrong type", `"h": 4,`, `"h": "four",`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !bytes.Contains(raw, []byte(tt.old)) {
				t.Fatalf("night.json no longer contains %q", tt.old)
			}
			bad := bytes.Replace(raw, []byte(tt.old), []byte(tt.new), 1)
			if _, err := decodeStrict(bad); err == nil {
				t.Errorf("accepted a dashboard with %s", tt.name)
			}
		})
	}
}

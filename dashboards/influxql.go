package dashboards

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/variants"
	"github.com/grafana/grafana-foundation-sdk/go/common"
)

// InfluxDBType is the Grafana plugin id of the InfluxDB data source.
const InfluxDBType = "influxdb"

// Result formats of an InfluxQL query, as Grafana names them.
const (
	FormatTimeSeries = "time_series"
	FormatTable      = "table"
)

// InfluxQLQuery is a raw InfluxQL query of Grafana's InfluxDB data source, as
// it appears in a panel's targets or in an annotation's target. The SDK has no
// InfluxDB query type, so this is the small subset crampwatch uses: raw query
// text (never the visual editor's model, which cannot express what the
// dashboards need), a result format, an alias, and the column mappings that
// turn rows into annotations.
type InfluxQLQuery struct {
	RefID      string                `json:"refId"`
	Datasource *common.DataSourceRef `json:"datasource,omitempty"`
	// Query is the InfluxQL text with Grafana's macros ($timeFilter,
	// $__interval) and dashboard variables ($device) still in it.
	Query string `json:"query"`
	// RawQuery tells the query editor to show the text editor; always true here.
	RawQuery     bool   `json:"rawQuery"`
	ResultFormat string `json:"resultFormat,omitempty"`
	// Alias names series, with $tag_<key>, $col and $m expanded by Grafana.
	Alias string `json:"alias,omitempty"`
	Hide  bool   `json:"hide,omitempty"`

	// The fields below are only used in an annotation's target.

	// FromAnnotations marks the query as an annotation query.
	FromAnnotations bool `json:"fromAnnotations,omitempty"`
	// TextColumn, TagsColumn (comma separated), TimeEndColumn (Unix ms, for
	// region annotations) and TitleColumn name the columns of the result
	// that become the annotation's text, tags, end and title.
	TextColumn    string `json:"textColumn,omitempty"`
	TagsColumn    string `json:"tagsColumn,omitempty"`
	TimeEndColumn string `json:"timeEndColumn,omitempty"`
	TitleColumn   string `json:"titleColumn,omitempty"`
}

// ImplementsDataqueryVariant marks InfluxQLQuery as a data query for the SDK.
func (InfluxQLQuery) ImplementsDataqueryVariant() {}

// DataqueryType returns the data source plugin id, "influxdb".
func (InfluxQLQuery) DataqueryType() string { return InfluxDBType }

// Equals reports whether other is the same InfluxQL query.
func (q InfluxQLQuery) Equals(other variants.Dataquery) bool {
	switch o := other.(type) {
	case InfluxQLQuery:
		return reflect.DeepEqual(q, o)
	case *InfluxQLQuery:
		return o != nil && reflect.DeepEqual(q, *o)
	}
	return false
}

// Validate checks what Grafana needs to run the query.
func (q InfluxQLQuery) Validate() error {
	var errs []error
	if strings.TrimSpace(q.Query) == "" {
		errs = append(errs, errors.New("query is empty"))
	}
	if q.RefID == "" {
		errs = append(errs, errors.New("refId is empty"))
	}
	if !q.RawQuery {
		errs = append(errs, errors.New("rawQuery must be true: only raw InfluxQL is supported"))
	}
	switch q.ResultFormat {
	case "", FormatTimeSeries, FormatTable:
	default:
		errs = append(errs, fmt.Errorf("resultFormat %q: want %q or %q", q.ResultFormat, FormatTimeSeries, FormatTable))
	}
	return errors.Join(errs...)
}

// UnmarshalJSONStrict decodes an InfluxQL query and fails on any field this
// type does not know, so a typo in a dashboard cannot hide.
func (q *InfluxQLQuery) UnmarshalJSONStrict(raw []byte) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var out InfluxQLQuery
	if err := dec.Decode(&out); err != nil {
		return fmt.Errorf("influxql query: %w", err)
	}
	if err := out.Validate(); err != nil {
		return fmt.Errorf("influxql query: %w", err)
	}
	*q = out
	return nil
}

// InfluxQLVariantConfig tells the SDK's runtime how to decode InfluxDB
// queries. Register it before unmarshalling a dashboard:
//
//	cog.NewRuntime().RegisterDataqueryVariant(dashboards.InfluxQLVariantConfig())
func InfluxQLVariantConfig() variants.DataqueryConfig {
	return variants.DataqueryConfig{
		Identifier: InfluxDBType,
		DataqueryUnmarshaler: func(raw []byte) (variants.Dataquery, error) {
			q := &InfluxQLQuery{}
			if err := json.Unmarshal(raw, q); err != nil {
				return nil, err
			}
			return q, nil
		},
		StrictDataqueryUnmarshaler: func(raw []byte) (variants.Dataquery, error) {
			q := &InfluxQLQuery{}
			if err := q.UnmarshalJSONStrict(raw); err != nil {
				return nil, err
			}
			return q, nil
		},
		GoConverter: func(input any) string {
			return fmt.Sprintf("%#v", input)
		},
	}
}

// InfluxQLBuilder builds an InfluxQLQuery for the SDK's panel and annotation builders.
type InfluxQLBuilder struct {
	q InfluxQLQuery
}

var _ cog.Builder[variants.Dataquery] = (*InfluxQLBuilder)(nil)

// InfluxQL starts a raw InfluxQL query against the crampwatch InfluxDB data
// source, formatted as time series.
func InfluxQL(query string) *InfluxQLBuilder {
	return &InfluxQLBuilder{q: InfluxQLQuery{
		RefID:        "A",
		Datasource:   ref(InfluxDBType, InfluxUID),
		Query:        query,
		RawQuery:     true,
		ResultFormat: FormatTimeSeries,
	}}
}

// RefID sets the query's reference id (A, B, ...).
func (b *InfluxQLBuilder) RefID(id string) *InfluxQLBuilder { b.q.RefID = id; return b }

// Alias sets the series alias, e.g. "$tag_muscle $col".
func (b *InfluxQLBuilder) Alias(alias string) *InfluxQLBuilder { b.q.Alias = alias; return b }

// Table formats the result as a table instead of time series.
func (b *InfluxQLBuilder) Table() *InfluxQLBuilder { b.q.ResultFormat = FormatTable; return b }

// Annotation marks the query as an annotation query whose columns map to the
// annotation's text, tags and (for region annotations) end time in Unix ms.
func (b *InfluxQLBuilder) Annotation(text, tags, timeEnd string) *InfluxQLBuilder {
	b.q.FromAnnotations = true
	b.q.TextColumn = text
	b.q.TagsColumn = tags
	b.q.TimeEndColumn = timeEnd
	b.q.ResultFormat = ""
	return b
}

// Build validates and returns the query.
func (b *InfluxQLBuilder) Build() (variants.Dataquery, error) {
	if err := b.q.Validate(); err != nil {
		return nil, cog.MakeBuildErrors("influxql", err)
	}
	return b.q, nil
}

func ref(typ, uid string) *common.DataSourceRef {
	return &common.DataSourceRef{Type: &typ, Uid: &uid}
}

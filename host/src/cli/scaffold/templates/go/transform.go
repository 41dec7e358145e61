// @NAME@: an rmq-openmldb transform. It upper-cases the string columns
// named in its `fields` config key and passes every other column through.
// Replace processRow with your own logic; `rmq-openmldb plugin build`
// makes the component, `rmq-openmldb plugin test` runs it on sample data.
//
// This package is the `transform` export of the contract: the build puts
// these files next to the bindings it generates from wit/plugin.wit.
package export_rmq_openmldb_plugin_transform

import (
	"fmt"
	"strings"

	witTypes "go.bytecodealliance.org/pkg/wit/types"
	. "wit_component/rmq_openmldb_plugin_transform"
	types "wit_component/rmq_openmldb_plugin_types"
)

// Indexes of the columns to upper-case, set by Init.
var fields []int

// processRow is the transform itself: change row.Cells in place, in column order.
func processRow(row types.Row) types.Row {
	for _, index := range fields {
		if cell := row.Cells[index]; cell.Tag() == types.Cell_String {
			row.Cells[index] = types.MakeCellString(strings.ToUpper(cell.String()))
		}
	}
	return row
}

// Init gets the schema this transform must produce (`output`) and answers
// the schema it needs as input (here the same).
func Init(config Config, output []Column) witTypes.Result[TransformInfo, PluginError] {
	fields = fields[:0]
	for _, name := range strings.Split(configValue(config, "fields"), ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		index := columnIndex(output, name)
		if index < 0 {
			return invalidConfig(fmt.Sprintf("config key \"fields\": the table has no column %q", name))
		}
		if output[index].Type != types.ColumnType_String {
			return invalidConfig(fmt.Sprintf("config key \"fields\": column %q is not a string column", name))
		}
		fields = append(fields, index)
	}
	info := PluginInfo{Name: "@NAME@", Version: "0.1.0", MaxBatch: witTypes.None[uint32](), Needs: 0}
	return witTypes.Ok[TransformInfo, PluginError](TransformInfo{Info: info, Input: output})
}

// Process transforms one batch; a row it cannot handle would go into
// Failures (by index into batch.Rows) and the rest go on.
func Process(batch RowBatch) witTypes.Result[Transformed, PluginError] {
	rows := make([]Row, 0, len(batch.Rows))
	for _, row := range batch.Rows {
		rows = append(rows, processRow(row))
	}
	return witTypes.Ok[Transformed, PluginError](Transformed{Rows: rows, Failures: nil})
}

func configValue(config Config, key string) string {
	for _, entry := range config {
		if entry.F0 == key {
			return entry.F1
		}
	}
	return ""
}

func columnIndex(columns []Column, name string) int {
	for i, column := range columns {
		if column.Name == name {
			return i
		}
	}
	return -1
}

func invalidConfig(message string) witTypes.Result[TransformInfo, PluginError] {
	return witTypes.Err[TransformInfo](PluginError{Kind: types.ErrorKind_InvalidConfig, Message: message})
}

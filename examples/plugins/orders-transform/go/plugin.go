// orders-go: the orders example transform, in Go.
//
//   - masks the `card` column: every character but the last `keep` becomes '*';
//   - derives `total` = `quantity` * `unit_price` (NULL when either is NULL);
//   - drops orders whose `quantity` is zero or negative.
//
// Config: `keep` (default 4), the number of card characters left visible.
// Build with `rmq-openmldb plugin build`; the same transform exists in Rust,
// Python, JavaScript and C next to this folder, and CI checks all five
// write identical rows.
package export_rmq_openmldb_plugin_transform

import (
	"fmt"
	"strconv"
	"strings"

	witTypes "go.bytecodealliance.org/pkg/wit/types"
	. "wit_component/rmq_openmldb_plugin_transform"
	types "wit_component/rmq_openmldb_plugin_types"
)

// Column positions, found by Init (the schema is negotiated once per instance).
var layout struct {
	keep                             int
	total, card, quantity, unitPrice int
}

var typeNames = []string{"bool", "smallint", "int", "bigint", "float", "double", "string", "date", "timestamp"}

type failure struct{ err PluginError }

func findColumn(output []Column, name string, want types.ColumnType) int {
	for i, column := range output {
		if column.Name != name {
			continue
		}
		if column.Type != want {
			panic(failure{PluginError{Kind: types.ErrorKind_SchemaMismatch,
				Message: fmt.Sprintf("column %q must be %s, the table has %s", name, typeNames[want], typeNames[column.Type])}})
		}
		return i
	}
	panic(failure{PluginError{Kind: types.ErrorKind_SchemaMismatch,
		Message: fmt.Sprintf("the table has no column %q (%s)", name, typeNames[want])}})
}

// mask hides all but the last `keep` characters (code points, as the other
// languages count).
func mask(text string, keep int) string {
	chars := []rune(text)
	hidden := max(len(chars)-keep, 0)
	return strings.Repeat("*", hidden) + string(chars[hidden:])
}

func Init(config Config, output []Column) (result witTypes.Result[TransformInfo, PluginError]) {
	defer func() {
		if caught, ok := recover().(failure); ok {
			result = witTypes.Err[TransformInfo](caught.err)
		}
	}()
	raw := "4"
	for _, entry := range config {
		if entry.F0 == "keep" {
			raw = entry.F1
		}
	}
	keep, err := strconv.ParseUint(raw, 10, 31)
	if err != nil || strings.HasPrefix(raw, "+") {
		return witTypes.Err[TransformInfo](PluginError{Kind: types.ErrorKind_InvalidConfig,
			Message: fmt.Sprintf("config key \"keep\": %q is not a non-negative integer", raw)})
	}
	total := findColumn(output, "total", types.ColumnType_Double)
	// Input columns are the output's without `total`: indexes after it shift by one.
	shift := func(i int) int {
		if i < total {
			return i
		}
		return i - 1
	}
	layout.keep = int(keep)
	layout.total = total
	layout.card = shift(findColumn(output, "card", types.ColumnType_String))
	layout.quantity = shift(findColumn(output, "quantity", types.ColumnType_Int))
	layout.unitPrice = shift(findColumn(output, "unit_price", types.ColumnType_Double))
	input := make([]Column, 0, len(output)-1)
	input = append(input, output[:total]...)
	input = append(input, output[total+1:]...)
	info := PluginInfo{Name: "orders-go", Version: "0.1.0", MaxBatch: witTypes.None[uint32](), Needs: 0}
	return witTypes.Ok[TransformInfo, PluginError](TransformInfo{Info: info, Input: input})
}

func Process(batch RowBatch) witTypes.Result[Transformed, PluginError] {
	rows := make([]Row, 0, len(batch.Rows))
	for _, row := range batch.Rows {
		cells := row.Cells
		quantity, price := cells[layout.quantity], cells[layout.unitPrice]
		if quantity.Tag() == types.Cell_Int && quantity.Int() <= 0 {
			continue
		}
		if card := cells[layout.card]; card.Tag() == types.Cell_String {
			cells[layout.card] = types.MakeCellString(mask(card.String(), layout.keep))
		}
		total := types.MakeCellNull()
		if quantity.Tag() == types.Cell_Int && price.Tag() == types.Cell_Double {
			total = types.MakeCellDouble(float64(quantity.Int()) * price.Double())
		}
		out := make([]types.Cell, 0, len(cells)+1)
		out = append(out, cells[:layout.total]...)
		out = append(out, total)
		out = append(out, cells[layout.total:]...)
		rows = append(rows, Row{SourceIndex: row.SourceIndex, Cells: out})
	}
	return witTypes.Ok[Transformed, PluginError](Transformed{Rows: rows, Failures: nil})
}

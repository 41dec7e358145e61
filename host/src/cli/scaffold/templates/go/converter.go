// @NAME@: an rmq-openmldb converter. It reads each message body as a plain
// JSON object and maps its fields to the table's columns by name (missing
// or null fields become NULL). Numbers keep their exact text until they
// are parsed for their column, so every value is stored as it was sent.
// Replace convertBody with your own format; `rmq-openmldb plugin build`
// makes the component, `rmq-openmldb plugin test` runs it on sample data.
//
// This package is the `converter` export of the contract: the build puts
// these files next to the bindings it generates from wit/plugin.wit.
package export_rmq_openmldb_plugin_converter

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"

	witTypes "go.bytecodealliance.org/pkg/wit/types"
	. "wit_component/rmq_openmldb_plugin_converter"
	types "wit_component/rmq_openmldb_plugin_types"
)

// The table's columns, set by Init.
var columns []Column

// A message this converter refuses: the failure's kind and a reason that
// names the field and the value.
type rejected struct {
	kind    types.FailureKind
	message string
}

func Init(config Config, target TableSchema) witTypes.Result[PluginInfo, PluginError] {
	columns = target.Columns
	info := PluginInfo{Name: "@NAME@", Version: "0.1.0", MaxBatch: witTypes.None[uint32](), Needs: 0}
	return witTypes.Ok[PluginInfo, PluginError](info)
}

// Convert turns a batch of messages into rows; a message it cannot read
// goes into Failures (by index into the batch) and the rest go on.
func Convert(batch []Message) witTypes.Result[Converted, PluginError] {
	out := Converted{Rows: make([]Row, 0, len(batch))}
	for index, message := range batch {
		cells, failure := convertBody(message.Body)
		if failure != nil {
			out.Failures = append(out.Failures, RecordFailure{Index: uint32(index), Kind: failure.kind, Message: failure.message})
			continue
		}
		out.Rows = append(out.Rows, Row{SourceIndex: uint32(index), Cells: cells})
	}
	return witTypes.Ok[Converted, PluginError](out)
}

func InferSchema(config Config, sample Message) witTypes.Result[[]Column, PluginError] {
	return witTypes.Err[[]Column](PluginError{Kind: types.ErrorKind_SchemaMismatch, Message: "plain JSON carries no schema: create the table first"})
}

// convertBody is the converter itself: one body into the table's cells.
func convertBody(body []byte) ([]types.Cell, *rejected) {
	decoder := json.NewDecoder(bytes.NewReader(body))
	decoder.UseNumber()
	var parsed any
	if err := decoder.Decode(&parsed); err != nil {
		return nil, &rejected{types.FailureKind_Decode, fmt.Sprintf("the body is not JSON: %v", err)}
	}
	if _, err := decoder.Token(); err != io.EOF {
		return nil, &rejected{types.FailureKind_Decode, "the body is not JSON: text after the value"}
	}
	object, ok := parsed.(map[string]any)
	if !ok {
		return nil, &rejected{types.FailureKind_Decode, "the body is not a JSON object"}
	}
	cells := make([]types.Cell, 0, len(columns))
	for _, column := range columns {
		cell, failure := convertValue(column, object[column.Name])
		if failure != nil {
			return nil, failure
		}
		cells = append(cells, cell)
	}
	return cells, nil
}

var typeNames = []string{"bool", "smallint", "int", "bigint", "float", "double", "string", "date", "timestamp"}

// convertValue turns one JSON value into the cell of `column`.
func convertValue(column Column, value any) (types.Cell, *rejected) {
	if value == nil {
		if !column.Nullable {
			return types.Cell{}, &rejected{types.FailureKind_MissingField, fmt.Sprintf("field %q is missing", column.Name)}
		}
		return types.MakeCellNull(), nil
	}
	text, _ := json.Marshal(value)
	mismatch := &rejected{types.FailureKind_TypeMismatch,
		fmt.Sprintf("field %q: value %s does not fit a %s column", column.Name, text, typeNames[column.Type])}
	outOfRange := &rejected{types.FailureKind_OutOfRange, fmt.Sprintf("field %q: %s is out of range", column.Name, text)}
	switch column.Type {
	case types.ColumnType_Bool:
		if b, ok := value.(bool); ok {
			return types.MakeCellBool(b), nil
		}
	case types.ColumnType_Smallint, types.ColumnType_Int, types.ColumnType_Bigint, types.ColumnType_Timestamp:
		number, ok := value.(json.Number)
		if !ok {
			return types.Cell{}, mismatch
		}
		bits := map[uint8]int{types.ColumnType_Smallint: 16, types.ColumnType_Int: 32}[column.Type]
		if bits == 0 {
			bits = 64
		}
		n, err := strconv.ParseInt(string(number), 10, bits)
		if errors.Is(err, strconv.ErrRange) || (column.Type == types.ColumnType_Timestamp && n < 0) {
			return types.Cell{}, outOfRange
		}
		if err != nil {
			return types.Cell{}, mismatch
		}
		switch column.Type {
		case types.ColumnType_Smallint:
			return types.MakeCellSmallint(int16(n)), nil
		case types.ColumnType_Int:
			return types.MakeCellInt(int32(n)), nil
		case types.ColumnType_Timestamp:
			return types.MakeCellTimestamp(n), nil
		default:
			return types.MakeCellBigint(n), nil
		}
	case types.ColumnType_Float, types.ColumnType_Double:
		number, ok := value.(json.Number)
		if !ok {
			return types.Cell{}, mismatch
		}
		// Parsed from the text at the column's own precision: rounded once.
		if column.Type == types.ColumnType_Float {
			f, err := strconv.ParseFloat(string(number), 32)
			if err != nil {
				return types.Cell{}, outOfRange
			}
			return types.MakeCellFloat(float32(f)), nil
		}
		f, err := strconv.ParseFloat(string(number), 64)
		if err != nil {
			return types.Cell{}, outOfRange
		}
		return types.MakeCellDouble(f), nil
	case types.ColumnType_String:
		if s, ok := value.(string); ok {
			return types.MakeCellString(s), nil
		}
	}
	return types.Cell{}, mismatch
}

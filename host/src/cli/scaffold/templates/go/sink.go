// @NAME@: an rmq-openmldb sink. It writes each batch into the table the
// connector names, in the database its `connection.url` grants, with one
// INSERT per row; the host holds one transaction around the batch. (The
// built-in `mysql-sink` does the same with multi-row INSERTs, upserts and
// refused-row isolation; start from this to write somewhere else or
// differently.) `rmq-openmldb plugin build` makes the component and
// `rmq-openmldb plugin test` shows the statements it sends.
//
// This package is the `sink` export of the contract: the build puts these
// files next to the bindings it generates from wit/plugin.wit.
package export_rmq_openmldb_plugin_sink

import (
	"fmt"
	"strings"

	witTypes "go.bytecodealliance.org/pkg/wit/types"
	sql "wit_component/rmq_openmldb_plugin_sql"
	types "wit_component/rmq_openmldb_plugin_types"
)

// The INSERT statement for the table, set by Init.
var statement string

// Init gets the table as the database describes it; rows arrive in its
// column order.
func Init(config types.Config, schema types.TableSchema) witTypes.Result[types.PluginInfo, types.PluginError] {
	statement = insertStatement(schema)
	info := types.PluginInfo{Name: "@NAME@", Version: "0.1.0", MaxBatch: witTypes.None[uint32](), Needs: 0}
	return witTypes.Ok[types.PluginInfo, types.PluginError](info)
}

// Write stores one batch. Failures name rows that can never be written
// (the host dead-letters them); an error means nothing of the batch counts
// as written, and the host retries it (retryable) or stops.
func Write(batch types.RowBatch) witTypes.Result[[]types.RecordFailure, types.PluginError] {
	var failures []types.RecordFailure
	params := make([][]sql.SqlValue, 0, len(batch.Rows))
	for index, row := range batch.Rows {
		values, err := sqlValues(row.Cells)
		if err != "" {
			failures = append(failures, types.RecordFailure{Index: uint32(index), Kind: types.FailureKind_InvalidValue, Message: err})
			continue
		}
		params = append(params, values)
	}
	if len(params) > 0 {
		if result := sql.Execute(statement, params); result.IsErr() {
			failure := result.Err()
			kind := types.ErrorKind_Fatal
			switch failure.Kind {
			case sql.SqlErrorKind_Connection, sql.SqlErrorKind_Timeout:
				kind = types.ErrorKind_Retryable
			case sql.SqlErrorKind_NotGranted:
				kind = types.ErrorKind_InvalidConfig
			}
			return witTypes.Err[[]types.RecordFailure](types.PluginError{Kind: kind, Message: failure.Message})
		}
	}
	return witTypes.Ok[[]types.RecordFailure, types.PluginError](failures)
}

// Flush: Write's statements are already in the host's transaction; a sink
// that buffers would write here.
func Flush() witTypes.Result[witTypes.Unit, types.PluginError] {
	return witTypes.Ok[witTypes.Unit, types.PluginError](witTypes.Unit{})
}

func quote(name string) string {
	return "`" + strings.ReplaceAll(name, "`", "``") + "`"
}

func insertStatement(schema types.TableSchema) string {
	names := make([]string, 0, len(schema.Columns))
	marks := make([]string, 0, len(schema.Columns))
	for _, column := range schema.Columns {
		names = append(names, quote(column.Name))
		marks = append(marks, "?")
	}
	return fmt.Sprintf("INSERT INTO %s (%s) VALUES (%s)", quote(schema.Table), strings.Join(names, ", "), strings.Join(marks, ", "))
}

// sqlValues turns a row's cells into statement parameters; timestamps as
// UTC date-times (the session's time zone is UTC).
func sqlValues(cells []types.Cell) ([]sql.SqlValue, string) {
	values := make([]sql.SqlValue, 0, len(cells))
	for _, cell := range cells {
		switch cell.Tag() {
		case types.Cell_Null:
			values = append(values, sql.MakeSqlValueNull())
		case types.Cell_Bool:
			n := int64(0)
			if cell.Bool() {
				n = 1
			}
			values = append(values, sql.MakeSqlValueInt(n))
		case types.Cell_Smallint:
			values = append(values, sql.MakeSqlValueInt(int64(cell.Smallint())))
		case types.Cell_Int:
			values = append(values, sql.MakeSqlValueInt(int64(cell.Int())))
		case types.Cell_Bigint:
			values = append(values, sql.MakeSqlValueInt(cell.Bigint()))
		case types.Cell_Float:
			values = append(values, sql.MakeSqlValueFloat(cell.Float()))
		case types.Cell_Double:
			values = append(values, sql.MakeSqlValueDouble(cell.Double()))
		case types.Cell_String:
			values = append(values, sql.MakeSqlValueText(cell.String()))
		case types.Cell_Date:
			values = append(values, sql.MakeSqlValueDate(cell.Date()))
		case types.Cell_Timestamp:
			at, ok := utc(cell.Timestamp())
			if !ok {
				return nil, fmt.Sprintf("timestamp %d is out of range", cell.Timestamp())
			}
			values = append(values, sql.MakeSqlValueDatetime(at))
		}
	}
	return values, ""
}

// utc turns epoch milliseconds into a UTC date-time (civil-from-days,
// proleptic Gregorian).
func utc(ms int64) (sql.Datetime, bool) {
	floorDiv := func(a, b int64) int64 {
		q := a / b
		if a%b != 0 && (a < 0) != (b < 0) {
			q--
		}
		return q
	}
	days := floorDiv(ms, 86_400_000)
	inDay := ms - days*86_400_000
	z := days + 719_468
	era := floorDiv(z, 146_097)
	doe := z - era*146_097
	yoe := (doe - doe/1460 + doe/36_524 - doe/146_096) / 365
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	day := doy - (153*mp+2)/5 + 1
	month := mp + 3
	if mp >= 10 {
		month = mp - 9
	}
	year := yoe + era*400
	if month <= 2 {
		year++
	}
	if year < -(1<<31) || year >= 1<<31 {
		return sql.Datetime{}, false
	}
	return sql.Datetime{
		Date:        types.Date{Year: int32(year), Month: uint8(month), Day: uint8(day)},
		Hour:        uint8(inDay / 3_600_000),
		Minute:      uint8(inDay / 60_000 % 60),
		Second:      uint8(inDay / 1000 % 60),
		Microsecond: uint32(inDay % 1000 * 1000),
	}, true
}

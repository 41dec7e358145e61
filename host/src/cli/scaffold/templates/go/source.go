// @NAME@: an rmq-openmldb source. It produces the records 1..`count` as
// JSON (`{"seq": N}`) on the topic `topic`, at most `records.per.poll` per
// poll, and resumes after the last record the broker acknowledged when the
// connector restarts. Replace nextRecords with your own reading (the `sql`
// import reaches the database a connector's `connection.url` grants);
// `rmq-openmldb plugin build` makes the component and
// `rmq-openmldb plugin test` shows the records it produces.
//
// This package is the `source` export of the contract: the build puts
// these files next to the bindings it generates from wit/plugin.wit.
package export_rmq_openmldb_plugin_source

import (
	"fmt"
	"strconv"
	"strings"

	witTypes "go.bytecodealliance.org/pkg/wit/types"
	. "wit_component/rmq_openmldb_plugin_source"
	types "wit_component/rmq_openmldb_plugin_types"
)

// The stream's name in stored positions.
const partition = "sequence"

// What Init configured, and the last record handed to the host.
var (
	topic   string
	count   uint64
	perPoll uint64
	last    uint64
)

// Init gets the positions the host stored for records the broker
// acknowledged: the source starts after them.
func Init(config Config, positions []SourcePosition) witTypes.Result[PluginInfo, PluginError] {
	get := func(key string) string {
		for _, entry := range config {
			if entry.F0 == key {
				return strings.TrimSpace(entry.F1)
			}
		}
		return ""
	}
	number := func(key string, otherwise uint64) (uint64, string) {
		raw := get(key)
		if raw == "" {
			return otherwise, ""
		}
		n, err := strconv.ParseUint(raw, 10, 64)
		if err != nil {
			return 0, fmt.Sprintf("config key %q: %q is not a whole number", key, raw)
		}
		return n, ""
	}
	topic = get("topic")
	if topic == "" {
		return invalid("config key \"topic\" is missing")
	}
	var problem string
	if count, problem = number("count", 1000); problem != "" {
		return invalid(problem)
	}
	if perPoll, problem = number("records.per.poll", 10); problem != "" {
		return invalid(problem)
	}
	last = 0
	for _, stored := range positions {
		if stored.Partition != partition {
			continue
		}
		n, err := strconv.ParseUint(stored.Position, 10, 64)
		if err != nil {
			return invalid(fmt.Sprintf("stored position %q is not a number", stored.Position))
		}
		last = n
	}
	info := PluginInfo{Name: "@NAME@", Version: "0.1.0", MaxBatch: witTypes.None[uint32](), Needs: 0}
	return witTypes.Ok[PluginInfo, PluginError](info)
}

// Poll answers up to `max` records; none means nothing new (the host waits
// a poll interval before asking again).
func Poll(max uint32) witTypes.Result[[]SourceRecord, PluginError] {
	return witTypes.Ok[[]SourceRecord, PluginError](nextRecords(uint64(max)))
}

// nextRecords is the source itself: the next records and the position each reaches.
func nextRecords(limit uint64) []SourceRecord {
	end := last + min(perPoll, limit)
	end = min(end, count)
	var records []SourceRecord
	for seq := last + 1; seq <= end; seq++ {
		records = append(records, SourceRecord{
			Topic:      topic,
			Keys:       witTypes.Some(strconv.FormatUint(seq, 10)),
			Tags:       witTypes.None[string](),
			Properties: nil,
			Body:       []byte(fmt.Sprintf(`{"seq": %d}`, seq)),
			Partition:  partition,
			Position:   strconv.FormatUint(seq, 10),
		})
	}
	last = max(last, end)
	return records
}

func invalid(message string) witTypes.Result[PluginInfo, PluginError] {
	return witTypes.Err[PluginInfo](PluginError{Kind: types.ErrorKind_InvalidConfig, Message: message})
}

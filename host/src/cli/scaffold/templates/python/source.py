"""@NAME@: an rmq-openmldb source. It produces the records 1..`count` as
JSON (`{"seq": N}`) on the topic `topic`, at most `records.per.poll` per
poll, and resumes after the last record the broker acknowledged when the
connector restarts. Replace `next_records` with your own reading (the
`sql` import reaches the database a connector's `connection.url` grants);
`rmq-openmldb plugin build` makes the component and `rmq-openmldb plugin
test` shows the records it produces.
"""

import wit_world
from wit_world.exports.source import SourceRecord
from wit_world.imports.types import ErrorKind, Needs, PluginError, PluginInfo
from componentize_py_types import Err

# The stream's name in stored positions.
PARTITION = "sequence"

# What `init` configured, and the last record handed to the host.
_state = {"topic": "", "count": 0, "per_poll": 0, "last": 0}


def invalid(message):
    return Err(PluginError(ErrorKind.INVALID_CONFIG, message))


def number(settings, key, default):
    raw = settings.get(key, "").strip()
    if not raw:
        return default
    if not raw.isdigit():
        raise invalid(f"config key \"{key}\": \"{raw}\" is not a whole number")
    return int(raw)


def next_records(limit):
    """The source itself: the next records and the position each reaches."""
    state = _state
    end = min(state["count"], state["last"] + min(state["per_poll"], limit))
    records = [
        SourceRecord(topic=state["topic"], keys=str(seq), tags=None, properties=[],
                     body=f"{{\"seq\": {seq}}}".encode(), partition=PARTITION, position=str(seq))
        for seq in range(state["last"] + 1, end + 1)
    ]
    state["last"] = max(state["last"], end)
    return records


class Source(wit_world.exports.Source):
    def init(self, config, positions):
        """`positions` are those the host stored for records the broker
        acknowledged: start after them."""
        settings = dict(config)
        topic = settings.get("topic", "").strip()
        if not topic:
            raise invalid("config key \"topic\" is missing")
        last = 0
        for stored in positions:
            if stored.partition == PARTITION:
                if not stored.position.isdigit():
                    raise invalid(f"stored position \"{stored.position}\" is not a number")
                last = int(stored.position)
        _state.update(topic=topic, count=number(settings, "count", 1000),
                      per_poll=number(settings, "records.per.poll", 10), last=last)
        return PluginInfo(name="@NAME@", version="0.1.0", max_batch=None, needs=Needs(0))

    def poll(self, max):
        """Up to `max` records; none means nothing new (the host waits a poll
        interval before asking again)."""
        return next_records(max)

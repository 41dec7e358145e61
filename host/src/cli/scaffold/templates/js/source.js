// @NAME@: an rmq-openmldb source. It produces the records 1..`count` as
// JSON (`{"seq": N}`) on the topic `topic`, at most `records.per.poll` per
// poll, and resumes after the last record the broker acknowledged when the
// connector restarts. Replace `nextRecords` with your own reading (the
// `sql` import reaches the database a connector's `connection.url` grants);
// `rmq-openmldb plugin build` makes the component and `rmq-openmldb plugin
// test` shows the records it produces.
//
// WIT in JavaScript: records are objects with camelCase fields, options
// are the value or `undefined`, `list<u8>` is a Uint8Array, and a thrown
// `{kind, message}` becomes the `plugin-error` of the call.

// The stream's name in stored positions.
const PARTITION = 'sequence';

// What `init` configured, and the last record handed to the host.
const state = { topic: '', count: 0, perPoll: 0, last: 0 };

const invalid = (message) => ({ kind: 'invalid-config', message });

function number(settings, key, otherwise) {
  const raw = (settings.get(key) ?? '').trim();
  if (raw === '') return otherwise;
  if (!/^[0-9]+$/.test(raw)) throw invalid(`config key "${key}": "${raw}" is not a whole number`);
  return Number(raw);
}

// The source itself: the next records and the position each reaches.
function nextRecords(limit) {
  const end = Math.min(state.count, state.last + Math.min(state.perPoll, limit));
  const records = [];
  for (let seq = state.last + 1; seq <= end; seq++) {
    records.push({
      topic: state.topic,
      keys: String(seq),
      tags: undefined,
      properties: [],
      body: new TextEncoder().encode(`{"seq": ${seq}}`),
      partition: PARTITION,
      position: String(seq),
    });
  }
  state.last = Math.max(state.last, end);
  return records;
}

export const source = {
  // `positions` are those the host stored for records the broker
  // acknowledged: start after them.
  init(config, positions) {
    const settings = new Map(config);
    const topic = (settings.get('topic') ?? '').trim();
    if (topic === '') throw invalid('config key "topic" is missing');
    let last = 0;
    for (const stored of positions) {
      if (stored.partition !== PARTITION) continue;
      if (!/^[0-9]+$/.test(stored.position)) throw invalid(`stored position "${stored.position}" is not a number`);
      last = Number(stored.position);
    }
    Object.assign(state, {
      topic,
      count: number(settings, 'count', 1000),
      perPoll: number(settings, 'records.per.poll', 10),
      last,
    });
    return { name: '@NAME@', version: '0.1.0', maxBatch: undefined, needs: {} };
  },

  // Up to `max` records; none means nothing new (the host waits a poll
  // interval before asking again).
  poll(max) {
    return nextRecords(max);
  },
};
